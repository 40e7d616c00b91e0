using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Tributary.Protocol.Messages;
using Tributary.Server;
using Tributary.Testing;
using static Tributary.Broker.Tests.ClusterTestKit;
using ErrorCode = Confluent.Kafka.ErrorCode;
using PartitionState = Tributary.Broker.Cluster.PartitionState;

namespace Tributary.Broker.Tests;

/// <summary>
/// Leadership going back to preferred replicas on three in-process brokers over one etcd: ElectLeaders through
/// Confluent.Kafka's AdminClient (PREFERRED and UNCLEAN, with Kafka's per-partition errors), the controller's automatic
/// rebalance, and the offline replicas that Metadata and DescribeTopicPartitions report while a broker is away.
/// </summary>
[Trait("Category", "Cluster")]
public sealed class ClusterLeaderElectionTests
{
    private static readonly TimeSpan Timeout = ClusterTestKit.Timeout;

    /// <summary>partition p prefers broker p+1, and every broker holds every partition.</summary>
    private static readonly int[][] Rotated = [[1, 2, 3], [2, 3, 1], [3, 1, 2]];

    /// <summary>The per-partition results, whether the client threw for an error among them or not.</summary>
    private static async Task<Dictionary<TopicPartition, ErrorCode>> ElectAsync(IAdminClient admin, ElectionType type, IEnumerable<TopicPartition>? partitions)
    {
        List<TopicPartitionError> results;
        try
        {
            results = (await admin.ElectLeadersAsync(type, partitions, new ElectLeadersOptions { RequestTimeout = TimeSpan.FromSeconds(30) })).TopicPartitions;
        }
        catch (ElectLeadersException e)
        {
            results = e.Results.TopicPartitions;
        }
        return results.ToDictionary(r => r.TopicPartition, r => r.Error.Code);
    }

    /// <summary>Waits until every running broker's image holds a state of the partition that is <paramref name="done"/>; returns the last.</summary>
    private static async Task<PartitionState> LeaderEverywhereAsync(TributaryCluster cluster, string topic, int partition, Func<PartitionState, bool> done, string what)
    {
        PartitionState? last = null;
        foreach (var broker in cluster.Brokers)
            last = await Eventually.ValueAsync(() => broker.State.Topics.Image.Partition(topic, partition)!, done, Timeout, $"{what} (broker {broker.State.NodeId})", s => s);
        return last!;
    }

    private static async Task ProduceAsync(IProducer<string, string> producer, string topic, int partitions, int from, int count)
    {
        for (var i = from; i < from + count; i++)
        {
            var result = await producer.ProduceAsync(new TopicPartition(topic, i % partitions), new Message<string, string> { Key = "k" + i, Value = "v" + i });
            Assert.Equal(PersistenceStatus.Persisted, result.Status);
        }
    }

