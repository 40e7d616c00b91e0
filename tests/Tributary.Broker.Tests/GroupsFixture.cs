using System.Buffers.Binary;
using System.Text;
using Confluent.Kafka;

namespace Tributary.Broker.Tests;

/// <summary>
/// A broker for group tests: no initial rebalance delay and a low minimum session timeout, so groups form quickly
/// and expiry tests stay short. Helpers poll consumers in turn on the test thread (Confluent consumers are not
/// thread-safe) until a condition holds; nothing sleeps for synchronization.
/// </summary>
public sealed class GroupsFixture : IAsyncLifetime
{
    public static readonly Dictionary<string, string> Settings = new()
    {
        ["group.initial.rebalance.delay.ms"] = "0",
        ["group.min.session.timeout.ms"] = "500",
        ["group.consumer.heartbeat.interval.ms"] = "300",
        ["group.consumer.session.timeout.ms"] = "6000",
    };

    public TributaryServer Server { get; private set; } = null!;
    public string Bootstrap => Server.BootstrapServers;

    public async Task InitializeAsync() => Server = await TributaryServer.StartEphemeralAsync(settings: Settings);

    public async Task DisposeAsync() => await Server.StopAsync();

    public static string Unique(string prefix) => prefix + "-" + Guid.NewGuid().ToString("N")[..8];

    public IConsumer<string, string> Member(string group, Action<ConsumerConfig>? configure = null) => Member(Bootstrap, group, configure);

    public static IConsumer<string, string> Member(string bootstrap, string group, Action<ConsumerConfig>? configure = null)
    {
        var config = new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = group,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
            SessionTimeoutMs = 6000,
            HeartbeatIntervalMs = 500,
            TopicMetadataRefreshIntervalMs = 1000,
        };
        configure?.Invoke(config);
        return new ConsumerBuilder<string, string>(config).Build();
    }

    public async Task CreateTopicAsync(string name, int partitions)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = Bootstrap }).Build();
        await admin.CreateTopicsAsync([new Confluent.Kafka.Admin.TopicSpecification { Name = name, NumPartitions = partitions, ReplicationFactor = 1 }]);
    }

    public void Produce(string topic, int partitions, int count)
    {
        using var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = Bootstrap, LingerMs = 5 }).Build();
        for (var i = 0; i < count; i++) producer.Produce(new TopicPartition(topic, i % partitions), new Message<string, string> { Key = "k" + i, Value = "v" + i });
        Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(30)));
    }

    /// <summary>Polls every consumer in turn, handing each record to <paramref name="onRecord"/>, until <paramref name="done"/> holds.</summary>
    public static void PollUntil(IReadOnlyList<IConsumer<string, string>> consumers, Func<bool> done, string what,
        Action<int, ConsumeResult<string, string>>? onRecord = null, TimeSpan? timeout = null)
    {
        // Each round drains every consumer in turn (stopping once done holds), so the back-off between rounds never
        // sits between records that are already there.
        Eventually.True(() =>
        {
            for (var i = 0; i < consumers.Count && !done(); i++)
            {
                for (var r = consumers[i].Consume(TimeSpan.FromMilliseconds(20)); r is not null; r = done() ? null : consumers[i].Consume(TimeSpan.FromMilliseconds(20)))
                {
                    if (!r.IsPartitionEOF) onRecord?.Invoke(i, r);
                }
            }
            return done();
        }, timeout ?? TimeSpan.FromSeconds(60), what, () => string.Join(", ", consumers.Select(c => $"{c.Name}: {c.Assignment.Count} partitions")));
    }

    /// <summary>
    /// Unsubscribes every member, polls until none holds a partition, then closes them. librdkafka's cooperative
    /// consumer can hang for ever in Close when its revocation meets a rebalance that another member's leave started
    /// (its issue #4527 family: the incremental unassign inside the close never gets its reply); leaving through
    /// Unsubscribe while polling, then closing with nothing assigned, avoids that path.
    /// </summary>
    public static void LeaveAndClose(IReadOnlyList<IConsumer<string, string>> consumers)
    {
        foreach (var c in consumers) c.Unsubscribe();
        PollUntil(consumers, () => consumers.All(c => c.Assignment.Count == 0), "every member to give up its partitions", timeout: TimeSpan.FromSeconds(30));
        foreach (var c in consumers)
        {
            c.Close();
            c.Dispose();
        }
    }

    /// <summary>True when the consumers' assignments are disjoint and cover partitions 0..n-1 of the topic.</summary>
    public static bool Covers(IEnumerable<IConsumer<string, string>> consumers, int partitions)
    {
        var all = consumers.SelectMany(c => c.Assignment).ToList();
        return all.Count == partitions && all.Select(tp => tp.Partition.Value).Distinct().Count() == partitions;
    }

    /// <summary>ConsumerProtocolSubscription v0 for one topic (what a Java consumer sends as JoinGroup metadata).</summary>
    public static byte[] Subscription(string topic)
    {
        var name = Encoding.UTF8.GetBytes(topic);
        var bytes = new byte[2 + 4 + 2 + name.Length + 4];
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(2), 1);
        BinaryPrimitives.WriteInt16BigEndian(bytes.AsSpan(6), (short)name.Length);
        name.CopyTo(bytes, 8);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(8 + name.Length), -1);
        return bytes;
    }
}
