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
        var command = new Command("info", "Show brokers, cluster id, controller and topic count");
        command.Aliases.Add("metadata");
        command.SetGuardedAction(async (parse, _) =>
        {
            using var admin = ClientOptions.Admin(parse);
            var cluster = await admin.DescribeClusterAsync(new DescribeClusterOptions { RequestTimeout = ClientOptions.Timeout });
            var metadata = ClientOptions.Metadata(admin);

            Terminal.Info($"Cluster id:  {cluster.ClusterId ?? "(none)"}");
            Terminal.Info($"Controller:  {(cluster.Controller is { } c ? c.Id.ToString() : "(none)")}");
            Terminal.Info($"Topics:      {metadata.Topics.Count}");
            var table = Terminal.NewTable("#ID", "HOST", "#PORT", "RACK", "CONTROLLER");
            foreach (var node in cluster.Nodes.OrderBy(n => n.Id))
            {
                table.AddText(node.Id.ToString(), node.Host, node.Port.ToString(), node.Rack ?? "", node.Id == cluster.Controller?.Id ? "*" : "");
            }
            Terminal.Write(table);
            return 0;
        });
        return command;
    }
}
