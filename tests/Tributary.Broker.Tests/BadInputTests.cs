using System.Buffers.Binary;
using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Records;
using ErrorCode = Confluent.Kafka.ErrorCode;
using KafkaErrorCode = Tributary.Protocol.Messages.ErrorCode;

namespace Tributary.Broker.Tests;

/// <summary>A broker with a 1 MiB request limit and no auto-creation, shared by <see cref="BadInputTests"/>.</summary>
public sealed class StrictBrokerFixture : BrokerFixture
{
    protected override IReadOnlyDictionary<string, string>? Settings { get; } = new Dictionary<string, string>
    {
        ["socket.request.max.bytes"] = "1048576",
        ["auto.create.topics.enable"] = "false",
    };
}

/// <summary>
/// Every kind of bad input gets a clear answer: a broken frame closes only the connection that sent it, a bad record
/// batch or topic gets its Kafka error code. Each test first has a real client produce and acknowledge records, and
/// afterwards a fresh client produces more and reads everything back, so nothing was lost and nobody else noticed.
/// </summary>
public sealed class BadInputTests(StrictBrokerFixture fixture) : IClassFixture<StrictBrokerFixture>
{
    private const int RecordsPerPhase = 20;
    private readonly StrictBrokerFixture _broker = fixture;

    // ---- framing ----

    [Fact]
    public async Task Frame_size_over_the_request_limit_closes_the_connection_before_allocating() =>
        await WithHealthyBrokerAsync(async raw =>
        {
            var size = new byte[4];
            BinaryPrimitives.WriteInt32BigEndian(size, 2_000_000_000);
            await raw.SendRawAsync(size);
            // No payload follows: the broker must decide from the size alone, so it cannot be waiting to allocate 2 GB.
            await raw.WaitForCloseAsync();
        });

    [Fact]
    public async Task Negative_frame_size_closes_the_connection() =>
        await WithHealthyBrokerAsync(async raw =>
        {
            await raw.SendRawAsync(new byte[] { 0xFF, 0xFF, 0xFF, 0xF0, 1, 2, 3, 4 });
            await raw.WaitForCloseAsync();
        });

    [Theory]
    [InlineData(0)]
    [InlineData(4)]
    [InlineData(7)]
    public async Task Frame_smaller_than_a_request_header_closes_the_connection(int size) =>
        await WithHealthyBrokerAsync(async raw =>
        {
            var frame = new byte[4 + size];
            BinaryPrimitives.WriteInt32BigEndian(frame, size);
            await raw.SendRawAsync(frame);
            await raw.WaitForCloseAsync();
        });

    [Fact]
    public async Task Truncated_frame_then_close_is_dropped() =>
        await WithHealthyBrokerAsync(async raw =>
        {
            var frame = RawKafkaClient.Frame((short)ApiKey.Metadata, 4, 1, RawKafkaClient.Body(new MetadataRequest { Topics = null }, 4));
            await raw.SendRawAsync(frame.AsMemory(0, frame.Length - 3));
            raw.ShutdownSend();
            Assert.Equal(0, await raw.WaitForCloseAsync());
        });

    [Fact]
    public async Task Random_garbage_closes_the_connection() =>
        await WithHealthyBrokerAsync(async raw =>
        {
            var garbage = new byte[64 * 1024];
            new Random(20240611).NextBytes(garbage);
            await raw.SendRawAsync(garbage);
            // Whatever the garbage's first size field says, end of stream must end the connection too.
            raw.ShutdownSend();
            await raw.WaitForCloseAsync();
        });

    [Fact]
    public async Task Framed_random_bodies_close_the_connection_or_are_answered()
    {
        var topic = await SeedAsync();
        var random = new Random(7);
        for (var i = 0; i < 20; i++)
        {
            await using var raw = await RawKafkaClient.ConnectAsync(_broker.Bootstrap);
            var body = new byte[random.Next(8, 600)];
            random.NextBytes(body);
            // Half of them aim at APIs we serve, at a version we serve, so the parsers see the garbage.
            if (i % 2 == 0)
            {
                BinaryPrimitives.WriteInt16BigEndian(body, (short)(i % 4));
                BinaryPrimitives.WriteInt16BigEndian(body.AsSpan(2), 5);
            }
            var frame = new byte[4 + body.Length];
            BinaryPrimitives.WriteInt32BigEndian(frame, body.Length);
            body.CopyTo(frame, 4);
            await raw.SendRawAsync(frame);
            raw.ShutdownSend();
            await raw.WaitForCloseAsync();
        }
        await VerifyAsync(topic);
    }

