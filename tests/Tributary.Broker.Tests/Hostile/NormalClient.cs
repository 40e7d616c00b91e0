using Confluent.Kafka;
using Confluent.Kafka.Admin;

namespace Tributary.Broker.Tests.Hostile;

/// <summary>What a well-behaved client does during an attack: create a topic, produce with acks=all, read it back.</summary>
internal static class NormalClient
{
    public static async Task RoundTripAsync(string bootstrap, TimeSpan? timeout = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(30);
        var topic = "normal-" + Guid.NewGuid().ToString("N");
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build())
            await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 1, ReplicationFactor = 1 }]);
        using (var producer = new ProducerBuilder<byte[]?, byte[]?>(new ProducerConfig
        {
            BootstrapServers = bootstrap,
            Acks = Acks.All,
            MessageTimeoutMs = (int)limit.TotalMilliseconds,
        }).Build())
        {
            var report = await producer.ProduceAsync(topic, new Message<byte[]?, byte[]?> { Value = "still served"u8.ToArray() });
            Assert.Equal(PersistenceStatus.Persisted, report.Status);
        }
        using var consumer = new ConsumerBuilder<byte[]?, byte[]?>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = "unused-" + Guid.NewGuid().ToString("N"),
            EnableAutoCommit = false,
        }).Build();
        consumer.Assign(new TopicPartitionOffset(topic, 0, Offset.Beginning));
        var record = Eventually.Value(() => consumer.Consume(TimeSpan.FromMilliseconds(200)), r => r is { IsPartitionEOF: false }, limit, $"the record produced to {topic} to be read back");
        Assert.Equal("still served"u8.ToArray(), record!.Message.Value);
    }
}
