using Confluent.Kafka;
using Tributary.Server;
using Tributary.Testing;
using static Tributary.Broker.Tests.ClusterTestKit;

namespace Tributary.Broker.Tests;

/// <summary>
/// Replication factor 3 on three in-process brokers (one etcd child process), driven by real Confluent.Kafka clients:
/// followers copy the leader's bytes, acks=all waits for the ISR, min.insync.replicas refuses, a stopped leader's
/// partitions move to an in-sync follower without losing or duplicating an acknowledged record, a returning broker
/// catches up and rejoins the ISR, and committed group offsets survive their coordinator's loss.
/// </summary>
[Trait("Category", "Cluster")]
public sealed class ClusterReplicationTests
{
    private static readonly TimeSpan Timeout = ClusterTestKit.Timeout;
    private static readonly Dictionary<string, string> Settings = ClusterTestKit.Settings();

    [Fact]
    public async Task FollowersHoldTheLeadersBytesAndAcksAllWaitsForThem()
    {
        await using var cluster = await TributaryCluster.StartAsync(3, Settings);
        await CreateAsync(cluster, "copied", 3, 3, new() { ["min.insync.replicas"] = "2" });
        using (var producer = Producer(cluster))
        {
            for (var i = 0; i < 300; i++)
                producer.Produce(new TopicPartition("copied", i % 3), new Message<string, string> { Key = "k" + i, Value = "v" + i });
            Assert.Equal(0, producer.Flush(Timeout));
        }
        await ReplicasAgreeAsync(cluster, "copied", 3);
        var image = cluster.Broker(1)!.State.Topics.Image;
        for (var p = 0; p < 3; p++)
        {
            Assert.Equal(3, image.Partition("copied", p)!.Isr.Length);
            Assert.Equal(100, cluster.Brokers[0].State.Topics.GetPartition("copied", p)!.LogEndOffset);
        }
    }

