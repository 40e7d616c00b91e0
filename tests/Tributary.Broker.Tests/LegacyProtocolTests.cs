using System.Buffers.Binary;
using System.Text;
using Confluent.Kafka;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Records;
using ErrorCode = Tributary.Protocol.Messages.ErrorCode;

namespace Tributary.Broker.Tests;

/// <summary>
/// The API versions of clients written before record batches (Kafka 0.8-0.10): Produce v0-2 with message sets of
/// magic 0 and 1, Fetch v0-3 reading them, ListOffsets v0's offset lists; and a modern client reading what they wrote.
/// </summary>
public sealed class LegacyProtocolTests : IAsyncLifetime
{
    private TributaryServer _server = null!;

    private string Bootstrap => _server.BootstrapServers.Replace("localhost", "127.0.0.1");

    public async Task InitializeAsync() => _server = await TributaryServer.StartEphemeralAsync();

    public async Task DisposeAsync() => await _server.StopAsync();

    /// <summary>A message set as an old producer sends it, from records (our down-conversion writes it; its layout is tested against an independent encoder).</summary>
    private static byte[] MessageSet(byte magic, CompressionCodec codec, params (string? Key, string Value, long Timestamp)[] records)
    {
        var builder = new RecordBatchBuilder { Codec = CompressionCodec.None };
        foreach (var (key, value, timestamp) in records) builder.Add(timestamp, key is null ? null : Encoding.UTF8.GetBytes(key), Encoding.UTF8.GetBytes(value));
        var plain = LegacyMessageSet.FromRecordBatches(builder.Build(), magic, int.MaxValue, 1 << 20);
        if (codec == CompressionCodec.None) return plain;
        // A compressed set: one wrapper whose value is the compressed messages.
        var wrapper = new RecordBatchBuilder().Add(records[^1].Timestamp, null, CompressionCodecs.Compress(codec, plain)).Build();
        var set = LegacyMessageSet.FromRecordBatches(wrapper, magic, int.MaxValue, 1 << 20);
        set[17] = (byte)codec; // attributes
        var crc = System.IO.Hashing.Crc32.HashToUInt32(set.AsSpan(16));
        BinaryPrimitives.WriteUInt32BigEndian(set.AsSpan(12), crc);
        return set;
    }

    private static ProduceRequest Produce(string topic, byte[] records) => new()
    {
        Acks = -1,
        TimeoutMs = 10_000,
        TopicData = [new() { Name = topic, PartitionData = [new() { Index = 0, Records = records }] }],
    };

    private static FetchRequest Fetch(string topic, long offset) => new()
    {
        MaxWaitMs = 0,
        Topics = [new() { Topic = topic, Partitions = [new() { Partition = 0, FetchOffset = offset, PartitionMaxBytes = 1 << 20 }] }],
    };

    private static List<(long Offset, byte Magic, string? Key, string Value)> Messages(ReadOnlyMemory<byte>? records)
    {
        var set = records?.ToArray() ?? [];
        var list = new List<(long, byte, string?, string)>();
        for (var p = 0; p < set.Length;)
        {
            var size = BinaryPrimitives.ReadInt32BigEndian(set.AsSpan(p + 8));
            var magic = set[p + 16];
            var q = p + 18 + (magic == 1 ? 8 : 0);
            var keyLength = BinaryPrimitives.ReadInt32BigEndian(set.AsSpan(q));
            var key = keyLength < 0 ? null : Encoding.UTF8.GetString(set, q + 4, keyLength);
            q += 4 + Math.Max(keyLength, 0);
            var value = Encoding.UTF8.GetString(set, q + 4, BinaryPrimitives.ReadInt32BigEndian(set.AsSpan(q)));
            list.Add((BinaryPrimitives.ReadInt64BigEndian(set.AsSpan(p)), magic, key, value));
            p += 12 + size;
        }
        return list;
    }

