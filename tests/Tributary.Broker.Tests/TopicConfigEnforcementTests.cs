using System.Text;
using Confluent.Kafka;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Records;
using ErrorCode = Tributary.Protocol.Messages.ErrorCode;

namespace Tributary.Broker.Tests;

/// <summary>
/// Topic and broker configs that change what a produce or fetch does (issue 12 item 4: no config accepted and ignored):
/// compression.type recompression, message.timestamp.before/after.max.ms, zstd below Produce v7 and Fetch v10,
/// min.insync.replicas, and the DescribeConfigs documentation that names what is accepted only for compatibility.
/// </summary>
public sealed class TopicConfigEnforcementTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private static long Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    [Theory]
    [InlineData("gzip", CompressionType.Lz4, CompressionCodec.Gzip)]
    [InlineData("snappy", CompressionType.None, CompressionCodec.Snappy)]
    [InlineData("lz4", CompressionType.Zstd, CompressionCodec.Lz4)]
    [InlineData("zstd", CompressionType.Gzip, CompressionCodec.Zstd)]
    [InlineData("uncompressed", CompressionType.Snappy, CompressionCodec.None)]
    [InlineData("lz4", CompressionType.Lz4, CompressionCodec.Lz4)]
    [InlineData("producer", CompressionType.Snappy, CompressionCodec.Snappy)]
    public async Task CompressionTypeStoresEveryBatchInTheTopicCodec(string topicCodec, CompressionType producerCodec, CompressionCodec stored)
    {
        var topic = $"ct-{topicCodec}-{producerCodec}".ToLowerInvariant();
        await broker.CreateTopicAsync(topic, configs: new() { ["compression.type"] = topicCodec });
        // Every record compressible on its own: librdkafka sends a batch uncompressed when its codec would not make it
        // smaller, and a batch holding only "value-0-" (linger cut short on a busy machine) was one.
        var values = Enumerable.Range(0, 200).Select(i => $"value-{i}-" + new string('x', 100 + i % 50)).ToList();
        using (var producer = broker.Producer(c => { c.CompressionType = producerCodec; c.LingerMs = 50; }))
        {
            foreach (var value in values)
            {
                producer.Produce(topic, new Message<byte[]?, byte[]?> { Key = Encoding.UTF8.GetBytes("k"), Value = Encoding.UTF8.GetBytes(value) });
            }
            producer.Flush(TimeSpan.FromSeconds(30));
        }

        var batches = await FetchBatchesAsync(topic);
        Assert.NotEmpty(batches);
        foreach (var batch in batches)
        {
            var header = new RecordBatchHeader(batch);
            Assert.Equal(stored, header.Codec);
            Assert.Equal(RecordBatchHeader.ComputeCrc(batch), header.Crc);
        }
        Assert.Equal(Enumerable.Range(0, values.Count).Select(i => (long)i),
            batches.SelectMany(b => RecordReader.ReadAll(b)).Select(r => r.Offset));
        var read = broker.ReadAll(topic, 1, values.Count);
        Assert.Equal(values, read.Select(r => Encoding.UTF8.GetString(r.Message.Value!)));
    }

    [Fact]
    public async Task BrokerDefaultCompressionTypeAppliesToTopicsWithoutAnOverride()
    {
        await using var server = await TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string> { ["compression.type"] = "gzip" });
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = server.BootstrapServers }).Build())
        {
            await admin.CreateTopicsAsync([new Confluent.Kafka.Admin.TopicSpecification { Name = "ct-broker-default", NumPartitions = 1, ReplicationFactor = 1 }]);
        }
        using (var producer = new ProducerBuilder<byte[]?, byte[]?>(new ProducerConfig { BootstrapServers = server.BootstrapServers, CompressionType = CompressionType.None }).Build())
        {
            await producer.ProduceAsync("ct-broker-default", new Message<byte[]?, byte[]?> { Value = Encoding.UTF8.GetBytes("hello") });
        }

        var batch = Assert.Single(await FetchBatchesAsync("ct-broker-default", server.BootstrapServers));
        Assert.Equal(CompressionCodec.Gzip, new RecordBatchHeader(batch).Codec);
        Assert.Equal("hello", Encoding.UTF8.GetString(Assert.Single(RecordReader.ReadAll(batch)).Value!.Value.Span));
    }

    [Fact]
    public async Task RecompressionKeepsProducerIdEpochSequenceAndTheTransactionalBit()
    {
        await broker.CreateTopicAsync("ct-txn", configs: new() { ["compression.type"] = "zstd" });
        using (var producer = broker.Producer(c =>
        {
            c.TransactionalId = "ct-txn-producer";
            c.CompressionType = CompressionType.Lz4;
        }))
        {
            producer.InitTransactions(TimeSpan.FromSeconds(30));
            producer.BeginTransaction();
            for (var i = 0; i < 10; i++) producer.Produce("ct-txn", new Message<byte[]?, byte[]?> { Value = Encoding.UTF8.GetBytes($"t{i}") });
            producer.CommitTransaction(TimeSpan.FromSeconds(30));
        }

        var batches = await FetchBatchesAsync("ct-txn");
        var data = new RecordBatchHeader(batches[0]);
        Assert.Equal(CompressionCodec.Zstd, data.Codec);
        Assert.True(data.IsTransactional);
        Assert.False(data.IsControl);
        Assert.True(data.ProducerId >= 0);
        Assert.True(data.ProducerEpoch >= 0);
        Assert.Equal(0, data.BaseSequence);
        // The commit marker is written by the coordinator, uncompressed, and stays so (Kafka does not compress it).
        var marker = new RecordBatchHeader(batches[^1]);
        Assert.True(marker.IsControl && marker.IsTransactional);
        Assert.Equal(CompressionCodec.None, marker.Codec);
        Assert.Equal(data.ProducerId, marker.ProducerId);

        using var consumer = broker.Consumer(c => c.IsolationLevel = IsolationLevel.ReadCommitted);
        consumer.Assign(new TopicPartitionOffset("ct-txn", 0, Offset.Beginning));
        var values = new List<string>();
        Tributary.Testing.Eventually.True(() =>
        {
            while (consumer.Consume(TimeSpan.FromMilliseconds(50)) is { IsPartitionEOF: false } r) values.Add(Encoding.UTF8.GetString(r.Message.Value!));
            return values.Count >= 10;
        }, TimeSpan.FromSeconds(30), "the 10 committed records", () => values.Count);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"t{i}"), values);
    }

    [Fact]
    public async Task RecompressedIdempotentRetryGetsItsOriginalOffset()
    {
        await broker.CreateTopicAsync("ct-idem", configs: new() { ["compression.type"] = "gzip" });
        await using var raw = await RawKafkaClient.ConnectAsync(broker.Bootstrap);
        var (pid, epoch) = await IdempotenceTests.InitAsync(raw);
        var first = IdempotenceTests.Batch(pid, epoch, 0, 3);
        Assert.Equal(0, (await IdempotenceTests.ProduceAsync(raw, "ct-idem", [.. first])).BaseOffset);
        Assert.Equal(3, (await IdempotenceTests.ProduceAsync(raw, "ct-idem", IdempotenceTests.Batch(pid, epoch, 3, 2))).BaseOffset);
        var retried = await IdempotenceTests.ProduceAsync(raw, "ct-idem", [.. first]);
        Assert.Equal((ErrorCode.None, 0L), ((ErrorCode)retried.ErrorCode, retried.BaseOffset));
        var stored = new RecordBatchHeader((await FetchBatchesAsync("ct-idem"))[1]);
        Assert.Equal((CompressionCodec.Gzip, pid, epoch, 3), (stored.Codec, stored.ProducerId, stored.ProducerEpoch, stored.BaseSequence));
    }

    [Fact]
    public async Task TimestampsOutsideBeforeAndAfterMaxMsAreRefusedWithInvalidTimestamp()
    {
        var bounds = new Dictionary<string, string> { ["message.timestamp.before.max.ms"] = "3600000", ["message.timestamp.after.max.ms"] = "600000" };
        await broker.CreateTopicAsync("ts-bounds", configs: bounds);
        using var producer = broker.Producer(c => c.CompressionType = CompressionType.Lz4);
        async Task<Confluent.Kafka.ErrorCode> Send(long timestamp)
        {
            try
            {
                await producer.ProduceAsync("ts-bounds", new Message<byte[]?, byte[]?> { Value = [1], Timestamp = new Timestamp(timestamp, TimestampType.CreateTime) });
                return Confluent.Kafka.ErrorCode.NoError;
            }
            catch (ProduceException<byte[]?, byte[]?> e)
            {
                return e.Error.Code;
            }
        }

        Assert.Equal(Confluent.Kafka.ErrorCode.NoError, await Send(Now()));
        Assert.Equal(Confluent.Kafka.ErrorCode.NoError, await Send(Now() - 3_000_000));
        Assert.Equal(Confluent.Kafka.ErrorCode.InvalidTimestamp, await Send(Now() - 7_200_000));
        Assert.Equal(Confluent.Kafka.ErrorCode.NoError, await Send(Now() + 300_000));
        Assert.Equal(Confluent.Kafka.ErrorCode.InvalidTimestamp, await Send(Now() + 1_200_000));
        Assert.Equal(3, broker.Server.State.Topics.GetPartition("ts-bounds", 0)!.LogEndOffset);

        // LogAppendTime topics are not checked: the broker replaces the timestamps.
        await broker.CreateTopicAsync("ts-bounds-lat", configs: new(bounds) { ["message.timestamp.type"] = "LogAppendTime" });
        var appended = await producer.ProduceAsync("ts-bounds-lat", new Message<byte[]?, byte[]?> { Value = [1], Timestamp = new Timestamp(Now() - 7_200_000, TimestampType.CreateTime) });
        Assert.Equal(PersistenceStatus.Persisted, appended.Status);
    }

    [Fact]
    public async Task EveryRecordIsCheckedAndEachOutOfRangeRecordIsNamed()
    {
        await broker.CreateTopicAsync("ts-records", configs: new() { ["message.timestamp.before.max.ms"] = "3600000" });
        await using var raw = await RawKafkaClient.ConnectAsync(broker.Bootstrap);
        long now = Now();
        // The first record is in range, so the batch's base and max timestamps are too: only a walk finds record 1.
        var batch = new RecordBatchBuilder { Codec = CompressionCodec.Snappy }.Add(now, [1]).Add(now - 86_400_000, [2]).Add(now, [3]).Build();
        var response = await IdempotenceTests.ProduceAsync(raw, "ts-records", batch);
        Assert.Equal(ErrorCode.InvalidTimestamp, (ErrorCode)response.ErrorCode);
        Assert.Equal(1, Assert.Single(response.RecordErrors).BatchIndex);
        Assert.Equal(0, broker.Server.State.Topics.GetPartition("ts-records", 0)!.LogEndOffset);
    }

    [Fact]
    public async Task ZstdNeedsProduceV7AndAZstdTopicNeedsFetchV10()
    {
        await broker.CreateTopicAsync("zstd-versions");
        await using var raw = await RawKafkaClient.ConnectAsync(broker.Bootstrap);
        byte[] Zstd() => new RecordBatchBuilder { Codec = CompressionCodec.Zstd }.Add(Now(), [1, 2, 3]).Build();
        for (short v = 3; v < 7; v++)
        {
            Assert.Equal(ErrorCode.UnsupportedCompressionType, (ErrorCode)(await IdempotenceTests.ProduceAsync(raw, "zstd-versions", Zstd(), version: v)).ErrorCode);
        }
        var gzip = new RecordBatchBuilder { Codec = CompressionCodec.Gzip }.Add(Now(), [1]).Build();
        Assert.Equal(ErrorCode.None, (ErrorCode)(await IdempotenceTests.ProduceAsync(raw, "zstd-versions", gzip, version: 6)).ErrorCode);
        Assert.Equal(ErrorCode.None, (ErrorCode)(await IdempotenceTests.ProduceAsync(raw, "zstd-versions", Zstd(), version: 7)).ErrorCode);

        await broker.CreateTopicAsync("zstd-topic", configs: new() { ["compression.type"] = "zstd" });
        Assert.Equal(ErrorCode.None, (ErrorCode)(await IdempotenceTests.ProduceAsync(raw, "zstd-topic", gzip, version: 6)).ErrorCode);
        Assert.Equal(ErrorCode.UnsupportedCompressionType, (ErrorCode)(await FetchAsync(raw, "zstd-topic", 9)).ErrorCode);
        var v10 = await FetchAsync(raw, "zstd-topic", 10);
        Assert.Equal((ErrorCode.None, CompressionCodec.Zstd), ((ErrorCode)v10.ErrorCode, new RecordBatchHeader(v10.Records!.Value.Span).Codec));
        // A zstd batch the producer chose on a "producer" topic is served as stored, as Kafka does.
        Assert.Equal(ErrorCode.None, (ErrorCode)(await FetchAsync(raw, "zstd-versions", 9)).ErrorCode);
    }

    [Fact]
    public async Task MinInSyncReplicasAboveOneRefusesAcksAllOnASingleBroker()
    {
        await broker.CreateTopicAsync("min-isr", configs: new() { ["min.insync.replicas"] = "2" });
        await using var raw = await RawKafkaClient.ConnectAsync(broker.Bootstrap);
        async Task<ErrorCode> Send(short acks)
        {
            var request = new ProduceRequest
            {
                Acks = acks,
                TimeoutMs = 10_000,
                TopicData = [new() { Name = "min-isr", PartitionData = [new() { Index = 0, Records = new RecordBatchBuilder().Add(Now(), [1]).Build() }] }],
            };
            var response = await raw.SendAsync<ProduceResponse>(request, 9);
            return (ErrorCode)Assert.Single(Assert.Single(response.Responses).PartitionResponses).ErrorCode;
        }

        Assert.Equal(ErrorCode.NotEnoughReplicas, await Send(-1));
        Assert.Equal(ErrorCode.None, await Send(1));
        Assert.Equal(1, broker.Server.State.Topics.GetPartition("min-isr", 0)!.LogEndOffset);
    }

    [Fact]
    public async Task DescribeConfigsDocumentsEveryTopicConfigAndWhatIsOnlyAccepted()
    {
        await broker.CreateTopicAsync("documented");
        await using var raw = await RawKafkaClient.ConnectAsync(broker.Bootstrap);
        var request = new DescribeConfigsRequest
        {
            IncludeDocumentation = true,
            Resources = [new DescribeConfigsRequest.DescribeConfigsResource { ResourceType = 2, ResourceName = "documented" }],
        };
        var configs = Assert.Single((await raw.SendAsync<DescribeConfigsResponse>(request, 4)).Results).Configs;
        Assert.All(configs, c => Assert.False(string.IsNullOrWhiteSpace(c.Documentation), c.Name));
        var compat = configs.Where(c => c.Documentation!.StartsWith("Accepted for compatibility", StringComparison.Ordinal)).Select(c => c.Name).Order();
        Assert.Equal(["flush.messages", "flush.ms", "message.downconversion.enable", "preallocate", "segment.index.bytes", "segment.jitter.ms",
            "unclean.leader.election.enable"], compat);
        Assert.All(configs.Where(c => !compat.Contains(c.Name)), c => Assert.EndsWith("Applied.", c.Documentation));
        // Without the flag (and below v3) no documentation is sent.
        request.IncludeDocumentation = false;
        Assert.All(Assert.Single((await raw.SendAsync<DescribeConfigsResponse>(request, 4)).Results).Configs, c => Assert.Null(c.Documentation));
    }

    [Fact]
    public async Task MessageDownconversionEnableTakesOnlyBooleans()
    {
        using var admin = broker.Admin();
        var error = await Assert.ThrowsAsync<Confluent.Kafka.Admin.CreateTopicsException>(() => admin.CreateTopicsAsync(
            [new Confluent.Kafka.Admin.TopicSpecification { Name = "downconversion", NumPartitions = 1, ReplicationFactor = 1, Configs = new() { ["message.downconversion.enable"] = "maybe" } }]));
        Assert.Equal(Confluent.Kafka.ErrorCode.InvalidConfig, Assert.Single(error.Results).Error.Code);
    }

    private Task<List<byte[]>> FetchBatchesAsync(string topic) => FetchBatchesAsync(topic, broker.Bootstrap);

    /// <summary>The stored batches of partition 0, as a raw Fetch returns them.</summary>
    private static async Task<List<byte[]>> FetchBatchesAsync(string topic, string bootstrap)
    {
        await using var raw = await RawKafkaClient.ConnectAsync(bootstrap);
        var records = (await FetchAsync(raw, topic, 11)).Records!.Value;
        var batches = new List<byte[]>();
        for (int position = 0; position < records.Length;)
        {
            int size = RecordBatchHeader.ReadTotalSize(records.Span[position..]);
            batches.Add(records.Slice(position, size).ToArray());
            position += size;
        }
        return batches;
    }

    private static async Task<FetchResponse.PartitionData> FetchAsync(RawKafkaClient raw, string topic, short version)
    {
        var request = new FetchRequest
        {
            MaxBytes = 1 << 20,
            SessionEpoch = -1,
            IsolationLevel = 0,
            Topics = [new FetchRequest.FetchTopic { Topic = topic, Partitions = [new FetchRequest.FetchPartition { FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }],
        };
        var response = await raw.SendAsync<FetchResponse>(request, version);
        return response.Responses.Single().Partitions.Single();
    }
}