    [Fact]
    public async Task AStoppedLeadersPartitionsMoveToAnInSyncFollowerLosingNothing()
    {
        await using var cluster = await TributaryCluster.StartAsync(3, Settings);
        await CreateAsync(cluster, "moved", 1, 3, new() { ["min.insync.replicas"] = "2" });
        using var producer = Producer(cluster);
        var acked = new List<long>();
        for (var i = 0; i < 100; i++)
            acked.Add((await producer.ProduceAsync("moved", new Message<string, string> { Key = "k", Value = "a" + i })).Offset.Value);
        var leader = cluster.Broker(1)!.State.Topics.Image.Partition("moved", 0)!.Leader;
        await cluster.StopBrokerAsync(leader);
        var survivor = cluster.Brokers[0];
        var moved = await Eventually.ValueAsync(() => survivor.State.Topics.Image.Partition("moved", 0)!, s => s.Leader >= 0 && s.Leader != leader, Timeout,
            "a new leader from the ISR", s => s);
        Assert.DoesNotContain(leader, moved.Isr);
        Assert.True(moved.LeaderEpoch >= 1);
        for (var i = 100; i < 200; i++)
            acked.Add((await producer.ProduceAsync("moved", new Message<string, string> { Key = "k", Value = "a" + i })).Offset.Value);

        // The old leader comes back as a follower, catches up and rejoins the ISR.
        await cluster.StartBrokerAsync(leader);
        await Eventually.TrueAsync(() => survivor.State.Topics.Image.Partition("moved", 0)!.Isr.Length == 3, Timeout, "the returning broker rejoins the ISR",
            () => survivor.State.Topics.Image.Partition("moved", 0));
        await ReplicasAgreeAsync(cluster, "moved", 1);

        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = cluster.BootstrapServers,
            GroupId = "moved-check",
            AutoOffsetReset = AutoOffsetReset.Earliest,
        }).Build();
        consumer.Assign(new TopicPartitionOffset("moved", 0, Offset.Beginning));
        var seen = new List<(long Offset, string Value)>();
        await Eventually.TrueAsync(() =>
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { } r) seen.Add((r.Offset.Value, r.Message.Value));
            return seen.Count >= 200;
        }, Timeout, "every acknowledged record read back", () => seen.Count);
        Assert.Equal(Enumerable.Range(0, 200).Select(i => "a" + i), seen.Select(s => s.Value)); // none lost, none twice, in order
        Assert.Equal(acked, seen.Select(s => s.Offset));
    }

    [Fact]
    public async Task MinInSyncReplicasRefusesAcksAllOnceTheIsrIsTooSmall()
    {
        await using var cluster = await TributaryCluster.StartAsync(3, Settings);
        await CreateAsync(cluster, "strict", 1, 3, new() { ["min.insync.replicas"] = "3" });
        using (var producer = Producer(cluster))
            await producer.ProduceAsync("strict", new Message<string, string> { Key = "k", Value = "all three" });
        var leader = cluster.Broker(1)!.State.Topics.Image.Partition("strict", 0)!.Leader;
        var follower = new[] { 1, 2, 3 }.First(n => n != leader);
        await cluster.StopBrokerAsync(follower);
        await Eventually.TrueAsync(() => cluster.Broker(leader)!.State.Topics.Image.Partition("strict", 0)!.Isr.Length == 2, Timeout, "the ISR shrinks");
        using var strict = new ProducerBuilder<string, string>(new ProducerConfig
        {
            BootstrapServers = cluster.Broker(leader)!.BootstrapServers,
            Acks = Acks.All,
            MessageSendMaxRetries = 0,
        }).Build();
        var e = await Assert.ThrowsAsync<ProduceException<string, string>>(() => strict.ProduceAsync("strict", new Message<string, string> { Key = "k", Value = "two of three" }));
        Assert.Equal(ErrorCode.NotEnoughReplicas, e.Error.Code);
    }

    [Fact]
    public async Task CommittedOffsetsSurviveTheLossOfTheirCoordinator()
    {
        await using var cluster = await TributaryCluster.StartAsync(3, Settings);
        await CreateAsync(cluster, "orders", 1, 3);
        using (var producer = Producer(cluster))
            for (var i = 0; i < 10; i++) await producer.ProduceAsync("orders", new Message<string, string> { Key = "k", Value = "o" + i });
        using (var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig { BootstrapServers = cluster.BootstrapServers, GroupId = "billing" }).Build())
        {
            // The first commit creates __consumer_offsets; until its coordinator has loaded the answer is COORDINATOR_NOT_AVAILABLE
            // (retriable), which a synchronous Commit reports instead of retrying.
            await Eventually.TrueAsync(() =>
            {
                try
                {
                    consumer.Commit([new TopicPartitionOffset("orders", 0, 7)]);
                    return true;
                }
                catch (KafkaException e) when (e.Error.Code is ErrorCode.GroupCoordinatorNotAvailable or ErrorCode.NotCoordinatorForGroup or ErrorCode.GroupLoadInProgress)
                {
                    return false;
                }
            }, Timeout, "the first commit");
        }
        var offsets = cluster.Broker(1)!.State.Topics.Get("__consumer_offsets")!;
        Assert.Equal(3, offsets.Partitions[0].Replicas.Length);
        var coordinatorPartition = cluster.Broker(1)!.Groups.PartitionFor("billing");
        var coordinator = offsets.Partitions[coordinatorPartition].Leader;
        await cluster.StopBrokerAsync(coordinator);
        using var again = new ConsumerBuilder<string, string>(new ConsumerConfig { BootstrapServers = cluster.BootstrapServers, GroupId = "billing" }).Build();
        var committed = await Eventually.ValueAsync(() =>
        {
            try
            {
                return again.Committed([new TopicPartition("orders", 0)], TimeSpan.FromSeconds(5))[0].Offset.Value;
            }
            catch (KafkaException)
            {
                return -1;
            }
        }, o => o == 7, Timeout, "the committed offset from the new coordinator", o => o);
        Assert.Equal(7, committed);
    }

    [Fact]
    public async Task EveryBrokerHandsOutDifferentProducerIds()
    {
        // Two idempotent producers that got the same id from two brokers would have each other's batches answered as
        // duplicates, acknowledged and never written (found by ClusterFaultTests).
        await using var cluster = await TributaryCluster.StartAsync(3, Settings);
        var ids = new List<long>();
        foreach (var broker in cluster.Brokers)
        {
            await using var raw = await RawKafkaClient.ConnectAsync(broker.BootstrapServers);
            for (var i = 0; i < 2; i++) ids.Add((await IdempotenceTests.InitAsync(raw)).Pid);
        }
        Assert.Equal(ids.Count, ids.Distinct().Count());
    }

    [Fact]
    public async Task AnAppendOnABrokerThatNoLongerLeadsIsNotAcknowledged()
    {
        // A paused leader resuming with produces queued on its sockets appends them before it sees the new image; its
        // acks=all wait must then say NOT_LEADER_OR_FOLLOWER, not NONE (found by ClusterFaultTests: the appends were
        // acknowledged and then truncated).
        await using var cluster = await TributaryCluster.StartAsync(3, Settings);
        await CreateAsync(cluster, "zombie", 1, 3);
        var leader = cluster.Broker(1)!.State.Topics.Image.Partition("zombie", 0)!.Leader;
        var follower = cluster.Brokers.First(b => b.State.NodeId != leader);
        Assert.Equal(Tributary.Protocol.Messages.ErrorCode.NotLeaderOrFollower,
            await follower.State.Replicas!.WaitForReplicationAsync("zombie", 0, 1, 2, 1000, CancellationToken.None));
    }
}
