using System.CommandLine;
using System.Diagnostics;
using Tributary.Cli.Kafka;
using Tributary.Cli.Output;
using Tributary.Cli.Parsing;

namespace Tributary.Cli.Commands;

/// <summary>
/// <c>tributary broker drain N</c>: empties a broker before it is retired or serviced. Every replica it holds is
/// reassigned to another broker (<see cref="ReassignmentPlanner.Drain"/>), which moves its leaderships too (a completed
/// reassignment hands leadership to a target replica in sync); the command waits, printing progress, until the broker
/// holds no replica and leads no partition. Works against any cluster that serves KIP-455.
/// </summary>
public static class BrokerCommands
{
    public static Command Create() => new Command("broker", "Manage brokers") { DrainCommand() }.WithClientOptions();

    private static Command DrainCommand()
    {
        var node = new Argument<int>("broker-id") { Description = "The broker to empty" };
        var throttle = new Option<long?>("--throttle") { Description = "Replication of the moving replicas at most this many bytes/s (cleared when done)" };
        var timeout = new Option<int>("--timeout") { Description = "Give up waiting after this many seconds (the moves go on); 0 waits until done", DefaultValueFactory = _ => 0 };
        var dryRun = new Option<bool>("--dry-run") { Description = "Print the plan (a --reassignment-json-file) and change nothing" };
        var command = new Command("drain", "Move every replica and leadership off a broker, and wait until it holds none") { node, throttle, timeout, dryRun };
        command.SetGuardedAction(async (parse, ct) =>
        {
            var id = parse.GetValue(node);
            using var admin = ClientOptions.Admin(parse);
            var client = new ReassignmentClient(admin);
            var brokers = await client.BrokersAsync();
            // A reassignment in progress counts by its target: that is where the partition is going.
            var ongoing = await client.ListAsync();
            var intended = client.CurrentAssignment().ToDictionary(kv => kv.Key, kv => ongoing.TryGetValue(kv.Key, out var o) ? o.Target : kv.Value);
            var (moves, problems) = ReassignmentPlanner.Drain(intended, brokers, id);
            if (problems.Count > 0) throw new CliException($"cannot drain broker {id}:\n  " + string.Join("\n  ", problems));
            if (parse.GetValue(dryRun))
            {
                Console.Out.WriteLine(ReassignmentJson.Write(moves));
                return 0;
            }
            if (moves.Count > 0)
            {
                Console.Out.WriteLine($"Moving {moves.Count} replica{(moves.Count == 1 ? "" : "s")} off broker {id}:");
                foreach (var m in moves.Take(20)) Console.Out.WriteLine($"  {m.Topic}-{m.Partition}: [{string.Join(",", intended[(m.Topic, m.Partition)])}] -> [{string.Join(",", m.Replicas)}]");
                if (moves.Count > 20) Console.Out.WriteLine($"  ... and {moves.Count - 20} more");
                if (parse.GetValue(throttle) is { } rate)
                {
                    await client.SetThrottleAsync(moves, client.CurrentAssignment(), rate);
                    Console.Out.WriteLine($"The inter-broker throttle limit was set to {rate} B/s");
                }
                await PartitionCommands.StartAsync(client, moves);
            }
            await WaitAsync(client, id, moves.Count, parse.GetValue(timeout), ct);
            if (moves.Count > 0 && parse.GetValue(throttle) is not null) await PartitionCommands.ClearThrottlesAsync(client, moves.Select(m => m.Topic));
            Console.Out.WriteLine($"Broker {id} holds no replicas and leads no partitions.");
            return 0;
        });
        return command;
    }

    /// <summary>Polls once a second until no partition has a replica on the broker; prints each change of progress.</summary>
    private static async Task WaitAsync(ReassignmentClient client, int id, int total, int timeoutSeconds, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var last = "";
        while (true)
        {
            var remaining = client.CurrentAssignment().Count(kv => kv.Value.Contains(id));
            var leading = ClientOptions.Metadata(client.Admin).Topics.SelectMany(t => t.Partitions).Count(p => p.Leader == id);
            var inProgress = (await client.ListAsync()).Count;
            if (remaining == 0 && leading == 0) return;
            var progress = $"{Math.Max(0, total - remaining)}/{total} partitions moved off broker {id}; {remaining} still there, {leading} led by it, {inProgress} reassignment{(inProgress == 1 ? "" : "s")} in progress";
            if (progress != last) Console.Out.WriteLine($"[{clock.Elapsed:hh\\:mm\\:ss}] {progress}");
            last = progress;
            if (timeoutSeconds > 0 && clock.Elapsed.TotalSeconds >= timeoutSeconds)
                throw new CliException($"broker {id} still holds {remaining} replica(s) after {timeoutSeconds} s; the reassignments go on (tributary partition reassign --list)");
            await Task.Delay(TimeSpan.FromSeconds(1), ct);
        }
    }
}
