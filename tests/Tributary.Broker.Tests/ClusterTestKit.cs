using System.Security.Cryptography;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Tributary.Server;
using Tributary.Storage;
using Tributary.Testing;

namespace Tributary.Broker.Tests;

/// <summary>What the tests of a <see cref="TributaryCluster"/> share: replication settings for quick failover, topics every broker sees, clients.</summary>
internal static class ClusterTestKit
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    /// <summary>Sessions of 6 s and followers out of the ISR after 4 s, so a stopped broker's leaderships move within seconds.</summary>
    public static Dictionary<string, string> Settings(params (string Name, string Value)[] more)
    {
        var settings = new Dictionary<string, string>
        {
            ["broker.session.timeout.ms"] = "6000",
            ["schema.registry.enable"] = "false",
            ["replica.lag.time.max.ms"] = "4000",
            ["replica.fetch.wait.max.ms"] = "100",
        };
        foreach (var (name, value) in more) settings[name] = value;
        return settings;
    }

    public static IAdminClient Admin(TributaryCluster cluster) =>
        new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.BootstrapServers }).Build();

    /// <summary>
    /// Creates <paramref name="topic"/> with 3 partitions on all 3 brokers, produces 100 records to each with acks=all,
    /// and checks that every replica holds them: acks=all is answered once every in-sync replica has the records, and
    /// all three are in sync, so each follower replicated them (over whatever inter-broker listener the cluster uses).
    /// </summary>
    public static async Task ProduceToEveryReplicaAsync(TributaryCluster cluster, string topic)
    {
        await CreateAsync(cluster, topic, 3, 3);
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig
        {
            BootstrapServers = cluster.BootstrapServers,
            Acks = Acks.All,
            EnableIdempotence = true,
            MessageTimeoutMs = 30_000,
        }).Build())
        {
            for (var i = 0; i < 300; i++) producer.Produce(new TopicPartition(topic, i % 3), new Message<Null, string> { Value = "r" + i });
            Assert.Equal(0, producer.Flush(Timeout));
        }
        foreach (var broker in cluster.Brokers)
            for (var p = 0; p < 3; p++)
                Assert.Equal(100, broker.State.Topics.GetPartition(topic, p)!.LogEndOffset);
    }

    /// <summary>Creates a topic (with <paramref name="assignment"/>: partition i on those brokers, the first preferred) and waits until every running broker sees it.</summary>
    public static async Task CreateAsync(TributaryCluster cluster, string name, int partitions, short factor,
        Dictionary<string, string>? configs = null, int[][]? assignment = null)
    {
        using var admin = Admin(cluster);
        await admin.CreateTopicsAsync([new TopicSpecification
        {
            Name = name,
            NumPartitions = assignment?.Length ?? partitions,
            ReplicationFactor = assignment is null ? factor : (short)-1,
            ReplicasAssignments = assignment?.Select((r, i) => (i, r.ToList())).ToDictionary(x => x.i, x => x.Item2),
            Configs = configs,
        }]);
        foreach (var broker in cluster.Brokers)
            await Eventually.TrueAsync(() => broker.State.Topics.Get(name) is not null, Timeout, $"broker {broker.State.NodeId} sees {name}");
    }

    public static IProducer<string, string> Producer(TributaryCluster cluster) => new ProducerBuilder<string, string>(new ProducerConfig
    {
        BootstrapServers = cluster.BootstrapServers,
        Acks = Acks.All,
        EnableIdempotence = true,
        MessageTimeoutMs = 60_000,
    }).Build();

    /// <summary>Every running replica's log of the partition, as bytes (the batches with their offsets).</summary>
    public static byte[] Bytes(PartitionLog log)
    {
        using var slice = log.Read(log.LogStartOffset, int.MaxValue);
        return slice.Memory.ToArray();
    }

    public static async Task ReplicasAgreeAsync(TributaryCluster cluster, string topic, int partitions)
    {
        for (var p = 0; p < partitions; p++)
        {
            var partition = p;
            await Eventually.TrueAsync(() =>
            {
                var logs = cluster.Brokers.Select(b => b.State.Topics.GetPartition(topic, partition)).Where(l => l is not null).ToList();
                return logs.Count == cluster.Brokers.Count && logs.Select(l => l!.HighWatermark).Distinct().Count() == 1
                    && logs.Select(l => Convert.ToHexString(SHA256.HashData(Bytes(l!)))).Distinct().Count() == 1;
            }, Timeout, $"every replica of {topic}-{partition} holds the same bytes",
                () => string.Join(" ", cluster.Brokers.Select(b => $"{b.State.NodeId}:{b.State.Topics.GetPartition(topic, partition)?.LogEndOffset}")));
        }
    }
}
