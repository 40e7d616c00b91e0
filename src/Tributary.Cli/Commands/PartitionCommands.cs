using System.CommandLine;
using Tributary.Cli.Kafka;
using Tributary.Cli.Output;
using Tributary.Cli.Parsing;
using KafkaErrorCode = Tributary.Protocol.Messages.ErrorCode;

namespace Tributary.Cli.Commands;

/// <summary>
/// <c>tributary partition reassign</c>: Kafka's <c>kafka-reassign-partitions.sh</c> with the same modes, JSON files and
/// output lines (<c>--generate</c>, <c>--execute [--throttle B/s] [--additional]</c>, <c>--verify</c>, <c>--cancel</c>,
/// <c>--list</c>), against any Kafka-compatible cluster (KIP-455 APIs).
/// </summary>
public static class PartitionCommands
{
    public static Command Create() => new Command("partition", "Move partition replicas between brokers") { ReassignCommand() }.WithClientOptions();

    private static Command ReassignCommand()
    {
        var generate = new Option<bool>("--generate") { Description = "Propose a plan that spreads the topics of --topics-to-move-json-file over --broker-list" };
        var execute = new Option<bool>("--execute") { Description = "Start the reassignments of --reassignment-json-file" };
        var verify = new Option<bool>("--verify") { Description = "Report whether the reassignments of --reassignment-json-file are done; once all are, clear the throttles" };
        var cancel = new Option<bool>("--cancel") { Description = "Cancel the reassignments of --reassignment-json-file that are in progress (back to the original replicas)" };
        var list = new Option<bool>("--list") { Description = "List the reassignments in progress" };
        var reassignmentFile = new Option<string?>("--reassignment-json-file") { Description = "Plan: {\"version\":1,\"partitions\":[{\"topic\":..,\"partition\":..,\"replicas\":[..]}]}" };
        var topicsFile = new Option<string?>("--topics-to-move-json-file") { Description = "Topics for --generate: {\"version\":1,\"topics\":[{\"topic\":..}]}" };
        var brokerList = new Option<string?>("--broker-list") { Description = "Brokers for --generate, e.g. 1,2,3" };
        var throttle = new Option<long?>("--throttle") { Description = "With --execute: replication of the moving replicas at most this many bytes/s (cleared by --verify once done)" };
        var additional = new Option<bool>("--additional") { Description = "With --execute: start even though other reassignments are in progress" };
        var preserve = new Option<bool>("--preserve-throttles") { Description = "With --verify or --cancel: leave the throttles in place" };
        var noRacks = new Option<bool>("--disable-rack-aware") { Description = "With --generate: ignore broker racks" };
        var command = new Command("reassign", "Generate, execute, verify, cancel or list partition reassignments (kafka-reassign-partitions)")
        {
            generate, execute, verify, cancel, list, reassignmentFile, topicsFile, brokerList, throttle, additional, preserve, noRacks,
        };
        command.SetGuardedAction(async (parse, _) =>
        {
            var modes = new[] { generate, execute, verify, cancel, list }.Where(o => parse.GetValue(o)).ToList();
            if (modes.Count != 1) throw new CliException("Command must include exactly one action: --generate, --execute, --verify, --cancel, or --list");
            using var admin = ClientOptions.Admin(parse);
            var client = new ReassignmentClient(admin);
            string Plan() => File.ReadAllText(parse.GetValue(reassignmentFile) ?? throw new CliException($"{modes[0].Name} needs --reassignment-json-file"));
            if (modes[0] == list) return await ListAsync(client);
            if (modes[0] == generate)
            {
                var topics = ReassignmentJson.ParseTopicsToMove(File.ReadAllText(parse.GetValue(topicsFile) ?? throw new CliException("--generate needs --topics-to-move-json-file")));
                var ids = ParseBrokerList(parse.GetValue(brokerList) ?? throw new CliException("--generate needs --broker-list"));
                return await GenerateAsync(client, topics, ids, parse.GetValue(noRacks));
            }
            var moves = ReassignmentJson.ParseReassignment(Plan());
            if (modes[0] == execute) return await ExecuteAsync(client, moves, parse.GetValue(throttle), parse.GetValue(additional));
            if (modes[0] == verify) return await VerifyAsync(client, moves, parse.GetValue(preserve));
            return await CancelAsync(client, moves, parse.GetValue(preserve));
        });
        return command;
    }

