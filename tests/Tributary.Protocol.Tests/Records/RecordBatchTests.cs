using System.Buffers.Binary;
using System.Text;
using CsCheck;
using Tributary.Protocol.Records;

namespace Tributary.Protocol.Tests.Records;

public sealed class RecordBatchTests
{
    private static readonly Gen<(byte[]? Key, byte[]? Value, RecordHeader[] Headers, long TimestampDelta)> GenRecord =
        Gen.Select(
            Gen.Byte.Array[0, 40].Null(),
            Gen.Byte.Array[0, 200].Null(),
            Gen.Select(Gen.String[Gen.Char.AlphaNumeric, 0, 10], Gen.Byte.Array[0, 20].Null())
                .Select((k, v) => new RecordHeader(k, v is null ? null : (ReadOnlyMemory<byte>?)v)).Array[0, 3],
            Gen.Long[-1000, 100_000]);

    [Fact]
    public void Record_prefixes_agree_with_the_full_reader()
    {
        Gen.Select(GenRecord.Array[1, 30], Gen.Long[0, 2_000_000_000_000L]).Sample((records, baseTimestamp) =>
        {
            var builder = new RecordBatchBuilder { BaseOffset = 1000 };
            foreach (var r in records)
            {
                builder.Add(baseTimestamp + r.TimestampDelta, r.Key, r.Value, r.Headers);
            }

            var batch = builder.Build();
            var header = new RecordBatchHeader(batch);
            var decoded = RecordReader.ReadAll(batch).ToList();
            var data = batch.AsSpan(RecordBatchHeader.HeaderSize);
            int seen = 0;
            foreach (var prefix in new RecordPrefixes(data, header.RecordsCount))
            {
                var full = decoded[prefix.Index];
                Assert.Equal(seen++, prefix.Index);
                Assert.Equal(full.Offset, header.BaseOffset + prefix.OffsetDelta);
                Assert.Equal(full.Timestamp, header.BaseTimestamp + prefix.TimestampDelta);
                Assert.Equal(full.Key is not null, prefix.HasKey);
                if (full.Key is { } key)
                {
                    Assert.True(key.Span.SequenceEqual(data.Slice(prefix.KeyStart, prefix.KeyLength)));
                }

                int p = prefix.ValueStart;
                Assert.Equal(full.Value?.Length ?? -1, RecordVarint.ReadVarint(data, ref p));
            }

            Assert.Equal(records.Length, seen);
        });
    }

    [Fact]
    public void Record_prefixes_refuse_a_length_past_the_end()
    {
        var batch = new RecordBatchBuilder().Add(1, [1, 2, 3], [4, 5, 6]).Build();
        var data = batch.AsSpan(RecordBatchHeader.HeaderSize).ToArray();
        data[0] = 0x7E; // the first record's length varint: 63, more than is there
        var error = Assert.Throws<InvalidRecordException>(() =>
        {
            foreach (var _ in new RecordPrefixes(data, 1))
            {
            }
        });
        Assert.Contains("past the end", error.Message);
    }

    [Fact]
    public void Builder_and_reader_round_trip_every_codec()
    {
        var codecs = new[] { (CompressionCodec.None, false), (CompressionCodec.Gzip, false), (CompressionCodec.Snappy, false),
            (CompressionCodec.Snappy, true), (CompressionCodec.Lz4, false), (CompressionCodec.Zstd, false) };
        Gen.Select(GenRecord.Array[1, 30], Gen.Int[0, codecs.Length - 1], Gen.Long[0, 2_000_000_000_000L]).Sample((records, c, baseTimestamp) =>
        {
            var (codec, xerial) = codecs[c];
            var builder = new RecordBatchBuilder { Codec = codec, XerialSnappy = xerial, BaseOffset = 42, ProducerId = 7, ProducerEpoch = 1, BaseSequence = 10 };
            foreach (var r in records)
            {
                builder.Add(baseTimestamp + r.TimestampDelta, r.Key, r.Value, r.Headers);
            }

            var batch = builder.Build();
            Assert.Equal(RecordsError.None, RecordBatchValidator.Validate(batch, int.MaxValue, out var summary));
            Assert.Equal(1, summary.BatchCount);
            Assert.Equal(records.Length, summary.RecordCount);
            Assert.Equal(10 + records.Length - 1, summary.LastSequence);
            var header = new RecordBatchHeader(batch);
            Assert.Equal(codec, header.Codec);
            Assert.Equal(baseTimestamp + records.Max(r => r.TimestampDelta), header.MaxTimestamp);

            var decoded = RecordReader.ReadAll(batch);
            Assert.Equal(records.Length, decoded.Count);
            for (int i = 0; i < records.Length; i++)
            {
                Assert.Equal(42 + i, decoded[i].Offset);
                Assert.Equal(baseTimestamp + records[i].TimestampDelta, decoded[i].Timestamp);
                Assert.Equal(records[i].Key, decoded[i].Key?.ToArray());
                Assert.Equal(records[i].Value, decoded[i].Value?.ToArray());
                Assert.Equal(records[i].Headers.Select(h => (h.Key, h.Value?.ToArray())), decoded[i].Headers.Select(h => (h.Key, h.Value?.ToArray())));
            }
        }, iter: 300);
    }

