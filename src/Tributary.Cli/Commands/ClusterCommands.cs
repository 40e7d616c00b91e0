using System.CommandLine;
using System.Text.Json;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Tributary.Cli.Kafka;
using Tributary.Cli.Output;

namespace Tributary.Cli.Commands;

/// <summary><c>tributary cluster …</c>: what the cluster says about itself, and leader elections.</summary>
public static class ClusterCommands
{
    public static Command Create()
    {
        var cluster = new Command("cluster", "Inspect the cluster and elect partition leaders") { InfoCommand(), ElectLeadersCommand() };
        return cluster.WithClientOptions();
    }

    private static Command InfoCommand()
    {
        var command = new Command("info", "Show brokers, cluster id, controller, topic count, under-replicated and offline partitions");
        command.Aliases.Add("metadata");
        command.SetGuardedAction(async (parse, _) =>
        {
            using var admin = ClientOptions.Admin(parse);
            var metadata = ClientOptions.Metadata(admin);
            var cluster = await DescribeCluster(admin);

            Terminal.Info($"Cluster id:  {cluster?.ClusterId ?? "(unknown)"}");
            Terminal.Info($"Controller:  {(cluster?.Controller is { } c ? c.Id.ToString() : "(unknown)")}");
            Terminal.Info($"Topics:      {metadata.Topics.Count}");
            // As kafka-topics --under-replicated-partitions / --unavailable-partitions count them.
            var partitions = metadata.Topics.SelectMany(t => t.Partitions.Select(p => (Topic: t.Topic, Partition: p))).ToList();
            var underReplicated = partitions.Where(x => x.Partition.Leader >= 0 && x.Partition.InSyncReplicas.Length < x.Partition.Replicas.Length).ToList();
            var offline = partitions.Where(x => x.Partition.Leader < 0).ToList();
            Terminal.Info($"Partitions:  {partitions.Count} ({underReplicated.Count} under-replicated, {offline.Count} offline)");
            foreach (var (topic, partition) in underReplicated.Take(20))
                Terminal.Info($"  under-replicated: {topic}-{partition.PartitionId} replicas [{string.Join(",", partition.Replicas)}] ISR [{string.Join(",", partition.InSyncReplicas)}]");
            foreach (var (topic, partition) in offline.Take(20))
                Terminal.Info($"  offline: {topic}-{partition.PartitionId} replicas [{string.Join(",", partition.Replicas)}]");
            var table = Terminal.NewTable("#ID", "HOST", "#PORT", "RACK", "CONTROLLER");
            if (cluster is not null)
            {
                foreach (var node in cluster.Nodes.OrderBy(n => n.Id))
                {
                    table.AddText(node.Id.ToString(), node.Host, node.Port.ToString(), node.Rack ?? "", node.Id == cluster.Controller?.Id ? "*" : "");
                }
            }
            else
            {
                foreach (var broker in metadata.Brokers.OrderBy(b => b.BrokerId))
                {
                    table.AddText(broker.BrokerId.ToString(), broker.Host, broker.Port.ToString(), "", "");
                }
            }
            Terminal.Write(table);
            return 0;
        });
        return command;
    }

    /// <summary>
    /// Kafka's kafka-leader-election.sh: a PREFERRED or UNCLEAN election for one partition, the partitions of a JSON
    /// file (<c>{"partitions": [{"topic": "t", "partition": 0}]}</c>) or every partition, with its three kinds of lines
    /// (elected, already elected, failed); exit code 1 when any partition could not be elected.
    /// </summary>
    private static Command ElectLeadersCommand()
    {
        var type = new Option<string>("--election-type") { Description = "preferred or unclean", Required = true };
        type.AcceptOnlyFromAmong("preferred", "unclean", "PREFERRED", "UNCLEAN");
        var topic = new Option<string?>("--topic") { Description = "The topic of the partition to elect (with --partition)" };
        var partition = new Option<int?>("--partition") { Description = "The partition to elect (with --topic)" };
        var all = new Option<bool>("--all-topic-partitions") { Description = "Elect every partition of every topic" };
        var file = new Option<FileInfo?>("--path-to-json-file") { Description = "JSON file {\"partitions\": [{\"topic\": \"t\", \"partition\": 0}, ...]}" };
        var command = new Command("elect-leaders", "Move partition leadership to the preferred replica, or to any live replica when none in sync is left (unclean)")
        {
            type, topic, partition, all, file,
        };
        command.SetGuardedAction(async (parse, _) =>
        {
            var election = parse.GetValue(type)!.Equals("unclean", StringComparison.OrdinalIgnoreCase) ? ElectionType.Unclean : ElectionType.Preferred;
            var partitions = Partitions(parse.GetValue(topic), parse.GetValue(partition), parse.GetValue(all), parse.GetValue(file));
            using var admin = ClientOptions.Admin(parse);
            List<TopicPartitionError> results;
            try
            {
                results = (await admin.ElectLeadersAsync(election, partitions, new ElectLeadersOptions { RequestTimeout = ClientOptions.Timeout })).TopicPartitions;
            }
            catch (ElectLeadersException e)
            {
                results = e.Results.TopicPartitions;
            }
            return Report(election, results);
        });
        return command;
    }