    [Fact]
    public async Task PreferredElectionBringsLeadershipBackToARestartedBroker()
    {
        await using var cluster = await TributaryCluster.StartAsync(3, Settings(("auto.leader.rebalance.enable", "false")));
        await CreateAsync(cluster, "elected", 3, 3, new() { ["min.insync.replicas"] = "2" }, Rotated);
        using var producer = Producer(cluster);
        await ProduceAsync(producer, "elected", 3, 0, 30);

        var all = Enumerable.Range(0, 3).Select(p => new TopicPartition("elected", p)).ToList();
        using (var admin = Admin(cluster))
        {
            // Every preferred replica leads: nothing to do; a partition that does not exist is named as such.
            var results = await ElectAsync(admin, ElectionType.Preferred, [.. all, new TopicPartition("elected", 7)]);
            Assert.All(all, tp => Assert.Equal(ErrorCode.ElectionNotNeeded, results[tp]));
            Assert.Equal(ErrorCode.UnknownTopicOrPart, results[new TopicPartition("elected", 7)]);
            // UNCLEAN on a partition that has a leader is not needed either.
            Assert.Equal(ErrorCode.ElectionNotNeeded, (await ElectAsync(admin, ElectionType.Unclean, [all[0]]))[all[0]]);
        }

        await cluster.StopBrokerAsync(1);
        var moved = await LeaderEverywhereAsync(cluster, "elected", 0, s => s.Leader is 2 or 3 && !s.InIsr(1), "partition 0 led by another in-sync replica");
        await ProduceAsync(producer, "elected", 3, 30, 30);
        using (var admin = Admin(cluster))
        {
            // The preferred replica is away: it cannot lead, and the leader stays where it is.
            var results = await ElectAsync(admin, ElectionType.Preferred, [all[0]]);
            Assert.Equal(ErrorCode.PreferredLeaderNotAvailable, results[all[0]]);
            Assert.Equal(moved.LeaderEpoch, cluster.Broker(2)!.State.Topics.Image.Partition("elected", 0)!.LeaderEpoch);
        }
        await OfflineReplicasAreReportedAsync(cluster.Broker(2)!, "elected", offline: 1);

        await cluster.StartBrokerAsync(1);
        for (var p = 0; p < 3; p++)
            await LeaderEverywhereAsync(cluster, "elected", p, s => s.Isr.Length == 3, $"broker 1 back in the ISR of partition {p}");
        Assert.NotEqual(1, cluster.Broker(1)!.State.Topics.Image.Partition("elected", 0)!.Leader); // nobody moved it back on their own

        using (var admin = Admin(cluster))
        {
            // All partitions (null): as Kafka, only the partitions that needed an election are reported.
            var results = await ElectAsync(admin, ElectionType.Preferred, null);
            Assert.Equal(ErrorCode.NoError, Assert.Single(results).Value);
            Assert.Equal(all[0], results.Single().Key);
        }
        var back = await LeaderEverywhereAsync(cluster, "elected", 0, s => s.Leader == 1, "partition 0 led by broker 1 again");
        Assert.Equal(moved.LeaderEpoch + 1, back.LeaderEpoch);
        Assert.Equal(3, back.Isr.Length);
        await OfflineReplicasAreReportedAsync(cluster.Broker(2)!, "elected", offline: null);

        // Producers and consumers carry on with the leader that came back: nothing lost, nothing twice, in order.
        await ProduceAsync(producer, "elected", 3, 60, 30);
        await ReplicasAgreeAsync(cluster, "elected", 3);
        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = cluster.BootstrapServers,
            GroupId = "elected-readers",
            AutoOffsetReset = AutoOffsetReset.Earliest,
        }).Build();
        consumer.Subscribe("elected");
        var seen = new List<(int Partition, string Value)>();
        await Eventually.TrueAsync(() =>
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { } r) seen.Add((r.Partition.Value, r.Message.Value));
            return seen.Count >= 90;
        }, Timeout, "all 90 records read back through a group", () => seen.Count);
        for (var p = 0; p < 3; p++)
            Assert.Equal(Enumerable.Range(0, 90).Where(i => i % 3 == p).Select(i => "v" + i), seen.Where(s => s.Partition == p).Select(s => s.Value));
    }

    /// <summary>Metadata v12 and DescribeTopicPartitions from <paramref name="broker"/> list <paramref name="offline"/> (or none) as offline on every partition.</summary>
    private static async Task OfflineReplicasAreReportedAsync(TributaryServer broker, string topic, int? offline)
    {
        int[] expected = offline is { } id ? [id] : [];
        await using var raw = await RawKafkaClient.ConnectAsync(broker.BootstrapServers);
        var metadata = await raw.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = topic }] }, 12);
        Assert.All(metadata.Topics.Single().Partitions, p => Assert.Equal(expected, p.OfflineReplicas));
        Assert.Equal(offline is null ? 3 : 2, metadata.Brokers.Count);
        var described = await raw.SendAsync<DescribeTopicPartitionsResponse>(new DescribeTopicPartitionsRequest { Topics = [new() { Name = topic }] }, 0);
        var partitions = described.Topics.Single().Partitions;
        Assert.Equal(3, partitions.Count);
        Assert.All(partitions, p =>
        {
            Assert.Equal(expected, p.OfflineReplicas);
            Assert.Equal(3, p.ReplicaNodes.Count); // replicas are listed whether online or not
            Assert.DoesNotContain(p.LeaderId, expected);
            Assert.True(p.LeaderId > 0);
        });
    }

    [Fact]
    public async Task TheControllerMovesLeadershipBackOnItsOwnWhenTheImbalanceIsTooHigh()
    {
        await using var cluster = await TributaryCluster.StartAsync(3, Settings(("leader.imbalance.check.interval.seconds", "1")));
        await CreateAsync(cluster, "rebalanced", 3, 3, assignment: Rotated);
        await cluster.StopBrokerAsync(3);
        var moved = await LeaderEverywhereAsync(cluster, "rebalanced", 2, s => s.Leader is 1 or 2, "partition 2 led by another in-sync replica");

        await cluster.StartBrokerAsync(3);
        // Broker 3 prefers one partition and leads none of it (ratio 1 > 10 %): once it is in sync again it leads it.
        var back = await LeaderEverywhereAsync(cluster, "rebalanced", 2, s => s.Leader == 3, "partition 2 led by its preferred replica again");
        Assert.True(back.LeaderEpoch > moved.LeaderEpoch);
        Assert.Contains(3, back.Isr);
        // The rebalance moved it (the controller's failover duty leaves a live leader where it is).
        Assert.True(cluster.Brokers.Sum(b => b.LeaderRebalancer!.Moved) >= 1);
        using var producer = Producer(cluster);
        await ProduceAsync(producer, "rebalanced", 3, 0, 9);
    }

    [Fact]
    public async Task UncleanElectionLetsAnOutOfSyncReplicaLeadWhenNoInSyncOneIsLeft()
    {
        await using var cluster = await TributaryCluster.StartAsync(3, Settings(("auto.leader.rebalance.enable", "false")));
        await CreateAsync(cluster, "lossy", 1, 2, assignment: [[2, 3]]);
        using (var producer = Producer(cluster))
            await ProduceAsync(producer, "lossy", 1, 0, 5);
        var partition = new TopicPartition("lossy", 0);

        await cluster.StopBrokerAsync(3);
        await LeaderEverywhereAsync(cluster, "lossy", 0, s => s.Isr is [2], "the ISR down to broker 2");
        await cluster.StopBrokerAsync(2);
        await LeaderEverywhereAsync(cluster, "lossy", 0, s => s.Leader == -1, "no leader");
        using (var admin = Admin(cluster))
            Assert.Equal(ErrorCode.EligibleLeadersNotAvailable, (await ElectAsync(admin, ElectionType.Unclean, [partition]))[partition]);

        await cluster.StartBrokerAsync(3);
        // Broker 3 is alive but out of sync: with unclean election off, nobody leads until an operator says so.
        await LeaderEverywhereAsync(cluster, "lossy", 0, s => s.Leader == -1 && s.Isr is [2], "broker 3 back, still no leader");
        using (var admin = Admin(cluster))
        {
            Assert.Equal(ErrorCode.PreferredLeaderNotAvailable, (await ElectAsync(admin, ElectionType.Preferred, [partition]))[partition]);
            Assert.Equal(ErrorCode.NoError, (await ElectAsync(admin, ElectionType.Unclean, [partition]))[partition]);
        }
        var led = await LeaderEverywhereAsync(cluster, "lossy", 0, s => s.Leader == 3, "broker 3 leads");
        Assert.Equal([3], led.Isr);
        using (var producer = Producer(cluster))
            await ProduceAsync(producer, "lossy", 1, 5, 5);
    }
}