    private static IReadOnlyList<int> ParseBrokerList(string value)
    {
        var ids = value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(s => int.TryParse(s, out var id) && id >= 0 ? id : throw new CliException($"--broker-list: '{s}' is not a broker id")).ToList();
        if (ids.Count == 0) throw new CliException("--broker-list names no broker");
        if (ids.Distinct().Count() != ids.Count) throw new CliException("Duplicate broker IDs in broker list.");
        return ids;
    }

    private static async Task<int> GenerateAsync(ReassignmentClient client, IReadOnlyList<string> topics, IReadOnlyList<int> ids, bool noRacks)
    {
        var known = await client.BrokersAsync();
        var unknown = ids.Where(id => known.All(b => b.Id != id)).ToList();
        if (unknown.Count > 0) throw new CliException($"Unknown broker(s) in --broker-list: {string.Join(",", unknown)}");
        var brokers = known.Where(b => ids.Contains(b.Id)).Select(b => noRacks ? b with { Rack = null } : b).ToList();
        var current = client.CurrentAssignment();
        var proposed = ReassignmentPlanner.Generate(current, topics, brokers);
        Console.Out.WriteLine("Current partition replica assignment");
        Console.Out.WriteLine(ReassignmentJson.Write(proposed.Select(m => m with { Replicas = current[(m.Topic, m.Partition)] })));
        Console.Out.WriteLine();
        Console.Out.WriteLine("Proposed partition reassignment configuration");
        Console.Out.WriteLine(ReassignmentJson.Write(proposed));
        return 0;
    }

    private static async Task<int> ExecuteAsync(ReassignmentClient client, IReadOnlyList<PartitionMove> moves, long? throttle, bool additional)
    {
        var ongoing = await client.ListAsync();
        if (ongoing.Count > 0 && !additional)
            throw new CliException("Cannot execute because there is an existing partition assignment.  Use --additional to override this and create a new " +
                "partition assignment in addition to the existing one. The --additional flag can also be used to change the throttle by resubmitting the current reassignment.");
        var current = client.CurrentAssignment();
        var missing = moves.Where(m => !current.ContainsKey((m.Topic, m.Partition))).Select(m => $"{m.Topic}-{m.Partition}").ToList();
        if (missing.Count > 0) throw new CliException($"Topic or partition not found: {string.Join(",", missing)}");
        Console.Out.WriteLine("Current partition replica assignment");
        Console.Out.WriteLine();
        Console.Out.WriteLine(ReassignmentJson.Write(moves.Select(m => m with { Replicas = current[(m.Topic, m.Partition)] })));
        Console.Out.WriteLine();
        Console.Out.WriteLine("Save this to use as the --reassignment-json-file option during rollback");
        if (throttle is { } rate)
        {
            if (rate < 0) throw new CliException("--throttle must be at least 0 bytes/s");
            Console.Out.WriteLine("Warning: You must run --verify periodically, until the reassignment completes, to ensure the throttle is removed.");
            await client.SetThrottleAsync(moves, current, rate);
            Console.Out.WriteLine($"The inter-broker throttle limit was set to {rate} B/s");
        }
        await StartAsync(client, moves);
        Console.Out.WriteLine($"Successfully started partition reassignment{(moves.Count == 1 ? "" : "s")} for {Names(moves)}");
        return 0;
    }

    /// <summary>Sends the plan; any partition refused fails the command, naming each with the broker's reason.</summary>
    internal static async Task StartAsync(ReassignmentClient client, IReadOnlyList<PartitionMove> moves)
    {
        var results = await client.AlterAsync(moves.Select(m => (m.Topic, m.Partition, (int[]?)m.Replicas)));
        var failed = results.Where(r => r.Value.Error != KafkaErrorCode.None).OrderBy(r => r.Key.Topic, StringComparer.Ordinal).ThenBy(r => r.Key.Partition).ToList();
        if (failed.Count > 0)
            throw new CliException("Error reassigning partition(s):" + string.Concat(failed.Select(f => $"\n{f.Key.Topic}-{f.Key.Partition}: {Reason(f.Value)}")));
    }

