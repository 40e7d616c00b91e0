using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Records;
using KafkaErrorCode = Tributary.Protocol.Messages.ErrorCode;

namespace Tributary.Broker.Tests.Hostile;

/// <summary>
/// Batches whose header and CRC are right but whose records lie are refused as Kafka's LogValidator refuses them
/// (INVALID_RECORD; CORRUPT_MESSAGE for a compressed body that does not decompress), are never stored, and never move
/// the log end: the partition goes on with the next offset, and consumers read on past the attempt.
/// </summary>
public sealed class RecordValidationTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private static readonly byte[] One = HostileBatches.Record(0, [1], [2]);
    private static readonly byte[] Two = HostileBatches.Record(1, [3], [4]);

    [Fact]
    public async Task A_70_byte_batch_claiming_two_billion_records_is_refused_and_the_log_end_stays()
    {
        var topic = await CreateTopicAsync();
        await ProduceValidAsync(topic, "before");
        var liar = HostileBatches.Batch(One, int.MaxValue);
        Assert.InRange(liar.Length, 60, 80);

        await using (var raw = await RawKafkaClient.ConnectAsync(broker.Bootstrap))
        {
            Assert.Equal((short)KafkaErrorCode.InvalidRecord, await ProduceRawAsync(raw, topic, liar));
        }

        Assert.Equal(1, HighWatermark(topic));
        Assert.Equal(1, (await ProduceValidAsync(topic, "after")).Offset.Value);
        Assert.Equal(["before", "after"], ReadValues(topic, 2));
    }

    public static TheoryData<string, byte[]> LyingBatches => new()
    {
        { "fewer records than counted", HostileBatches.Batch([.. One, .. Two], 3) },
        { "more records than counted", HostileBatches.Batch([.. One, .. Two], 1) },
        { "offset deltas out of order", HostileBatches.Batch([.. One, .. HostileBatches.Record(5, [3], [4])], 2) },
        { "offset deltas not from 0", HostileBatches.Batch(HostileBatches.Record(1, [1], [2]), 1) },
        { "record length too long", HostileBatches.Batch([.. HostileBatches.Record(0, [1], [2], lengthSkew: 1), .. Two], 2) },
        { "record length too short", HostileBatches.Batch([.. HostileBatches.Record(0, [1], [2], lengthSkew: -1), .. Two], 2) },
        { "trailing garbage", HostileBatches.Batch([.. One, 7, 7, 7], 1) },
        { "compressed, fewer records than counted", HostileBatches.Batch(CompressionCodecs.Compress(CompressionCodec.Zstd, [.. One, .. Two]), 3, CompressionCodec.Zstd) },
        { "compressed, offset deltas out of order", HostileBatches.Batch(CompressionCodecs.Compress(CompressionCodec.Gzip, [.. Two, .. One]), 2, CompressionCodec.Gzip) },
    };

    [Theory]
    [MemberData(nameof(LyingBatches))]
    public async Task A_batch_whose_records_lie_is_INVALID_RECORD_and_not_stored(string lie, byte[] batch)
    {
        Assert.NotEmpty(lie);
        Assert.Equal(RecordsError.InvalidRecord, RecordBatchValidator.Validate(batch, 1 << 20, out _));
        var topic = await CreateTopicAsync();
        await using (var raw = await RawKafkaClient.ConnectAsync(broker.Bootstrap))
        {
            Assert.Equal((short)KafkaErrorCode.InvalidRecord, await ProduceRawAsync(raw, topic, batch));
        }

        Assert.Equal(0, HighWatermark(topic));
    }

    [Theory]
    [InlineData(CompressionCodec.Gzip)]
    [InlineData(CompressionCodec.Snappy)]
    [InlineData(CompressionCodec.Lz4)]
    [InlineData(CompressionCodec.Zstd)]
    public async Task A_garbage_compressed_body_is_CORRUPT_MESSAGE_and_not_stored(CompressionCodec codec)
    {
        var garbage = new byte[200];
        new Random(42).NextBytes(garbage);
        var batch = HostileBatches.Batch(garbage, 3, codec);
        var topic = await CreateTopicAsync();
        await using (var raw = await RawKafkaClient.ConnectAsync(broker.Bootstrap))
        {
            Assert.Equal((short)KafkaErrorCode.CorruptMessage, await ProduceRawAsync(raw, topic, batch));
        }

        Assert.Equal(0, HighWatermark(topic));
    }

    [Theory]
    [InlineData(CompressionCodec.None)]
    [InlineData(CompressionCodec.Gzip)]
    [InlineData(CompressionCodec.Snappy)]
    [InlineData(CompressionCodec.Lz4)]
    [InlineData(CompressionCodec.Zstd)]
    public void Honest_batches_pass(CompressionCodec codec)
    {
        var builder = new RecordBatchBuilder { Codec = codec };
        for (int i = 0; i < 50; i++)
        {
            builder.Add(1000 + i, i % 3 == 0 ? null : [(byte)i], i % 5 == 0 ? null : new byte[i * 10],
                i % 2 == 0 ? [] : [new RecordHeader("h", new byte[] { 1 }), new RecordHeader("n", null)]);
        }

        Assert.Equal(RecordsError.None, RecordBatchValidator.Validate(builder.Build(), 1 << 20, out var summary));
        Assert.Equal(50, summary.RecordCount);
    }

    private async Task<string> CreateTopicAsync()
    {
        var name = "validate-" + Guid.NewGuid().ToString("N")[..8];
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = name, NumPartitions = 1, ReplicationFactor = 1 }]);
        return name;
    }

    private async Task<DeliveryResult<byte[]?, byte[]?>> ProduceValidAsync(string topic, string value)
    {
        using var producer = broker.Producer();
        return await producer.ProduceAsync(topic, new Message<byte[]?, byte[]?> { Value = System.Text.Encoding.UTF8.GetBytes(value) });
    }

    private long HighWatermark(string topic)
    {
        using var consumer = broker.Consumer();
        return consumer.QueryWatermarkOffsets(new TopicPartition(topic, 0), TimeSpan.FromSeconds(10)).High.Value;
    }

    private List<string> ReadValues(string topic, int count)
    {
        using var consumer = broker.Consumer();
        consumer.Assign(new TopicPartitionOffset(topic, 0, Offset.Beginning));
        var values = new List<string>();
        Eventually.True(() =>
        {
            for (var result = consumer.Consume(TimeSpan.FromSeconds(1)); result is not null && values.Count < count; result = values.Count < count ? consumer.Consume(TimeSpan.FromSeconds(1)) : null)
            {
                if (result is { IsPartitionEOF: false, Message.Value: { } value }) values.Add(System.Text.Encoding.UTF8.GetString(value));
            }
            return values.Count == count;
        }, TimeSpan.FromSeconds(30), $"{count} values from {topic}", () => $"{values.Count} read");

        return values;
    }

    internal static async Task<short> ProduceRawAsync(RawKafkaClient raw, string topic, byte[] records)
    {
        var request = new ProduceRequest
        {
            Acks = -1,
            TimeoutMs = 10_000,
            TopicData = [new() { Name = topic, PartitionData = [new() { Index = 0, Records = records }] }],
        };
        var response = await raw.SendAsync<ProduceResponse>(request, 9);
        return Assert.Single(Assert.Single(response.Responses).PartitionResponses).ErrorCode;
    }
}