    [Fact]
    public void Header_view_reads_every_field()
    {
        var batch = new RecordBatchBuilder
        {
            BaseOffset = 1234,
            PartitionLeaderEpoch = 5,
            ProducerId = 99,
            ProducerEpoch = 3,
            BaseSequence = 17,
            IsTransactional = true,
            Codec = CompressionCodec.Lz4,
        }.Add(1000, null, [1]).Add(900, null, [2]).Add(1500, null, [3]).Build();
        var h = new RecordBatchHeader(batch);
        Assert.Equal(1234, h.BaseOffset);
        Assert.Equal(batch.Length, h.TotalSize);
        Assert.Equal(5, h.PartitionLeaderEpoch);
        Assert.Equal(2, h.Magic);
        Assert.Equal(RecordBatchHeader.ComputeCrc(batch), h.Crc);
        Assert.Equal(CompressionCodec.Lz4, h.Codec);
        Assert.True(h.IsTransactional);
        Assert.False(h.IsControl);
        Assert.False(h.IsLogAppendTime);
        Assert.Equal(2, h.LastOffsetDelta);
        Assert.Equal(1236, h.LastOffset);
        Assert.Equal(1000, h.BaseTimestamp);
        Assert.Equal(1500, h.MaxTimestamp);
        Assert.Equal(99, h.ProducerId);
        Assert.Equal(3, h.ProducerEpoch);
        Assert.Equal(17, h.BaseSequence);
        Assert.Equal(3, h.RecordsCount);
    }

    [Fact]
    public void Patching_offsets_and_epoch_keeps_the_crc_valid()
    {
        var batch = Batch(3);
        RecordBatchHeader.SetBaseOffset(batch, 1L << 40);
        RecordBatchHeader.SetPartitionLeaderEpoch(batch, 9);
        Assert.Equal(RecordsError.None, RecordBatchValidator.Validate(batch, int.MaxValue, out _));
        Assert.Equal(1L << 40, new RecordBatchHeader(batch).BaseOffset);
        Assert.Equal((1L << 40) + 2, RecordReader.ReadAll(batch)[^1].Offset);
    }

    [Fact]
    public void LogAppendTime_sets_the_flag_and_max_timestamp_and_recomputes_the_crc()
    {
        var batch = Batch(3);
        RecordBatchHeader.SetLogAppendTime(batch, 777);
        Assert.Equal(RecordsError.None, RecordBatchValidator.Validate(batch, int.MaxValue, out _));
        var header = new RecordBatchHeader(batch);
        Assert.True(header.IsLogAppendTime);
        Assert.Equal(777, header.MaxTimestamp);
        Assert.All(RecordReader.ReadAll(batch), r => Assert.Equal(777, r.Timestamp));
    }

    [Fact]
    public void Validator_summarises_several_batches()
    {
        var first = new RecordBatchBuilder { ProducerId = 5, ProducerEpoch = 2, BaseSequence = 0 }.Add(10, null, [1]).Add(30, null, [2]).Build();
        var second = new RecordBatchBuilder { ProducerId = 5, ProducerEpoch = 2, BaseSequence = 2, Codec = CompressionCodec.Gzip }.Add(20, null, [3]).Build();
        Assert.Equal(RecordsError.None, RecordBatchValidator.Validate([.. first, .. second], 1000, out var summary, out var message));
        Assert.Null(message);
        Assert.Equal(new BatchSummary(2, 3, 10, 30, 5, 2, 0, 2, false, false, (1 << 0) | (1 << 1)), summary);
    }