    private static async Task<int> VerifyAsync(ReassignmentClient client, IReadOnlyList<PartitionMove> moves, bool preserveThrottles)
    {
        var ongoing = await client.ListAsync();
        var current = client.CurrentAssignment();
        Console.Out.WriteLine("Status of partition reassignment:");
        var allDone = true;
        foreach (var move in moves.OrderBy(m => m.Topic, StringComparer.Ordinal).ThenBy(m => m.Partition))
        {
            var name = $"{move.Topic}-{move.Partition}";
            if (ongoing.ContainsKey((move.Topic, move.Partition)))
            {
                allDone = false;
                Console.Out.WriteLine($"Reassignment of partition {name} is still in progress.");
            }
            else if (current.TryGetValue((move.Topic, move.Partition), out var replicas) && replicas.SequenceEqual(move.Replicas))
            {
                Console.Out.WriteLine($"Reassignment of partition {name} is completed.");
            }
            else
            {
                allDone = false;
                var now = current.TryGetValue((move.Topic, move.Partition), out var r) ? $"[{string.Join(", ", r)}]" : "unknown (no such partition)";
                Console.Out.WriteLine($"There is no active reassignment of partition {name}, but replica set is {now} rather than [{string.Join(", ", move.Replicas)}].");
            }
        }
        if (allDone && !preserveThrottles)
        {
            Console.Out.WriteLine();
            await ClearThrottlesAsync(client, moves.Select(m => m.Topic));
        }
        return 0;
    }

    private static async Task<int> CancelAsync(ReassignmentClient client, IReadOnlyList<PartitionMove> moves, bool preserveThrottles)
    {
        var ongoing = await client.ListAsync();
        var active = moves.Where(m => ongoing.ContainsKey((m.Topic, m.Partition))).ToList();
        if (active.Count > 0)
        {
            var results = await client.AlterAsync(active.Select(m => (m.Topic, m.Partition, (int[]?)null)));
            // One that completed meanwhile has nothing left to cancel: not an error here, as it was not when listed.
            var failed = results.Where(r => r.Value.Error is not (KafkaErrorCode.None or KafkaErrorCode.NoReassignmentInProgress)).ToList();
            if (failed.Count > 0)
                throw new CliException("Error cancelling partition reassignment(s):" + string.Concat(failed.Select(f => $"\n{f.Key.Topic}-{f.Key.Partition}: {Reason(f.Value)}")));
            Console.Out.WriteLine($"Successfully cancelled partition reassignment{(active.Count == 1 ? "" : "s")} for: {Names(active)}");
        }
        else
        {
            Console.Out.WriteLine("None of the specified partition reassignments are active.");
        }
        if (!preserveThrottles) await ClearThrottlesAsync(client, moves.Select(m => m.Topic));
        return 0;
    }

    private static async Task<int> ListAsync(ReassignmentClient client)
    {
        var ongoing = await client.ListAsync();
        if (ongoing.Count == 0)
        {
            Console.Out.WriteLine("No partition reassignments found.");
            return 0;
        }
        Console.Out.WriteLine("Current partition reassignments:");
        foreach (var o in ongoing.Values.OrderBy(o => o.Topic, StringComparer.Ordinal).ThenBy(o => o.Partition))
            Console.Out.WriteLine($"{o.Topic}-{o.Partition}: replicas: {string.Join(",", o.Replicas)}. adding: {string.Join(",", o.Adding)}. removing: {string.Join(",", o.Removing)}.");
        return 0;
    }

    internal static async Task ClearThrottlesAsync(ReassignmentClient client, IEnumerable<string> topics)
    {
        var (brokers, names) = await client.ClearThrottlesAsync(topics);
        Console.Out.WriteLine($"Clearing broker-level throttles on broker{(brokers.Count == 1 ? "" : "s")} {string.Join(",", brokers)}");
        Console.Out.WriteLine($"Clearing topic-level throttle{(names.Count == 1 ? "" : "s")} on topic{(names.Count == 1 ? "" : "s")} {string.Join(",", names)}");
    }

    private static string Names(IEnumerable<PartitionMove> moves) =>
        string.Join(",", moves.OrderBy(m => m.Topic, StringComparer.Ordinal).ThenBy(m => m.Partition).Select(m => $"{m.Topic}-{m.Partition}"));

    internal static string Reason((KafkaErrorCode Error, string? Message) result) =>
        result.Message is { Length: > 0 } message ? $"{message} ({result.Error})" : result.Error.ToString();
}
