using System.Text;
using Confluent.Kafka;

namespace Tributary.Broker.Tests;

/// <summary>Compaction seen by a real client: librdkafka reads across the gaps and empty batches the cleaner leaves.</summary>
public sealed class CompactionTests : IAsyncLifetime
{
    private TributaryServer _server = null!;
    private readonly BrokerFixtureLite _client = new();

    public async Task InitializeAsync()
    {
        _server = await TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string>
        {
            ["log.cleaner.backoff.ms"] = "50",
            ["log.retention.check.interval.ms"] = "100",
        });
        _client.Bootstrap = _server.BootstrapServers;
    }

    public async Task DisposeAsync() => await _server.StopAsync();

    private static byte[] Bytes(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public async Task A_compacted_topic_keeps_the_latest_value_per_key_at_its_offset_and_drops_tombstoned_keys()
    {
        await _client.CreateTopicAsync("changelog", new()
        {
            ["cleanup.policy"] = "compact",
            ["segment.bytes"] = "4096",
            ["min.cleanable.dirty.ratio"] = "0.01",
            ["delete.retention.ms"] = "0",
        });
        var latest = new Dictionary<string, (long Offset, string? Value)>();
        using (var producer = new ProducerBuilder<byte[]?, byte[]?>(new ProducerConfig { BootstrapServers = _client.Bootstrap, LingerMs = 2, CompressionType = CompressionType.Lz4 }).Build())
        {
            for (int round = 0; round < 40; round++)
            {
                for (int k = 0; k < 20; k++)
                {
                    string? value = k % 7 == 0 && round == 39 ? null : $"value-{k}-{round}";
                    var report = await producer.ProduceAsync("changelog", new Message<byte[]?, byte[]?> { Key = Bytes($"key-{k}"), Value = value is null ? null : Bytes(value) });
                    latest[$"key-{k}"] = (report.Offset.Value, value);
                }
            }

            // Roll past the last write so every record above is in a closed, cleanable segment.
            for (int i = 0; i < 60; i++)
            {
                await producer.ProduceAsync("changelog", new Message<byte[]?, byte[]?> { Key = Bytes("filler"), Value = new byte[100] });
            }
        }

        var expected = latest.Where(kv => kv.Value.Value is not null).ToDictionary(kv => kv.Key, kv => kv.Value);
        static List<ConsumeResult<byte[]?, byte[]?>> Live(List<ConsumeResult<byte[]?, byte[]?>> records) =>
            records.Where(r => Encoding.UTF8.GetString(r.Message.Key!) != "filler").ToList();
        var records = await Eventually.ValueAsync(() => ReadToEnd("changelog"), records => Live(records).Count == expected.Count, TimeSpan.FromSeconds(30),
            $"the changelog compacted to its {expected.Count} live keys", records => $"{Live(records).Count} keys besides the filler");
        var live = Live(records);
        foreach (var record in live)
        {
            var (offset, value) = expected[Encoding.UTF8.GetString(record.Message.Key!)];
            Assert.Equal(offset, record.Offset.Value);
            Assert.Equal(value, Encoding.UTF8.GetString(record.Message.Value!));
        }

        using var consumer = new ConsumerBuilder<byte[]?, byte[]?>(new ConsumerConfig { BootstrapServers = _client.Bootstrap, GroupId = "w" }).Build();
        var watermarks = consumer.QueryWatermarkOffsets(new TopicPartition("changelog", 0), TimeSpan.FromSeconds(10));
        Assert.Equal(0, watermarks.Low.Value);
        Assert.Equal(40 * 20 + 60, watermarks.High.Value);
    }

    [Theory]
    [InlineData((short)0)]
    [InlineData((short)1)]
    [InlineData((short)2)]
    [InlineData((short)3)]
    [InlineData((short)4)]
    public async Task DescribeLogDirs_reports_partition_sizes_in_every_version(short version)
    {
        string topic = "sized-" + version;
        await _client.CreateTopicAsync(topic, new() { ["cleanup.policy"] = "compact,delete" });
        using (var producer = new ProducerBuilder<byte[]?, byte[]?>(new ProducerConfig { BootstrapServers = _client.Bootstrap }).Build())
        {
            await producer.ProduceAsync(topic, new Message<byte[]?, byte[]?> { Key = Bytes("k"), Value = new byte[1000] });
        }

        await using var raw = await RawKafkaClient.ConnectAsync(_client.Bootstrap);
        var response = await raw.SendAsync<Tributary.Protocol.Messages.DescribeLogDirsResponse>(new Tributary.Protocol.Messages.DescribeLogDirsRequest
        {
            Topics = [new() { Topic = topic, Partitions = [0] }],
        }, version);
        var dir = Assert.Single(response.Results);
        Assert.Equal(0, dir.ErrorCode);
        var partition = Assert.Single(Assert.Single(dir.Topics).Partitions);
        Assert.Equal(0, partition.PartitionIndex);
        Assert.True(partition.PartitionSize > 1000);
        if (version >= 4)
        {
            Assert.True(dir.TotalBytes > 0 && dir.UsableBytes > 0);
        }
    }

    [Fact]
    public async Task A_record_without_a_key_is_refused_by_a_compacted_topic_with_INVALID_RECORD_and_record_errors()
    {
        await _client.CreateTopicAsync("keyed-only", new() { ["cleanup.policy"] = "compact,delete" });
        await _client.CreateTopicAsync("anything-goes", new() { ["cleanup.policy"] = "delete" });
        using (var producer = new ProducerBuilder<byte[]?, byte[]?>(new ProducerConfig { BootstrapServers = _client.Bootstrap, CompressionType = CompressionType.Zstd }).Build())
        {
            var refused = await Assert.ThrowsAsync<ProduceException<byte[]?, byte[]?>>(() =>
                producer.ProduceAsync("keyed-only", new Message<byte[]?, byte[]?> { Key = null, Value = Bytes("no key") }));
            Assert.Equal(ErrorCode.InvalidRecord, refused.Error.Code);
            var keyed = await producer.ProduceAsync("keyed-only", new Message<byte[]?, byte[]?> { Key = Bytes("k"), Value = Bytes("v") });
            Assert.Equal(PersistenceStatus.Persisted, keyed.Status);
            var other = await producer.ProduceAsync("anything-goes", new Message<byte[]?, byte[]?> { Key = null, Value = Bytes("no key") });
            Assert.Equal(PersistenceStatus.Persisted, other.Status);
        }

        // The response as Kafka's LogValidator shapes it: the whole batch refused, one record error per keyless record.
        var builder = new Tributary.Protocol.Records.RecordBatchBuilder();
        builder.Add(0, Bytes("a"), Bytes("1"));
        builder.Add(0, null, Bytes("2"));
        builder.Add(0, Bytes("c"), Bytes("3"));
        builder.Add(0, null, Bytes("4"));
        await using var raw = await RawKafkaClient.ConnectAsync(_client.Bootstrap);
        var partition = await IdempotenceTests.ProduceAsync(raw, "keyed-only", builder.Build());
        Assert.Equal((short)ErrorCode.InvalidRecord, partition.ErrorCode);
        Assert.Equal([1, 3], partition.RecordErrors.Select(e => e.BatchIndex));
        Assert.All(partition.RecordErrors, e => Assert.Equal("Compacted topic cannot accept message without key in topic partition keyed-only-0.", e.BatchIndexErrorMessage));
        Assert.StartsWith("One or more records have been rejected due to 2 record errors", partition.ErrorMessage);
        Assert.Equal("v", Encoding.UTF8.GetString(Assert.Single(ReadToEnd("keyed-only")).Message.Value!));
    }

    private List<ConsumeResult<byte[]?, byte[]?>> ReadToEnd(string topic)
    {
        using var consumer = new ConsumerBuilder<byte[]?, byte[]?>(new ConsumerConfig
        {
            BootstrapServers = _client.Bootstrap,
            GroupId = "c-" + Guid.NewGuid().ToString("N"),
            EnableAutoCommit = false,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnablePartitionEof = true,
        }).Build();
        consumer.Assign(new TopicPartitionOffset(topic, 0, Offset.Beginning));
        var results = new List<ConsumeResult<byte[]?, byte[]?>>();
        var ended = false;
        Eventually.True(() =>
        {
            for (var r = consumer.Consume(TimeSpan.FromMilliseconds(200)); r is not null && !ended; r = ended ? null : consumer.Consume(TimeSpan.FromMilliseconds(200)))
            {
                if (r.IsPartitionEOF) ended = true;
                else results.Add(r);
            }

            return ended;
        }, TimeSpan.FromSeconds(20), $"the end of {topic}", () => $"{results.Count} records read");
        return results;
    }
}

/// <summary>The little a test needs to talk to a broker it started itself.</summary>
internal sealed class BrokerFixtureLite
{
    public string Bootstrap { get; set; } = "";

    public async Task CreateTopicAsync(string name, Dictionary<string, string> configs)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = Bootstrap }).Build();
        await admin.CreateTopicsAsync([new Confluent.Kafka.Admin.TopicSpecification { Name = name, NumPartitions = 1, ReplicationFactor = 1, Configs = configs }]);
    }
}
