using System.Buffers.Binary;
using System.IO.Compression;
using Tributary.Protocol.Records;

namespace Tributary.Broker.Tests.Hostile;

/// <summary>
/// Record batches that lie, built byte by byte: their CRC is right, so only a check of the records inside finds them
/// out. Records are magic-2 records (length, attributes, timestamp delta, offset delta, key, value, header count).
/// </summary>
internal static class HostileBatches
{
    /// <summary>One record; <paramref name="lengthSkew"/> makes its length varint lie by that many bytes.</summary>
    public static byte[] Record(int offsetDelta, byte[]? key, byte[]? value, int lengthSkew = 0)
    {
        var body = new List<byte> { 0 };
        Varint(body, 0);
        Varint(body, offsetDelta);
        Field(body, key);
        Field(body, value);
        Varint(body, 0);
        var record = new List<byte>();
        Varint(record, body.Count + lengthSkew);
        record.AddRange(body);
        return [.. record];
    }

    /// <summary>The prefix of a record whose value is <paramref name="valueLength"/> bytes that follow it (zeros, then a 0 header count).</summary>
    public static byte[] BigRecordPrefix(int offsetDelta, int valueLength)
    {
        var fields = new List<byte> { 0 };
        Varint(fields, 0);
        Varint(fields, offsetDelta);
        Varint(fields, -1);
        Varint(fields, valueLength);
        var prefix = new List<byte>();
        Varint(prefix, fields.Count + valueLength + 1);
        prefix.AddRange(fields);
        return [.. prefix];
    }

    /// <summary>A whole batch around <paramref name="section"/> (compressed already when <paramref name="codec"/> says so), CRC right.</summary>
    public static byte[] Batch(ReadOnlySpan<byte> section, int recordsCount, CompressionCodec codec = CompressionCodec.None, int? lastOffsetDelta = null)
    {
        var template = new RecordBatchBuilder().Add(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), null, [1]).Build();
        var batch = new byte[RecordBatchHeader.HeaderSize + section.Length];
        template.AsSpan(0, RecordBatchHeader.HeaderSize).CopyTo(batch);
        section.CopyTo(batch.AsSpan(RecordBatchHeader.HeaderSize));
        var span = batch.AsSpan();
        BinaryPrimitives.WriteInt32BigEndian(span[RecordBatchHeader.BatchLengthOffset..], batch.Length - RecordBatchHeader.LogOverhead);
        BinaryPrimitives.WriteInt16BigEndian(span[RecordBatchHeader.AttributesOffset..], (short)codec);
        BinaryPrimitives.WriteInt32BigEndian(span[RecordBatchHeader.LastOffsetDeltaOffset..], lastOffsetDelta ?? recordsCount - 1);
        BinaryPrimitives.WriteInt32BigEndian(span[RecordBatchHeader.RecordsCountOffset..], recordsCount);
        BinaryPrimitives.WriteUInt32BigEndian(span[RecordBatchHeader.CrcOffset..], RecordBatchHeader.ComputeCrc(batch));
        return batch;
    }

    /// <summary>
    /// A zstd frame of <paramref name="records"/> records of <paramref name="valueBytes"/> zero bytes each: each record's
    /// prefix is a raw block, its value run-length blocks of 128 KiB that cost 4 bytes each (so 1 GiB of value is 32 KiB).
    /// </summary>
    public static byte[] ZstdBomb(int records, int valueBytes)
    {
        const int Rle = 128 << 10;
        var frame = new List<byte> { 0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x38 }; // magic; no content size; 128 KiB window
        for (int r = 0; r < records; r++)
        {
            var prefix = BigRecordPrefix(r, valueBytes);
            BlockHeader(frame, last: false, type: 0, prefix.Length);
            frame.AddRange(prefix);
            long zeros = valueBytes + 1L; // the value, then the record's header count (0)
            while (zeros > 0)
            {
                int run = (int)Math.Min(zeros, Rle);
                zeros -= run;
                BlockHeader(frame, last: r == records - 1 && zeros == 0, type: 1, run);
                frame.Add(0);
            }
        }

        return [.. frame];
    }

    /// <summary>Gzip of the same content: deflate at its best, about 1:1000.</summary>
    public static byte[] GzipBomb(int records, int valueBytes)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            var zeros = new byte[1 << 20];
            for (int r = 0; r < records; r++)
            {
                gzip.Write(BigRecordPrefix(r, valueBytes));
                for (long left = valueBytes + 1L; left > 0; left -= zeros.Length)
                {
                    gzip.Write(zeros, 0, (int)Math.Min(left, zeros.Length));
                }
            }
        }

        return output.ToArray();
    }

    private static void BlockHeader(List<byte> frame, bool last, int type, int size)
    {
        int header = (size << 3) | (type << 1) | (last ? 1 : 0);
        frame.Add((byte)header);
        frame.Add((byte)(header >> 8));
        frame.Add((byte)(header >> 16));
    }

    private static void Field(List<byte> target, byte[]? bytes)
    {
        Varint(target, bytes?.Length ?? -1);
        if (bytes is not null) target.AddRange(bytes);
    }

    private static void Varint(List<byte> target, long value)
    {
        Span<byte> buffer = stackalloc byte[10];
        int n = RecordVarint.Write(buffer, value);
        foreach (var b in buffer[..n]) target.Add(b);
    }
}
