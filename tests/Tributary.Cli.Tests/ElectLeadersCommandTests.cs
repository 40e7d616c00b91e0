using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Tributary.Cli.Kafka;

namespace Tributary.Cli.Tests;

/// <summary>
/// <c>tributary cluster elect-leaders</c> and the offline column of <c>tributary topic describe</c>, run as the real
/// executable against three in-process brokers: a broker stops and comes back, and the command moves its leadership
/// back, as kafka-leader-election.sh does.
/// </summary>
[Trait("Category", "Cluster")]
public sealed class ElectLeadersCommandTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task APreferredElectionFromAJsonFileBringsLeadershipBack()
    {
        NativeLibrdkafka.EnsureLoaded();
        await using var cluster = await TributaryCluster.StartAsync(3, new Dictionary<string, string>
        {
            ["broker.session.timeout.ms"] = "6000",
            ["schema.registry.enable"] = "false",
            ["replica.lag.time.max.ms"] = "4000",
            ["replica.fetch.wait.max.ms"] = "100",
            ["auto.leader.rebalance.enable"] = "false",
        });
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.BootstrapServers }).Build())
            await admin.CreateTopicsAsync([new TopicSpecification
            {
                Name = "cli-elect",
                NumPartitions = 2,
                ReplicationFactor = -1,
                ReplicasAssignments = new Dictionary<int, List<int>> { [0] = [1, 2], [1] = [2, 1] },
            }]);
        await Eventually.TrueAsync(() => cluster.Brokers.All(b => b.State.Topics.Get("cli-elect") is not null), Timeout, "every broker sees the topic");

        await cluster.StopBrokerAsync(1);
        await Eventually.TrueAsync(() => cluster.Brokers.All(b => b.State.Topics.Image is var image && !image.Brokers.ContainsKey(1)
            && image.Partition("cli-elect", 0) is { Leader: 2, Isr: [2] }), Timeout, "every broker sees broker 1 gone and broker 2 leading partition 0");
        var described = await CliProcess.RunAsync(cluster.BootstrapServers, ["topic", "describe", "cli-elect"]);
        Assert.Equal(0, described.Exit);
        // Partition 0: leader 2, replicas 1,2, ISR 2, offline 1.
        Assert.Contains(described.Out.Split('\n'), l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries) is ["0", "2", "1,2", "2", "1", ..]);

        await cluster.StartBrokerAsync(1);
        await Eventually.TrueAsync(() => cluster.Brokers.All(b => b.State.Topics.Image.Partition("cli-elect", 0)!.Isr.Length == 2), Timeout,
            "broker 1 back in the ISR", () => cluster.Broker(2)!.State.Topics.Image.Partition("cli-elect", 0));
        var file = Path.Combine(Path.GetTempPath(), $"elect-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(file, """{"partitions": [{"topic": "cli-elect", "partition": 0}, {"topic": "cli-elect", "partition": 1}]}""");
        try
        {
            var elected = await CliProcess.RunAsync(cluster.BootstrapServers, ["cluster", "elect-leaders", "--election-type", "preferred", "--path-to-json-file", file]);
            Assert.True(elected.Exit == 0, elected.Out + elected.Err);
            Assert.Contains("Successfully completed leader election (PREFERRED) for partitions cli-elect-0", elected.Out);
            Assert.Contains("Valid replica already elected for partitions cli-elect-1", elected.Out);
        }
        finally
        {
            File.Delete(file);
        }
        await Eventually.TrueAsync(() => cluster.Brokers.All(b => b.State.Topics.Image.Partition("cli-elect", 0)!.Leader == 1), Timeout, "broker 1 leads partition 0 again");

        // Nothing left to elect is not a failure; a partition that does not exist is.
        var again = await CliProcess.RunAsync(cluster.BootstrapServers, ["cluster", "elect-leaders", "--election-type", "PREFERRED", "--all-topic-partitions"]);
        Assert.True(again.Exit == 0, again.Out + again.Err);
        var missing = await CliProcess.RunAsync(cluster.BootstrapServers, ["cluster", "elect-leaders", "--election-type", "unclean", "--topic", "cli-elect", "--partition", "9"]);
        Assert.Equal(1, missing.Exit);
        Assert.Contains("cli-elect-9", missing.Err);
    }

    [Theory]
    [InlineData("--topic", "t")]
    [InlineData("--partition", "0")]
    [InlineData("--all-topic-partitions", "--topic", "t", "--partition", "0")]
    public async Task TheOptionsAreCheckedAsKafkasToolChecksThem(params string[] args)
    {
        var result = await CliProcess.RunAsync("127.0.0.1:1", ["cluster", "elect-leaders", "--election-type", "preferred", .. args]);
        Assert.Equal(1, result.Exit);
        Assert.Contains("--topic", result.Err);
    }
}
