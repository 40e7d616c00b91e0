using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using Tributary.Protocol.Records;

namespace Tributary.Protocol.Tests.Records;

/// <summary>
/// Message sets of magic 0 and 1 (Produce v0-2, Fetch v0-3) to and from record batches. The sets here are written by
/// this test's own encoder, field by field as Kafka's protocol guide lays them out.
/// </summary>
public sealed class LegacyMessageSetTests
{
    /// <summary>[offset][size][crc][magic][attributes][timestamp if magic 1][key][value].</summary>
    internal static byte[] Message(long offset, byte magic, string? key, string? value, long timestamp = -1, byte attributes = 0, byte[]? rawValue = null)
    {
        var k = key is null ? null : Encoding.UTF8.GetBytes(key);
        var v = rawValue ?? (value is null ? null : Encoding.UTF8.GetBytes(value));
        var body = new List<byte> { magic, attributes };
        if (magic == 1) body.AddRange(BigEndian(timestamp));
        foreach (var field in new[] { k, v })
        {
            body.AddRange(BigEndian(field?.Length ?? -1));
            if (field is not null) body.AddRange(field);
        }
        var crc = Crc32.HashToUInt32(body.ToArray());
        var message = new List<byte>();
        message.AddRange(BigEndian(offset));
        message.AddRange(BigEndian(body.Count + 4));
        message.AddRange(BigEndian((int)crc));
        message.AddRange(body);
        return [.. message];
    }

