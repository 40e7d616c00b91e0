using System.Buffers.Binary;
using Tributary.Protocol.Records;

namespace Tributary.Storage.Tests;

/// <summary>
/// A batch whose header and CRC are valid but whose snappy body is 7 bytes of garbage, put on disk below append
/// validation (which refuses such batches): the way old data, another tool or a past bug leaves one in a log.
/// </summary>
internal static class PoisonBatch
{
    public static byte[] Bytes(long baseOffset, long timestamp)
    {
        byte[] body = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02];
        var batch = new byte[RecordBatchHeader.HeaderSize + body.Length];
        var span = batch.AsSpan();
        BinaryPrimitives.WriteInt64BigEndian(span[RecordBatchHeader.BaseOffsetOffset..], baseOffset);
        BinaryPrimitives.WriteInt32BigEndian(span[RecordBatchHeader.BatchLengthOffset..], batch.Length - RecordBatchHeader.LogOverhead);
        span[RecordBatchHeader.MagicOffset] = 2;
        BinaryPrimitives.WriteInt16BigEndian(span[RecordBatchHeader.AttributesOffset..], (short)CompressionCodec.Snappy);
        BinaryPrimitives.WriteInt32BigEndian(span[RecordBatchHeader.LastOffsetDeltaOffset..], 0);
        BinaryPrimitives.WriteInt64BigEndian(span[RecordBatchHeader.BaseTimestampOffset..], timestamp);
        BinaryPrimitives.WriteInt64BigEndian(span[RecordBatchHeader.MaxTimestampOffset..], timestamp);
        BinaryPrimitives.WriteInt64BigEndian(span[RecordBatchHeader.ProducerIdOffset..], -1);
        BinaryPrimitives.WriteInt16BigEndian(span[RecordBatchHeader.ProducerEpochOffset..], -1);
        BinaryPrimitives.WriteInt32BigEndian(span[RecordBatchHeader.BaseSequenceOffset..], -1);
        BinaryPrimitives.WriteInt32BigEndian(span[RecordBatchHeader.RecordsCountOffset..], 1);
        body.CopyTo(span[RecordBatchHeader.HeaderSize..]);
        BinaryPrimitives.WriteUInt32BigEndian(span[RecordBatchHeader.CrcOffset..], RecordBatchHeader.ComputeCrc(span));
        return batch;
    }

    /// <summary>
    /// Appends the poison batch at <paramref name="nextOffset"/> to the last segment of the closed log in
    /// <paramref name="directory"/>, and removes the clean-shutdown marker so the next open scans that segment in full
    /// (recovery keeps whole, CRC-valid batches, so it adopts this one).
    /// </summary>
    public static void AppendToClosedLog(string directory, long nextOffset, long timestamp)
    {
        var active = Directory.EnumerateFiles(directory, "*.log").Order(StringComparer.Ordinal).Last();
        using (var file = new FileStream(active, FileMode.Append, FileAccess.Write))
        {
            file.Write(Bytes(nextOffset, timestamp));
        }

        File.Delete(Path.Combine(directory, ".clean-shutdown"));
    }
}