    [Fact]
    public void Validator_rejects_bad_batches_with_the_matching_error()
    {
        var good = Batch(2);
        Assert.Equal(RecordsError.CorruptMessage, Validate([]));
        Assert.Equal(RecordsError.CorruptMessage, Validate(good[..30]));
        Assert.Equal(RecordsError.CorruptMessage, Validate([.. good, .. good[..20]]));
        Assert.Equal(RecordsError.MessageTooLarge, RecordBatchValidator.Validate(good, good.Length - 1, out _));

        var flipped = good.ToArray();
        flipped[^1] ^= 1;
        Assert.Equal(RecordsError.CorruptMessage, Validate(flipped));

        var magic1 = good.ToArray();
        magic1[RecordBatchHeader.MagicOffset] = 1;
        Assert.Equal(RecordsError.UnsupportedForMessageFormat, Validate(magic1));

        var shortLength = good.ToArray();
        BinaryPrimitives.WriteInt32BigEndian(shortLength.AsSpan(RecordBatchHeader.BatchLengthOffset), 10);
        Assert.Equal(RecordsError.CorruptMessage, Validate(shortLength));

        Assert.Equal(RecordsError.UnsupportedCompressionType, Validate(Resigned(good, b => BinaryPrimitives.WriteInt16BigEndian(b.AsSpan(RecordBatchHeader.AttributesOffset), 5))));
        Assert.Equal(RecordsError.InvalidRecord, Validate(Resigned(good, b => BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(RecordBatchHeader.LastOffsetDeltaOffset), 5))));
        Assert.Equal(RecordsError.InvalidRecord, Validate(Resigned(good, b => BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(RecordBatchHeader.RecordsCountOffset), 0))));

        var zstd = new RecordBatchBuilder { Codec = CompressionCodec.Zstd }.Add(1, null, [1]).Build();
        Assert.Equal(RecordsError.UnsupportedCompressionType, RecordBatchValidator.Validate(zstd, 1000, allowZstd: false, out _, out var message));
        Assert.NotNull(message);
    }

    [Fact]
    public void Validator_never_throws_on_random_bytes() =>
        Gen.Byte.Array[0, 200].Sample(bytes =>
        {
            RecordBatchValidator.Validate(bytes, 1000, out _);
        });

    [Fact]
    public void Reader_reports_corrupt_record_data_as_InvalidRecordException()
    {
        var batch = Batch(2);
        var broken = Resigned(batch, b => b[RecordBatchHeader.HeaderSize] = 0x7F); // first record length far too large
        Assert.Throws<InvalidRecordException>(() => RecordReader.ReadAll(broken));
        var gzip = new RecordBatchBuilder { Codec = CompressionCodec.Gzip }.Add(1, null, [1, 2, 3]).Build();
        Assert.Throws<InvalidRecordException>(() => RecordReader.ReadAll(Resigned(gzip, b => b[^3] ^= 0xFF)));
    }

    [Fact]
    public void Reads_raw_and_xerial_snappy_alike()
    {
        var data = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("tributary ", 10_000)));
        Assert.Equal(data, CompressionCodecs.Decompress(CompressionCodec.Snappy, CompressionCodecs.Compress(CompressionCodec.Snappy, data)));
        var xerial = CompressionCodecs.Compress(CompressionCodec.Snappy, data, xerialSnappy: true);
        Assert.Equal(0x82, xerial[0]);
        Assert.Equal(data, CompressionCodecs.Decompress(CompressionCodec.Snappy, xerial));
    }

    private static RecordsError Validate(byte[] bytes) => RecordBatchValidator.Validate(bytes, int.MaxValue, out _);

    private static byte[] Batch(int records)
    {
        var builder = new RecordBatchBuilder();
        for (int i = 0; i < records; i++)
        {
            builder.Add(100 + i, Encoding.UTF8.GetBytes($"k{i}"), Encoding.UTF8.GetBytes($"v{i}"));
        }

        return builder.Build();
    }

    private static byte[] Resigned(byte[] batch, Action<byte[]> edit)
    {
        var copy = batch.ToArray();
        edit(copy);
        BinaryPrimitives.WriteUInt32BigEndian(copy.AsSpan(RecordBatchHeader.CrcOffset), RecordBatchHeader.ComputeCrc(copy));
        return copy;
    }
}
