using Confluent.Kafka;
using Tributary.Broker.Cluster;
using Tributary.Broker.Replication;
using Tributary.Server;
using Tributary.Testing;
using static Tributary.Broker.Tests.ClusterTestKit;

namespace Tributary.Broker.Tests;

/// <summary>KIP-392: a consumer that names its rack reads from the in-sync replica in that rack.</summary>
public sealed class FetchFromFollowerTests
{
    private static MetadataImage Image(params (int Node, string? Rack, bool ShuttingDown)[] brokers) =>
        new("c", 1, 1, brokers.Select(b => new BrokerRegistration(b.Node, "127.0.0.1", 9000 + b.Node, b.Rack, Guid.NewGuid(), b.ShuttingDown)), []);

    [Fact]
    public void The_selector_picks_an_in_sync_replica_in_the_consumers_rack_and_otherwise_the_leader()
    {
        var image = Image((1, "a", false), (2, "b", false), (3, "c", false));
        var state = new PartitionState([1, 2, 3], [1, 2, 3], Leader: 1, LeaderEpoch: 0, PartitionEpoch: 0);
        Assert.Equal(2, RackAwareReplicaSelector.Select(state, "b", image));
        Assert.Equal(-1, RackAwareReplicaSelector.Select(state, "a", image)); // the leader is in the consumer's rack
        Assert.Equal(-1, RackAwareReplicaSelector.Select(state, "z", image)); // no replica there
        Assert.Equal(-1, RackAwareReplicaSelector.Select(state, "", image));  // no rack named
        Assert.Equal(-1, RackAwareReplicaSelector.Select(state with { Isr = [1, 3] }, "b", image)); // out of sync
        Assert.Equal(-1, RackAwareReplicaSelector.Select(state, "b", Image((1, "a", false), (2, "b", true), (3, "c", false)))); // leaving
    }

    [Fact]
    [Trait("Category", "Cluster")]
    public async Task A_consumer_with_client_rack_reads_everything_from_the_follower_in_its_rack()
    {
        await using var cluster = await TributaryCluster.StartAsync(3,
            Settings(("replica.selector.class", RackAwareReplicaSelector.ClassName)), racks: ["rack-a", "rack-b", "rack-c"]);
        await CreateAsync(cluster, "near", 1, 3, assignment: [[1, 2, 3]]);
        using (var producer = Producer(cluster))
        {
            for (var i = 0; i < 200; i++)
                producer.Produce(new TopicPartition("near", 0), new Message<string, string> { Key = "k" + i, Value = "v" + i });
            Assert.Equal(0, producer.Flush(ClusterTestKit.Timeout));
        }
        await ReplicasAgreeAsync(cluster, "near", 1);

        var values = Consume(cluster, clientRack: "rack-b", 200);
        Assert.Equal(Enumerable.Range(0, 200).Select(i => "v" + i), values);
        Assert.True(cluster.Broker(2)!.State.Replicas!.FollowerFetchBytes > 0, "broker 2 (rack-b) served no records to the consumer");
        Assert.Equal(0, cluster.Broker(3)!.State.Replicas!.FollowerFetchBytes);

        // Without a rack the leader serves, as before.
        var before = cluster.Broker(2)!.State.Replicas!.FollowerFetchBytes;
        Assert.Equal(200, Consume(cluster, clientRack: null, 200).Count);
        Assert.Equal(before, cluster.Broker(2)!.State.Replicas!.FollowerFetchBytes);
    }

    private static List<string> Consume(TributaryCluster cluster, string? clientRack, int count)
    {
        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = cluster.BootstrapServers,
            GroupId = "near-" + Guid.NewGuid().ToString("N"),
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
            ClientRack = clientRack,
        }).Build();
        consumer.Assign(new TopicPartitionOffset("near", 0, Offset.Beginning));
        var values = new List<string>();
        Eventually.True(() =>
        {
            while (values.Count < count && consumer.Consume(TimeSpan.FromMilliseconds(200)) is { } r) values.Add(r.Message.Value);
            return values.Count >= count;
        }, ClusterTestKit.Timeout, $"{count} records read", () => values.Count);
        return values;
    }
}
