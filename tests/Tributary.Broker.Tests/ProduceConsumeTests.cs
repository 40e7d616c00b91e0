using System.Text;
using Confluent.Kafka;

namespace Tributary.Broker.Tests;

public sealed class ProduceConsumeTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    [Fact]
    public void UsesTheBundledLibrdkafka() => Assert.StartsWith("2.", Library.VersionString);

    [Theory]
    [InlineData(CompressionType.None)]
    [InlineData(CompressionType.Gzip)]
    [InlineData(CompressionType.Snappy)]
    [InlineData(CompressionType.Lz4)]
    [InlineData(CompressionType.Zstd)]
    public async Task RoundTripsEveryCodecWithHeadersAndNulls(CompressionType codec)
    {
        var topic = "codec-" + codec.ToString().ToLowerInvariant();
        await broker.CreateTopicAsync(topic, partitions: 3);
        using (var producer = broker.Producer(c => c.CompressionType = codec))
        {
            for (var i = 0; i < 1000; i++)
            {
                var headers = new Headers { { "h", Encoding.UTF8.GetBytes("v" + i) }, { "empty", [] } };
                var key = i % 10 == 0 ? null : Encoding.UTF8.GetBytes("k" + i);
                var value = i % 7 == 0 ? null : Encoding.UTF8.GetBytes(new string('x', i % 50) + i);
                producer.Produce(new TopicPartition(topic, i % 3), new Message<byte[]?, byte[]?> { Key = key, Value = value, Headers = headers });
            }
            Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(30)));
        }
        var records = broker.ReadAll(topic, 3, 1000);
        foreach (var r in records)
        {
            var i = int.Parse(Encoding.UTF8.GetString(r.Message.Headers.GetLastBytes("h"))[1..]);
            Assert.Equal(i % 3, r.Partition.Value);
            Assert.Equal(i % 10 == 0 ? null : "k" + i, r.Message.Key is null ? null : Encoding.UTF8.GetString(r.Message.Key));
            Assert.Equal(i % 7 == 0 ? null : new string('x', i % 50) + i, r.Message.Value is null ? null : Encoding.UTF8.GetString(r.Message.Value));
            Assert.Empty(r.Message.Headers.GetLastBytes("empty"));
        }
        foreach (var partition in records.GroupBy(r => r.Partition.Value))
        {
            var offsets = partition.Select(r => r.Offset.Value).ToList();
            Assert.Equal(Enumerable.Range(0, offsets.Count).Select(o => (long)o), offsets);
        }
    }
}
