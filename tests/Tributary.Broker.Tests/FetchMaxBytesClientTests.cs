using Confluent.Kafka;

namespace Tributary.Broker.Tests;

/// <summary>
/// Issue 19 #2, as a user met it: librdkafka with <c>fetch.max.bytes=1000000</c> (and a receive limit just above it,
/// as librdkafka requires) over two partitions of ~900 KB batches. A response that carried both partitions' batches
/// (1.8 MB) made librdkafka drop the connection ("Invalid response size") and ask again for ever. Kafka lets only
/// the first non-empty partition exceed the limit, so the consumer always progresses: it must read everything.
/// </summary>
public sealed class FetchMaxBytesClientTests
{
    [Fact]
    public async Task A_consumer_with_a_small_fetch_max_bytes_reads_large_batches_from_several_partitions()
    {
        await using var server = await TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string> { [TributaryServer.SchemaRegistryEnableSetting] = "false" });
        const string topic = "large-batches";
        const int perPartition = 4;
        server.State.Topics.Create(topic, 2, new Dictionary<string, string>());
        using (var producer = new ProducerBuilder<Null, byte[]>(new ProducerConfig { BootstrapServers = server.BootstrapServers, LingerMs = 0, Acks = Acks.All }).Build())
        {
            for (var p = 0; p < 2; p++)
                for (var i = 0; i < perPartition; i++)
                    await producer.ProduceAsync(new TopicPartition(topic, p), new Message<Null, byte[]> { Value = new byte[900_000] });
        }

        using var consumer = new ConsumerBuilder<Ignore, byte[]>(new ConsumerConfig
        {
            BootstrapServers = server.BootstrapServers,
            GroupId = "large-batches",
            AutoOffsetReset = AutoOffsetReset.Earliest,
            FetchMaxBytes = 1_000_000,
            ReceiveMessageMaxBytes = 1_000_512,
            MaxPartitionFetchBytes = 1_000_000,
        }).Build();
        consumer.Assign([new TopicPartitionOffset(topic, 0, 0), new TopicPartitionOffset(topic, 1, 0)]);
        var received = new Dictionary<int, int> { [0] = 0, [1] = 0 };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (received.Values.Sum() < 2 * perPartition && DateTime.UtcNow < deadline)
        {
            var result = consumer.Consume(TimeSpan.FromMilliseconds(500));
            if (result is null || result.IsPartitionEOF) continue;
            Assert.Equal(900_000, result.Message.Value.Length);
            received[result.Partition.Value]++;
        }

        Assert.Equal(perPartition, received[0]);
        Assert.Equal(perPartition, received[1]);
    }
}
