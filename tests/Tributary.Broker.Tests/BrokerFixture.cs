using Confluent.Kafka;
using Confluent.Kafka.Admin;

namespace Tributary.Broker.Tests;

/// <summary>
/// One in-process broker per test class, on an ephemeral loopback port, with a fresh data directory. A fixture for
/// a broker with other settings derives from this one and overrides <see cref="Settings"/> only.
/// </summary>
public class BrokerFixture : IAsyncLifetime
{
    public TributaryServer Server { get; private set; } = null!;
    public string Bootstrap => Server.BootstrapServers;

    /// <summary>Broker settings beyond the defaults; none here.</summary>
    protected virtual IReadOnlyDictionary<string, string>? Settings => null;

    public async Task InitializeAsync() => Server = await TributaryServer.StartEphemeralAsync(settings: Settings);

    public async Task DisposeAsync() => await Server.StopAsync();

    public IProducer<byte[]?, byte[]?> Producer(Action<ProducerConfig>? configure = null)
    {
        var config = new ProducerConfig { BootstrapServers = Bootstrap, LingerMs = 5, Acks = Acks.All };
        configure?.Invoke(config);
        return new ProducerBuilder<byte[]?, byte[]?>(config).Build();
    }

    /// <summary>A consumer that reads by assignment (no group membership).</summary>
    public IConsumer<byte[]?, byte[]?> Consumer(Action<ConsumerConfig>? configure = null)
    {
        var config = new ConsumerConfig
        {
            BootstrapServers = Bootstrap,
            GroupId = "unused-" + Guid.NewGuid().ToString("N"),
            EnableAutoCommit = false,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnablePartitionEof = true,
        };
        configure?.Invoke(config);
        return new ConsumerBuilder<byte[]?, byte[]?>(config).Build();
    }

    public IAdminClient Admin() => new AdminClientBuilder(new AdminClientConfig { BootstrapServers = Bootstrap }).Build();

    public async Task CreateTopicAsync(string name, int partitions = 1, Dictionary<string, string>? configs = null)
    {
        using var admin = Admin();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = name, NumPartitions = partitions, ReplicationFactor = 1, Configs = configs }]);
    }

    /// <summary>Reads exactly <paramref name="count"/> records from the start of the given partitions; fails on timeout.</summary>
    public List<ConsumeResult<byte[]?, byte[]?>> ReadAll(string topic, int partitions, int count, TimeSpan? timeout = null)
    {
        using var consumer = Consumer();
        consumer.Assign(Enumerable.Range(0, partitions).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
        var results = new List<ConsumeResult<byte[]?, byte[]?>>(count);
        Eventually.True(() =>
        {
            for (var r = consumer.Consume(TimeSpan.FromMilliseconds(200)); r is not null && results.Count < count; r = results.Count < count ? consumer.Consume(TimeSpan.FromMilliseconds(200)) : null)
            {
                if (!r.IsPartitionEOF) results.Add(r);
            }
            return results.Count == count;
        }, timeout ?? TimeSpan.FromSeconds(30), $"{count} records from {topic}", () => $"{results.Count} read");
        return results;
    }
}