    [Fact]
    public async Task Old_producers_write_and_old_and_new_consumers_read_it_back()
    {
        await using var client = await RawKafkaClient.ConnectAsync(Bootstrap);
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = Bootstrap }).Build())
            await admin.CreateTopicsAsync([new Confluent.Kafka.Admin.TopicSpecification { Name = "legacy", NumPartitions = 1, ReplicationFactor = 1 }]);

        // Kafka 0.8 (Produce v0, magic 0), 0.10 (v2, magic 1 in a gzip wrapper), then a corrupt message.
        var v0 = await client.SendAsync<ProduceResponse>(Produce("legacy", MessageSet(0, CompressionCodec.None, ("a", "zero", -1), (null, "one", -1))), 0);
        Assert.Equal((0, 0L), (v0.Responses[0].PartitionResponses[0].ErrorCode, v0.Responses[0].PartitionResponses[0].BaseOffset));
        var v2 = await client.SendAsync<ProduceResponse>(Produce("legacy", MessageSet(1, CompressionCodec.Gzip, ("b", "two", 1_700_000_000_002), ("c", "three", 1_700_000_000_003))), 2);
        Assert.Equal((0, 2L), (v2.Responses[0].PartitionResponses[0].ErrorCode, v2.Responses[0].PartitionResponses[0].BaseOffset));
        var corrupt = MessageSet(1, CompressionCodec.None, ("d", "four", 1));
        corrupt[^1] ^= 0x55;
        var refused = await client.SendAsync<ProduceResponse>(Produce("legacy", corrupt), 1);
        Assert.Equal((short)ErrorCode.CorruptMessage, refused.Responses[0].PartitionResponses[0].ErrorCode);
        var batch = await client.SendAsync<ProduceResponse>(Produce("legacy", new RecordBatchBuilder().Add(1, "v"u8).Build()), 2);
        Assert.Equal((short)ErrorCode.InvalidRecord, batch.Responses[0].PartitionResponses[0].ErrorCode);

        // Fetch v0 reads magic 0, v2 and v3 magic 1; the gzip set comes back uncompressed, each message at its offset.
        var expected = new[] { (0L, "a", "zero"), (1L, (string?)null, "one"), (2L, "b", "two"), (3L, "c", "three") };
        foreach (var (version, magic) in new[] { ((short)0, (byte)0), ((short)2, (byte)1), ((short)3, (byte)1) })
        {
            var fetched = await client.SendAsync<FetchResponse>(Fetch("legacy", 0), version);
            var partition = fetched.Responses.Single().Partitions.Single();
            Assert.Equal((0, 4L), (partition.ErrorCode, partition.HighWatermark));
            var messages = Messages(partition.Records);
            Assert.Equal(expected, messages.Select(m => (m.Offset, m.Key, m.Value)));
            Assert.All(messages, m => Assert.Equal(magic, m.Magic));
        }

        // ListOffsets v0: latest and earliest as one-element lists; both ends when asked for more.
        async Task<List<long>> OffsetsAsync(long timestamp, int max)
        {
            var listed = await client.SendAsync<ListOffsetsResponse>(new ListOffsetsRequest
            {
                ReplicaId = -1,
                Topics = [new() { Name = "legacy", Partitions = [new() { PartitionIndex = 0, Timestamp = timestamp, MaxNumOffsets = max }] }],
            }, 0);
            Assert.Equal(0, listed.Topics[0].Partitions[0].ErrorCode);
            return listed.Topics[0].Partitions[0].OldStyleOffsets;
        }
        Assert.Equal([4L], await OffsetsAsync(-1, 1));
        Assert.Equal([0L], await OffsetsAsync(-2, 1));
        Assert.Equal([4L, 0L], await OffsetsAsync(-1, 10));

        // A modern consumer reads the same four records, the magic 1 ones with their timestamps.
        using var consumer = new ConsumerBuilder<string?, string>(new ConsumerConfig { BootstrapServers = Bootstrap, GroupId = "legacy-modern", AutoOffsetReset = AutoOffsetReset.Earliest }).Build();
        consumer.Assign(new TopicPartitionOffset("legacy", 0, 0));
        var read = new List<(string?, string, long)>();
        while (read.Count < 4)
        {
            var result = consumer.Consume(TimeSpan.FromSeconds(10)) ?? throw new TimeoutException($"read {read.Count} of 4");
            read.Add((result.Message.Key, result.Message.Value, result.Message.Timestamp.UnixTimestampMs));
        }
        Assert.Equal([("a", "zero", -1L), (null, "one", -1L), ("b", "two", 1_700_000_000_002L), ("c", "three", 1_700_000_000_003L)], read);
    }

    /// <summary>Apache Kafka 3.9's broker ranges of the APIs served here (its ApiVersions answer): each is covered.</summary>
    private static readonly (ApiKey Key, short Max)[] Kafka39 =
    [
        (ApiKey.Produce, 11), (ApiKey.Fetch, 17), (ApiKey.ListOffsets, 9), (ApiKey.Metadata, 12), (ApiKey.OffsetCommit, 9),
        (ApiKey.OffsetFetch, 9), (ApiKey.FindCoordinator, 5), (ApiKey.JoinGroup, 9), (ApiKey.Heartbeat, 4), (ApiKey.LeaveGroup, 5),
        (ApiKey.SyncGroup, 5), (ApiKey.DescribeGroups, 5), (ApiKey.ListGroups, 5), (ApiKey.SaslHandshake, 1), (ApiKey.ApiVersions, 4),
        (ApiKey.CreateTopics, 7), (ApiKey.DeleteTopics, 6), (ApiKey.DeleteRecords, 2), (ApiKey.InitProducerId, 5),
        (ApiKey.OffsetForLeaderEpoch, 4), (ApiKey.AddPartitionsToTxn, 5), (ApiKey.AddOffsetsToTxn, 4), (ApiKey.EndTxn, 4),
        (ApiKey.WriteTxnMarkers, 1), (ApiKey.TxnOffsetCommit, 4), (ApiKey.DescribeAcls, 3), (ApiKey.CreateAcls, 3), (ApiKey.DeleteAcls, 3),
        (ApiKey.DescribeConfigs, 4), (ApiKey.AlterConfigs, 2), (ApiKey.DescribeLogDirs, 4), (ApiKey.SaslAuthenticate, 2),
        (ApiKey.CreatePartitions, 3), (ApiKey.DeleteGroups, 2), (ApiKey.ElectLeaders, 2), (ApiKey.IncrementalAlterConfigs, 1),
        (ApiKey.AlterPartitionReassignments, 0), (ApiKey.ListPartitionReassignments, 0), (ApiKey.OffsetDelete, 0),
        (ApiKey.DescribeClientQuotas, 1), (ApiKey.AlterClientQuotas, 1), (ApiKey.DescribeUserScramCredentials, 0),
        (ApiKey.AlterUserScramCredentials, 0), (ApiKey.DescribeCluster, 1), (ApiKey.DescribeProducers, 0),
        (ApiKey.DescribeTransactions, 0), (ApiKey.ListTransactions, 1), (ApiKey.ConsumerGroupHeartbeat, 0),
        (ApiKey.ConsumerGroupDescribe, 0), (ApiKey.DescribeTopicPartitions, 0),
    ];

    [Fact]
    public async Task ApiVersions_advertises_every_version_kafka_3_9_accepts_from_zero()
    {
        await using var client = await RawKafkaClient.ConnectAsync(Bootstrap);
        var versions = await client.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest(), 0);
        foreach (var (key, max) in Kafka39)
        {
            var served = versions.ApiKeys.SingleOrDefault(k => k.ApiKey == (short)key) ?? throw new Xunit.Sdk.XunitException($"{key} is not served");
            Assert.True(served.MinVersion == 0 && served.MaxVersion >= max, $"{key}: {served.MinVersion}-{served.MaxVersion}, Kafka 3.9 accepts 0-{max}");
        }
    }

    [Fact]
    public async Task ListOffsets_v9_answers_latest_tiered_with_none()
    {
        await using var client = await RawKafkaClient.ConnectAsync(Bootstrap);
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = Bootstrap }).Build())
            await admin.CreateTopicsAsync([new Confluent.Kafka.Admin.TopicSpecification { Name = "tiered-none", NumPartitions = 1, ReplicationFactor = 1 }]);
        var listed = await client.SendAsync<ListOffsetsResponse>(new ListOffsetsRequest
        {
            ReplicaId = -1,
            Topics = [new() { Name = "tiered-none", Partitions = [new() { PartitionIndex = 0, Timestamp = -5 }] }],
        }, 9);
        var partition = listed.Topics[0].Partitions[0];
        Assert.Equal((0, -1L, -1L, -1), (partition.ErrorCode, partition.Offset, partition.Timestamp, partition.LeaderEpoch));
    }
}