    /// <summary>The partitions named (null: all), checked as kafka-leader-election.sh checks its options.</summary>
    private static List<TopicPartition>? Partitions(string? topic, int? partition, bool all, FileInfo? file)
    {
        if ((topic is not null ? 1 : 0) + (all ? 1 : 0) + (file is not null ? 1 : 0) != 1)
            throw new CliException("give exactly one of --topic, --all-topic-partitions and --path-to-json-file");
        if ((topic is null) != (partition is null))
            throw new CliException("--topic and --partition go together");
        if (topic is not null) return [new TopicPartition(topic, partition!.Value)];
        if (all) return null;
        List<TopicPartition> listed;
        try
        {
            using var json = JsonDocument.Parse(File.ReadAllText(file!.FullName));
            listed = [.. json.RootElement.GetProperty("partitions").EnumerateArray()
                .Select(p => new TopicPartition(p.GetProperty("topic").GetString()!, p.GetProperty("partition").GetInt32()))];
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or IOException)
        {
            throw new CliException($"{file!.FullName}: expected {{\"partitions\": [{{\"topic\": \"t\", \"partition\": 0}}, ...]}} ({e.Message})");
        }
        var duplicates = listed.GroupBy(p => (p.Topic, p.Partition.Value)).Where(g => g.Count() > 1).Select(g => $"{g.Key.Topic}-{g.Key.Value}").ToList();
        if (duplicates.Count > 0) throw new CliException($"duplicate partitions in {file!.Name}: {string.Join(", ", duplicates)}");
        return listed.Count > 0 ? listed : throw new CliException($"{file!.Name} names no partition");
    }

    /// <summary>kafka-leader-election.sh's report: the elected, those whose leader was already right, the failures.</summary>
    private static int Report(ElectionType election, List<TopicPartitionError> results)
    {
        static string Names(IEnumerable<TopicPartitionError> rs) => string.Join(", ", rs.Select(r => $"{r.Topic}-{r.Partition.Value}"));
        var kind = election.ToString().ToUpperInvariant();
        var elected = results.Where(r => !r.Error.IsError).ToList();
        var notNeeded = results.Where(r => r.Error.Code == ErrorCode.ElectionNotNeeded).ToList();
        var failed = results.Where(r => r.Error.IsError && r.Error.Code != ErrorCode.ElectionNotNeeded).ToList();
        if (elected.Count > 0) Terminal.Success($"Successfully completed leader election ({kind}) for partitions {Names(elected)}");
        if (notNeeded.Count > 0) Terminal.Info($"Valid replica already elected for partitions {Names(notNeeded)}");
        foreach (var r in failed) Terminal.Error($"Error completing leader election ({kind}) for partition: {r.Topic}-{r.Partition.Value}: {ErrorHandling.Describe(r.Error)}");
        if (results.Count == 0) Terminal.Info("No partition needed an election");
        return failed.Count > 0 ? ErrorHandling.Failure : 0;
    }

    /// <summary>Cluster id and controller; brokers that cannot say fall back to the metadata's broker list.</summary>
    private static async Task<DescribeClusterResult?> DescribeCluster(IAdminClient admin)
    {
        try
        {
            return await admin.DescribeClusterAsync(new DescribeClusterOptions { RequestTimeout = ClientOptions.Timeout });
        }
        catch (KafkaException e)
        {
            Terminal.Warn($"cluster id and controller unavailable: {ErrorHandling.Describe(e)}");
            return null;
        }
    }
}