    private static byte[] BigEndian(long v)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteInt64BigEndian(b, v);
        return b;
    }

    private static byte[] BigEndian(int v)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(b, v);
        return b;
    }

    private static string? Text(ReadOnlyMemory<byte>? bytes) => bytes is { } b ? Encoding.UTF8.GetString(b.Span) : null;

    [Fact]
    public void A_magic_0_set_becomes_one_batch_of_its_records_without_timestamps()
    {
        byte[] set = [.. Message(0, 0, "k1", "v1"), .. Message(0, 0, null, "v2"), .. Message(0, 0, "k3", null)];

        var batch = LegacyMessageSet.ToRecordBatch(set, 1 << 20);

        Assert.Equal(RecordsError.None, RecordBatchValidator.Validate(batch, 1 << 20, true, out _, out _));
        var records = RecordReader.ReadAll(batch);
        Assert.Equal([("k1", "v1", -1L), (null, "v2", -1L), ("k3", null, -1L)], records.Select(r => (Text(r.Key), Text(r.Value), r.Timestamp)));
        Assert.Equal([0L, 1, 2], records.Select(r => r.Offset));
    }

    [Fact]
    public void A_gzip_wrapper_of_magic_1_keeps_its_codec_and_timestamps()
    {
        byte[] inner = [.. Message(0, 1, "a", "1", timestamp: 1_700_000_000_001), .. Message(1, 1, "b", "2", timestamp: 1_700_000_000_002)];
        var wrapper = Message(1, 1, null, null, timestamp: 1_700_000_000_002, attributes: 1, rawValue: CompressionCodecs.Compress(CompressionCodec.Gzip, inner));

        var batch = LegacyMessageSet.ToRecordBatch(wrapper, 1 << 20);

        Assert.Equal(CompressionCodec.Gzip, new RecordBatchHeader(batch).Codec);
        Assert.Equal([("a", "1", 1_700_000_000_001L), ("b", "2", 1_700_000_000_002L)],
            RecordReader.ReadAll(batch).Select(r => (Text(r.Key), Text(r.Value), r.Timestamp)));
    }

    [Fact]
    public void A_wrapper_stamped_with_log_append_time_gives_it_to_its_messages()
    {
        byte[] inner = [.. Message(0, 1, null, "x", timestamp: 5), .. Message(1, 1, null, "y", timestamp: 6)];
        var wrapper = Message(1, 1, null, null, timestamp: 99, attributes: 1 | 0x08, rawValue: CompressionCodecs.Compress(CompressionCodec.Gzip, inner));

        Assert.Equal([99L, 99L], RecordReader.ReadAll(LegacyMessageSet.ToRecordBatch(wrapper, 1 << 20)).Select(r => r.Timestamp));
    }

    [Fact]
    public void Corrupt_or_malformed_sets_are_refused_with_the_reason()
    {
        var good = Message(0, 1, "k", "v", timestamp: 1);
        var flipped = (byte[])good.Clone();
        flipped[^1] ^= 0xFF;
        Assert.Contains("crc", Assert.Throws<CorruptMessageException>(() => LegacyMessageSet.ToRecordBatch(flipped, 1 << 20)).Message);
        Assert.Throws<CorruptMessageException>(() => LegacyMessageSet.ToRecordBatch(good.AsSpan(0, good.Length - 3), 1 << 20));
        var nested = Message(0, 1, null, null, 1, attributes: 1, rawValue: CompressionCodecs.Compress(CompressionCodec.Gzip,
            Message(0, 1, null, null, 1, attributes: 1, rawValue: CompressionCodecs.Compress(CompressionCodec.Gzip, good))));
        Assert.Throws<InvalidRecordException>(() => LegacyMessageSet.ToRecordBatch(nested, 1 << 20));
        var bomb = Message(0, 1, null, null, 1, attributes: 1, rawValue: CompressionCodecs.Compress(CompressionCodec.Gzip, new byte[1 << 20]));
        Assert.Throws<DecompressionLimitException>(() => LegacyMessageSet.ToRecordBatch(bomb, 64 << 10));
        var batch = new RecordBatchBuilder().Add(1, "v"u8).Build();
        Assert.Throws<InvalidRecordException>(() => LegacyMessageSet.ToRecordBatch(batch, 1 << 20));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Batches_are_written_back_as_messages_of_the_asked_magic(byte magic)
    {
        var first = new RecordBatchBuilder { BaseOffset = 10 }.Add(1_000, Encoding.UTF8.GetBytes("k"), Encoding.UTF8.GetBytes("v10"))
            .Add(1_001, null, Encoding.UTF8.GetBytes("v11"), [new RecordHeader("h", null)]).Build();
        var control = new RecordBatchBuilder { BaseOffset = 12, IsControl = true, IsTransactional = true }.Add(1_002, new byte[4], new byte[6]).Build();
        var compressed = new RecordBatchBuilder { BaseOffset = 13, Codec = CompressionCodec.Lz4, LogAppendTime = true }.Add(2_000, null, Encoding.UTF8.GetBytes("v13")).Build();
        byte[] stored = [.. first, .. control, .. compressed, .. compressed.AsSpan(0, 20)]; // and a partial batch at the end

        var messages = LegacyMessageSet.FromRecordBatches(stored, magic, 1 << 20, 1 << 20);

        // Reading them back as a produce request would: every CRC holds, offsets and contents are the batches'.
        var back = RecordReader.ReadAll(LegacyMessageSet.ToRecordBatch(messages, 1 << 20));
        Assert.Equal([("k", "v10"), (null, "v11"), (null, "v13")], back.Select(r => (Text(r.Key), Text(r.Value))));
        Assert.Equal([10L, 11, 13], ReadOffsets(messages));
        Assert.All(ReadMagics(messages), m => Assert.Equal(magic, m));
        Assert.Equal(magic == 0 ? [-1L, -1, -1] : [1_000L, 1_001, 2_000], back.Select(r => r.Timestamp));
    }

    [Fact]
    public void Written_back_messages_stop_at_the_limit_but_the_first_always_goes()
    {
        var batch = new RecordBatchBuilder().Add(1, new byte[100]).Add(2, new byte[100]).Add(3, new byte[100]).Build();

        Assert.Single(ReadOffsets(LegacyMessageSet.FromRecordBatches(batch, 1, 10, 1 << 20)));
        Assert.Equal(2, ReadOffsets(LegacyMessageSet.FromRecordBatches(batch, 1, 300, 1 << 20)).Count);
    }

    private static List<long> ReadOffsets(byte[] set)
    {
        var offsets = new List<long>();
        for (var p = 0; p < set.Length; p += 12 + BinaryPrimitives.ReadInt32BigEndian(set.AsSpan(p + 8))) offsets.Add(BinaryPrimitives.ReadInt64BigEndian(set.AsSpan(p)));
        return offsets;
    }

    private static List<byte> ReadMagics(byte[] set)
    {
        var magics = new List<byte>();
        for (var p = 0; p < set.Length; p += 12 + BinaryPrimitives.ReadInt32BigEndian(set.AsSpan(p + 8))) magics.Add(set[p + 16]);
        return magics;
    }
}
