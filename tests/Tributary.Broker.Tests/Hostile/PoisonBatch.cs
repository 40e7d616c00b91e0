using System.Buffers.Binary;
using Tributary.Protocol.Records;

namespace Tributary.Broker.Tests.Hostile;

/// <summary>
/// A batch whose header and CRC are valid but whose snappy body is 7 bytes of garbage, written straight into a stopped
/// partition's files: below append validation (which refuses it), as old data, another tool or a past bug leaves one.
/// </summary>
internal static class PoisonBatch
{
    /// <summary>
    /// Appends the batch, at <paramref name="offset"/> (the partition's end), to the last segment in
    /// <paramref name="partitionDir"/>, and removes the clean-shutdown marker so the next open scans that segment in
    /// full (recovery keeps whole, CRC-valid batches, so it adopts this one).
    /// </summary>
    public static void AppendTo(string partitionDir, long offset)
    {
        byte[] body = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02];
        var batch = new byte[RecordBatchHeader.HeaderSize + body.Length];
        var span = batch.AsSpan();
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        BinaryPrimitives.WriteInt64BigEndian(span[RecordBatchHeader.BaseOffsetOffset..], offset);
        BinaryPrimitives.WriteInt32BigEndian(span[RecordBatchHeader.BatchLengthOffset..], batch.Length - RecordBatchHeader.LogOverhead);
        span[RecordBatchHeader.MagicOffset] = 2;
        BinaryPrimitives.WriteInt16BigEndian(span[RecordBatchHeader.AttributesOffset..], (short)CompressionCodec.Snappy);
        BinaryPrimitives.WriteInt64BigEndian(span[RecordBatchHeader.BaseTimestampOffset..], now);
        BinaryPrimitives.WriteInt64BigEndian(span[RecordBatchHeader.MaxTimestampOffset..], now);
        BinaryPrimitives.WriteInt64BigEndian(span[RecordBatchHeader.ProducerIdOffset..], -1);
        BinaryPrimitives.WriteInt16BigEndian(span[RecordBatchHeader.ProducerEpochOffset..], -1);
        BinaryPrimitives.WriteInt32BigEndian(span[RecordBatchHeader.BaseSequenceOffset..], -1);
        BinaryPrimitives.WriteInt32BigEndian(span[RecordBatchHeader.RecordsCountOffset..], 1);
        body.CopyTo(span[RecordBatchHeader.HeaderSize..]);
        BinaryPrimitives.WriteUInt32BigEndian(span[RecordBatchHeader.CrcOffset..], RecordBatchHeader.ComputeCrc(span));
        var active = Directory.EnumerateFiles(partitionDir, "*.log").Order(StringComparer.Ordinal).Last();
        using (var file = new FileStream(active, FileMode.Append, FileAccess.Write))
        {
            file.Write(batch);
        }

        File.Delete(Path.Combine(partitionDir, ".clean-shutdown"));
    }
}