    // ---- header ----

    [Fact]
    public async Task Unknown_api_key_closes_the_connection() =>
        await WithHealthyBrokerAsync(async raw =>
        {
            await raw.SendRawAsync(RawKafkaClient.Frame(9999, 0, 1, [0, 0, 0, 0]));
            Assert.Equal(0, await raw.WaitForCloseAsync());
        });

    [Fact]
    public async Task Unsupported_produce_version_closes_the_connection() =>
        await WithHealthyBrokerAsync(async raw =>
        {
            await raw.SendRawAsync(RawKafkaClient.Frame((short)ApiKey.Produce, 99, 1, [0, 0, 0, 0, 0, 0, 0, 0]));
            Assert.Equal(0, await raw.WaitForCloseAsync());
        });

    [Fact]
    public async Task ApiVersions_of_an_unknown_version_is_answered_in_v0_shape_with_UNSUPPORTED_VERSION() =>
        await WithHealthyBrokerAsync(async raw =>
        {
            await raw.SendRawAsync(RawKafkaClient.Frame((short)ApiKey.ApiVersions, 99, 42, [0, 0, 0]));
            var frame = await raw.ReadFrameAsync();
            Assert.NotNull(frame);
            var response = RawKafkaClient.ParseResponse<ApiVersionsResponse>(frame, (short)ApiKey.ApiVersions, 0, 42);
            Assert.Equal((short)KafkaErrorCode.UnsupportedVersion, response.ErrorCode);
            Assert.Equal(35, response.ErrorCode);
            Assert.NotEmpty(response.ApiKeys);
            Assert.Contains(response.ApiKeys, k => k.ApiKey == (short)ApiKey.ApiVersions && k.MaxVersion >= 3);

            // The connection stays usable: a supported version gets a normal answer.
            var ok = await raw.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest(), 0);
            Assert.Equal(0, ok.ErrorCode);
        });

    [Fact]
    public async Task Malformed_metadata_body_closes_the_connection() =>
        await WithHealthyBrokerAsync(async raw =>
        {
            // Metadata v4: an array of 3 topic names, of which only one is present, then allow_auto_topic_creation missing.
            var body = new byte[] { 0, 0, 0, 3, 0, 3, (byte)'a', (byte)'b', (byte)'c' };
            await raw.SendRawAsync(RawKafkaClient.Frame((short)ApiKey.Metadata, 4, 1, body));
            Assert.Equal(0, await raw.WaitForCloseAsync());
        });

    // ---- records and topics ----

    [Fact]
    public async Task Batch_with_a_bad_crc_is_CORRUPT_MESSAGE_and_the_log_is_unchanged()
    {
        var topic = await SeedAsync();
        var batch = new RecordBatchBuilder().Add(Now(), null, Encoding.UTF8.GetBytes("corrupt me")).Build();
        batch[RecordBatchHeader.CrcOffset + 4 + 10] ^= 0x5A;
        var before = HighWatermark(topic);

        await using (var raw = await RawKafkaClient.ConnectAsync(_broker.Bootstrap))
        {
            var error = await ProduceRawAsync(raw, topic, batch);
            Assert.Equal((short)KafkaErrorCode.CorruptMessage, error);
            Assert.Equal(2, error);
        }

        Assert.Equal(before, HighWatermark(topic));
        await VerifyAsync(topic);
    }

    [Fact]
    public async Task Two_batches_for_one_partition_are_INVALID_RECORD_and_the_log_is_unchanged()
    {
        var topic = await SeedAsync();
        var first = new RecordBatchBuilder().Add(Now(), null, Encoding.UTF8.GetBytes("one")).Build();
        var second = new RecordBatchBuilder().Add(Now(), null, Encoding.UTF8.GetBytes("two")).Build();
        var before = HighWatermark(topic);
        await using (var raw = await RawKafkaClient.ConnectAsync(_broker.Bootstrap))
        {
            // Kafka allows one batch per partition from Produce v3; the checks of a batch's header cover only that one.
            var error = await ProduceRawAsync(raw, topic, [.. first, .. second]);
            Assert.Equal((short)KafkaErrorCode.InvalidRecord, error);
        }
        Assert.Equal(before, HighWatermark(topic));
        await VerifyAsync(topic);
    }

    [Fact]
    public async Task Magic_v1_message_set_is_UNSUPPORTED_FOR_MESSAGE_FORMAT()
    {
        var topic = await SeedAsync();
        var before = HighWatermark(topic);
        await using (var raw = await RawKafkaClient.ConnectAsync(_broker.Bootstrap))
        {
            var error = await ProduceRawAsync(raw, topic, LegacyMessageV1(Encoding.UTF8.GetBytes("old format")));
            Assert.Equal((short)KafkaErrorCode.UnsupportedForMessageFormat, error);
            Assert.Equal(43, error);
        }
        Assert.Equal(before, HighWatermark(topic));
        await VerifyAsync(topic);
    }

    [Fact]
    public async Task Record_larger_than_max_message_bytes_is_MESSAGE_TOO_LARGE()
    {
        var topic = "big-" + Guid.NewGuid().ToString("N");
        await _broker.CreateTopicAsync(topic, configs: new Dictionary<string, string> { ["max.message.bytes"] = "1000" });
        await ProducePhaseAsync(topic, "before");
        var before = HighWatermark(topic);

        // librdkafka's own limit is raised so that the broker, not the client, is the one that refuses.
        using (var producer = _broker.Producer(c => c.MessageMaxBytes = 10_000_000))
        {
            var e = await Assert.ThrowsAsync<ProduceException<byte[]?, byte[]?>>(() =>
                producer.ProduceAsync(topic, new Message<byte[]?, byte[]?> { Value = new byte[5000] }));
            Assert.Equal(ErrorCode.MsgSizeTooLarge, e.Error.Code);
            Assert.False(e.Error.IsLocalError);
        }

        await using (var raw = await RawKafkaClient.ConnectAsync(_broker.Bootstrap))
        {
            var batch = new RecordBatchBuilder().Add(Now(), null, new byte[5000]).Build();
            Assert.Equal((short)KafkaErrorCode.MessageTooLarge, await ProduceRawAsync(raw, topic, batch));
        }

        Assert.Equal(before, HighWatermark(topic));
        await ProducePhaseAsync(topic, "after");
        AssertValues(topic, "before", "after");
    }

    [Fact]
    public async Task Produce_to_an_unknown_topic_without_auto_create_is_UNKNOWN_TOPIC_OR_PARTITION()
    {
        var topic = await SeedAsync();
        var missing = "missing-" + Guid.NewGuid().ToString("N");
        await using (var raw = await RawKafkaClient.ConnectAsync(_broker.Bootstrap))
        {
            var batch = new RecordBatchBuilder().Add(Now(), null, Encoding.UTF8.GetBytes("nowhere")).Build();
            Assert.Equal((short)KafkaErrorCode.UnknownTopicOrPartition, await ProduceRawAsync(raw, missing, batch));

            var metadata = await raw.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = missing }], AllowAutoTopicCreation = true }, 9);
            Assert.Equal((short)KafkaErrorCode.UnknownTopicOrPartition, Assert.Single(metadata.Topics).ErrorCode);
        }
        using (var admin = _broker.Admin())
        {
            var names = admin.GetMetadata(TimeSpan.FromSeconds(10)).Topics.Select(t => t.Topic);
            Assert.DoesNotContain(missing, names);
        }
        await VerifyAsync(topic);
    }

    public static TheoryData<string> InvalidTopicNames => new() { "bad name!", ".", "..", new string('t', 250), "a/b" };

    [Theory]
    [MemberData(nameof(InvalidTopicNames))]
    public async Task Invalid_topic_name_is_INVALID_TOPIC_EXCEPTION(string name)
    {
        var topic = await SeedAsync();
        using (var admin = _broker.Admin())
        {
            var e = await Assert.ThrowsAsync<CreateTopicsException>(() =>
                admin.CreateTopicsAsync([new TopicSpecification { Name = name, NumPartitions = 1, ReplicationFactor = 1 }]));
            Assert.Equal(ErrorCode.TopicException, Assert.Single(e.Results).Error.Code);
        }

        // Metadata with auto-creation on must not create it either; a broker that allows auto-creation says why.
        await using var autoCreating = await TributaryServer.StartEphemeralAsync();
        foreach (var bootstrap in new[] { _broker.Bootstrap, autoCreating.BootstrapServers })
        {
            await using var raw = await RawKafkaClient.ConnectAsync(bootstrap);
            var metadata = await raw.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = name }], AllowAutoTopicCreation = true }, 9);
            var error = Assert.Single(metadata.Topics).ErrorCode;
            if (bootstrap == autoCreating.BootstrapServers) Assert.Equal((short)KafkaErrorCode.InvalidTopicException, error);
            else Assert.True(error is (short)KafkaErrorCode.InvalidTopicException or (short)KafkaErrorCode.UnknownTopicOrPartition, $"error {error}");
        }
        Assert.DoesNotContain(autoCreating.State.Topics.Topics, t => t.Name == name);
        await VerifyAsync(topic);
    }

    // ---- helpers ----

    private async Task WithHealthyBrokerAsync(Func<RawKafkaClient, Task> badInput)
    {
        var topic = await SeedAsync();
        await using (var raw = await RawKafkaClient.ConnectAsync(_broker.Bootstrap))
        {
            await badInput(raw);
        }
        await VerifyAsync(topic);
    }

    /// <summary>A fresh topic with <see cref="RecordsPerPhase"/> acknowledged records.</summary>
    private async Task<string> SeedAsync()
    {
        var topic = "bad-input-" + Guid.NewGuid().ToString("N");
        await _broker.CreateTopicAsync(topic);
        await ProducePhaseAsync(topic, "before");
        return topic;
    }

    /// <summary>A new client produces more and reads back everything: earlier records are intact and in order.</summary>
    private async Task VerifyAsync(string topic)
    {
        await ProducePhaseAsync(topic, "after");
        AssertValues(topic, "before", "after");
    }

    private async Task ProducePhaseAsync(string topic, string phase)
    {
        using var producer = _broker.Producer();
        for (var i = 0; i < RecordsPerPhase; i++)
        {
            var result = await producer.ProduceAsync(topic, new Message<byte[]?, byte[]?> { Value = Encoding.UTF8.GetBytes($"{phase}-{i}") });
            Assert.Equal(PersistenceStatus.Persisted, result.Status);
        }
    }

    private void AssertValues(string topic, params string[] phases)
    {
        var expected = phases.SelectMany(p => Enumerable.Range(0, RecordsPerPhase).Select(i => $"{p}-{i}")).ToList();
        var records = _broker.ReadAll(topic, 1, expected.Count);
        Assert.Equal(expected, records.Select(r => Encoding.UTF8.GetString(r.Message.Value!)));
        Assert.Equal(Enumerable.Range(0, expected.Count).Select(i => (long)i), records.Select(r => r.Offset.Value));
    }

    private long HighWatermark(string topic)
    {
        using var consumer = _broker.Consumer();
        return consumer.QueryWatermarkOffsets(new TopicPartition(topic, 0), TimeSpan.FromSeconds(10)).High.Value;
    }

    private static async Task<short> ProduceRawAsync(RawKafkaClient raw, string topic, byte[] records)
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

    private static long Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    /// <summary>A one-message message set in the pre-0.11 format v1: offset, size, CRC-32 (IEEE), magic 1, attributes, timestamp, key, value.</summary>
    private static byte[] LegacyMessageV1(byte[] value)
    {
        var messageSize = 4 + 1 + 1 + 8 + 4 + 4 + value.Length;
        var set = new byte[12 + messageSize];
        var span = set.AsSpan();
        BinaryPrimitives.WriteInt64BigEndian(span, 0);
        BinaryPrimitives.WriteInt32BigEndian(span[8..], messageSize);
        span[16] = 1;
        span[17] = 0;
        BinaryPrimitives.WriteInt64BigEndian(span[18..], Now());
        BinaryPrimitives.WriteInt32BigEndian(span[26..], -1);
        BinaryPrimitives.WriteInt32BigEndian(span[30..], value.Length);
        value.CopyTo(span[34..]);
        BinaryPrimitives.WriteUInt32BigEndian(span[12..], Crc32Ieee(span[16..]));
        return set;
    }

    private static uint Crc32Ieee(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
        }
        return ~crc;
    }
}
