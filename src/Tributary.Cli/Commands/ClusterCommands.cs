using System.CommandLine;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Tributary.Cli.Kafka;
using Tributary.Cli.Output;

namespace Tributary.Cli.Commands;

/// <summary><c>tributary cluster …</c>: what the cluster says about itself.</summary>
public static class ClusterCommands
{
    public static Command Create()
    {
        var cluster = new Command("cluster", "Inspect the cluster") { InfoCommand() };
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
