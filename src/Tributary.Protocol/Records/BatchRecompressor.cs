using System.Buffers;
using System.Buffers.Binary;

namespace Tributary.Protocol.Records;

/// <summary>
/// Rewrites record batches to one codec, as Kafka's LogValidator does when a topic's <c>compression.type</c> is a codec
/// rather than <c>producer</c>. Only the records section changes: it is decompressed and compressed again with the
/// target codec (the records themselves, with their timestamp and offset deltas, are codec-independent). The header
/// keeps every field (base offset, partition leader epoch, lastOffsetDelta, timestamps, producerId, epoch,
/// baseSequence, record count) and every attribute bit but the codec's (transactional, control, timestamp type);
/// batchLength and the CRC are recomputed. A batch already in the target codec is copied as it is (Kafka's in-place
/// path), and so is an uncompressed control batch (Kafka does not compress control records written uncompressed).
/// Off the produce hot path: only topics that ask for a codec pay for it, and it allocates.
/// </summary>
public static class BatchRecompressor
{
    /// <summary>True when some batch of <paramref name="codecMask"/> (see <see cref="BatchSummary.CodecMask"/>) is not in <paramref name="target"/>.</summary>
    public static bool Needed(int codecMask, CompressionCodec target) => (codecMask & ~(1 << (int)target)) != 0;

    /// <param name="batches">Whole batches, already validated (<see cref="RecordBatchValidator"/>).</param>
    /// <param name="largestBatch">The size of the largest batch written, for the caller's max.message.bytes check.</param>
    /// <exception cref="InvalidRecordException">A records section cannot be decompressed within the bound.</exception>
    public static byte[] Recompress(ReadOnlySpan<byte> batches, CompressionCodec target, int maxDecompressedBytes, out int largestBatch)
    {
        var output = new ArrayBufferWriter<byte>(batches.Length + 64);
        largestBatch = 0;
        for (int position = 0; position < batches.Length;)
        {
            var header = new RecordBatchHeader(batches[position..]);
            int size = header.TotalSize;
            var batch = batches.Slice(position, size);
            position += size;
            if (header.Codec == target || (header.IsControl && header.Codec == CompressionCodec.None))
            {
                output.Write(batch);
                largestBatch = Math.Max(largestBatch, size);
                continue;
            }

            var body = batch[RecordBatchHeader.HeaderSize..];
            using var plain = header.Codec == CompressionCodec.None ? default
                : CompressionCodecs.DecompressPooled(header.Codec, body, maxDecompressedBytes);
            var records = header.Codec == CompressionCodec.None ? body : plain.Span;
            // Snappy in xerial framing and LZ4 frames of independent blocks: what Kafka writes and every client reads.
            byte[]? compressed = target == CompressionCodec.None ? null : CompressionCodecs.Compress(target, records, xerialSnappy: true);
            ReadOnlySpan<byte> newBody = compressed is null ? records : compressed;
            int newSize = RecordBatchHeader.HeaderSize + newBody.Length;
            var span = output.GetSpan(newSize)[..newSize];
            batch[..RecordBatchHeader.HeaderSize].CopyTo(span);
            newBody.CopyTo(span[RecordBatchHeader.HeaderSize..]);
            BinaryPrimitives.WriteInt32BigEndian(span[RecordBatchHeader.BatchLengthOffset..], newSize - RecordBatchHeader.LogOverhead);
            short attributes = (short)((header.Attributes & ~RecordBatchHeader.CompressionCodecMask) | (int)target);
            BinaryPrimitives.WriteInt16BigEndian(span[RecordBatchHeader.AttributesOffset..], attributes);
            BinaryPrimitives.WriteUInt32BigEndian(span[RecordBatchHeader.CrcOffset..], RecordBatchHeader.ComputeCrc(span));
            output.Advance(newSize);
            largestBatch = Math.Max(largestBatch, newSize);
        }

        return output.WrittenSpan.ToArray();
    }
}
