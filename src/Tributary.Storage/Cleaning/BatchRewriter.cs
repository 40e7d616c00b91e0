using System.Buffers;
using System.Buffers.Binary;
using Tributary.Protocol.Records;

namespace Tributary.Storage.Cleaning;

/// <summary>
/// Rewrites one stored batch for the cleaner, keeping what must survive and nothing else.
///
/// A record with a key survives unless the key map holds a later offset for its key, or it is a tombstone
/// (null value) whose delete horizon has passed. Records at or past the map's end offset, and records without a
/// key, survive. Committed transactional records are cleaned like any others. Whole-batch decisions come from the
/// transaction rules (<see cref="TransactionTracker"/>) as a <see cref="BatchPolicy"/>: an aborted batch loses all
/// its records; a marker whose transaction has no data left gets a delete horizon, and loses its record once the
/// horizon has passed.
///
/// The rewritten batch keeps its base offset, last offset delta (so the batch still ends where it ended: offsets
/// stay dense across batches and a producer's last sequence stays base sequence + last offset delta), partition
/// leader epoch, producer id, epoch, base sequence, transactional and control flags, max timestamp, timestamp type
/// and codec; surviving records keep their bytes and offset deltas. Tombstones and markers are kept for
/// delete.retention.ms after the cleaner first finds them removable, as Kafka does since KIP-534: that pass sets the
/// batch's delete-horizon flag (attribute bit 6) and stores now + delete.retention.ms as the batch's base timestamp,
/// re-basing the records' timestamp deltas so every record's timestamp is unchanged; a later pass past the horizon
/// removes them. The horizon lives in the batch, so it survives restarts and re-cleaning without any side file.
/// A batch left empty disappears, unless it holds an active producer's last sequence (then its header remains, with
/// no records) or ends a cleaned segment (then an anonymous empty batch marks where the segment's offsets end).
/// </summary>
internal static class BatchRewriter
{
    public const short DeleteHorizonFlag = 0x40;
    // Reused across batches (the cleaner is one thread; tests may clean from others, hence per thread). Decompressed
    // sections are pooled per batch instead (bounded by maxDecompressedBytes, returned when the batch is done).
    [ThreadStatic] private static ArrayBufferWriter<byte>? t_rewritten;

    /// <summary>Whole-batch decisions taken before the records are looked at.</summary>
    /// <param name="DiscardRecords">Remove every record (an aborted batch; a marker past its horizon with no data left).</param>
    /// <param name="MarkerWithoutData">A marker whose transaction has no data left: stamp the delete horizon.</param>
    /// <param name="LastOfProducer">Holds an active producer's last sequence: kept, emptied if need be.</param>
    /// <param name="LastOfSegment">Ends a cleaned segment: kept, as an anonymous empty batch if need be.</param>
    public readonly record struct BatchPolicy(bool DiscardRecords, bool MarkerWithoutData, bool LastOfProducer, bool LastOfSegment);

    public enum Outcome
    {
        Dropped,
        CopiedUnchanged,
        Rewritten,
    }

    private struct RecordSlice
    {
        public RecordPrefix Record;
        public bool Retain;
    }

    /// <summary>Adds each record's key at its offset (records at or after <paramref name="fromOffset"/>) to the map (data batches not aborted).</summary>
    /// <returns>False, adding nothing, when the batch could not fit in the map.</returns>
    /// <param name="maxDecompressedBytes">Bound on a compressed records section (<see cref="CompressionCodecs.MaxDecompressedBytes"/>).</param>
    /// <exception cref="InvalidRecordException">The batch cannot be decoded, or expands beyond the bound.</exception>
    public static bool IndexKeys(ReadOnlySpan<byte> batch, long fromOffset, OffsetMap map, int maxDecompressedBytes)
    {
        var header = new RecordBatchHeader(batch);
        if (header.IsControl || header.RecordsCount == 0)
        {
            return true;
        }

        if (map.Count + header.RecordsCount > map.Capacity)
        {
            return false;
        }

        using var decompressed = Decompress(batch, header, maxDecompressedBytes);
        var data = header.Codec == CompressionCodec.None ? Body(batch, header) : decompressed.Span;
        foreach (var record in new RecordPrefixes(data, header.RecordsCount))
        {
            long offset = header.BaseOffset + record.OffsetDelta;
            if (offset >= fromOffset && record.HasKey)
            {
                map.Put(data.Slice(record.KeyStart, record.KeyLength), offset);
            }
        }

        return true;
    }

    /// <summary>Writes the surviving form of <paramref name="batch"/> (if any) to <paramref name="output"/>.</summary>
    /// <param name="latest">Where the key test keeps records, when known: a batch it shows keeps none is emptied unread.</param>
    /// <exception cref="InvalidRecordException">The batch cannot be decoded, or expands beyond <paramref name="maxDecompressedBytes"/>.</exception>
    public static Outcome Rewrite(ReadOnlySpan<byte> batch, OffsetMap map, LatestOffsets? latest, long mapEndOffset, long nowMs, long deleteRetentionMs,
        BatchPolicy policy, IBufferWriter<byte> output, int maxDecompressedBytes)
    {
        var header = new RecordBatchHeader(batch);
        int total = header.TotalSize;
        if (policy.DiscardRecords || header.RecordsCount == 0
            || (!header.IsControl && latest is not null && latest.NoneSet(header.BaseOffset, header.LastOffset)))
        {
            return WriteEmpty(batch, policy, output);
        }

        if (header.IsControl)
        {
            if (!policy.MarkerWithoutData || (header.Attributes & DeleteHorizonFlag) != 0)
            {
                output.Write(batch[..total]);
                return Outcome.CopiedUnchanged;
            }
        }
        else if (header.BaseOffset >= mapEndOffset)
        {
            output.Write(batch[..total]);
            return Outcome.CopiedUnchanged;
        }

        var body = Body(batch, header);
        using var decompressed = Decompress(batch, header, maxDecompressedBytes);
        var data = header.Codec == CompressionCodec.None ? body : decompressed.Span;
        bool hasHorizon = (header.Attributes & DeleteHorizonFlag) != 0;
        long horizon = hasHorizon ? header.BaseTimestamp : long.MaxValue;
        int count = header.RecordsCount;
        var slices = ArrayPool<RecordSlice>.Shared.Rent(Math.Max(count, 1));
        try
        {
            int retained = 0;
            bool tombstoneKept = false;
            foreach (var record in new RecordPrefixes(data, count))
            {
                ref var slice = ref slices[record.Index];
                slice.Record = record;
                long offset = header.BaseOffset + record.OffsetDelta;
                bool retain;
                if (header.IsControl)
                {
                    retain = true;
                    tombstoneKept = true; // a marker without data: horizon it like a tombstone
                }
                else if (offset >= mapEndOffset)
                {
                    retain = true;
                }
                else if (!record.HasKey)
                {
                    // No key can be compacted: Kafka's cleaner drops such records (a log written before the topic
                    // became compacted may hold them; appends to a compacted topic refuse them).
                    retain = false;
                }
                else
                {
                    var key = data.Slice(record.KeyStart, record.KeyLength);
                    int p = record.ValueStart;
                    bool tombstone = RecordVarint.ReadVarint(data, ref p) < 0;
                    retain = map.Get(key) <= offset && !(tombstone && nowMs >= horizon);
                    tombstoneKept |= retain && tombstone;
                }

                slice.Retain = retain;
                retained += retain ? 1 : 0;
            }

            bool setHorizon = tombstoneKept && !hasHorizon;
            if (retained == count && !setHorizon)
            {
                output.Write(batch[..total]);
                return Outcome.CopiedUnchanged;
            }

            if (retained == 0)
            {
                return WriteEmpty(batch, policy, output);
            }

            long baseTimestamp = header.BaseTimestamp;
            long newBase = setHorizon ? SaturatingAdd(nowMs, deleteRetentionMs) : baseTimestamp;
            var records = t_rewritten ??= new ArrayBufferWriter<byte>(64 << 10);
            records.ResetWrittenCount();
            for (int i = 0; i < count; i++)
            {
                if (!slices[i].Retain)
                {
                    continue;
                }

                var slice = slices[i].Record;

                if (newBase == baseTimestamp)
                {
                    records.Write(data[slice.Start..slice.End]);
                    continue;
                }

                long delta = baseTimestamp + slice.TimestampDelta - newBase;
                var rest = data[slice.TimestampEnd..slice.End];
                int bodyLength = 1 + RecordVarint.SizeOf(delta) + rest.Length;
                var span = records.GetSpan(bodyLength + 5);
                int w = RecordVarint.Write(span, bodyLength);
                span[w++] = 0;
                w += RecordVarint.Write(span[w..], delta);
                rest.CopyTo(span[w..]);
                records.Advance(w + rest.Length);
            }

            var codec = header.Codec;
            ReadOnlySpan<byte> newBody = codec == CompressionCodec.None ? records.WrittenSpan
                : CompressionCodecs.Compress(codec, records.WrittenSpan, xerialSnappy: codec == CompressionCodec.Snappy && IsXerial(body));
            int attributes = (header.Attributes & ~RecordBatchHeader.CompressionCodecMask) | (int)codec | (setHorizon ? DeleteHorizonFlag : 0);
            WriteBatch(batch[..RecordBatchHeader.HeaderSize], attributes, newBase, retained, newBody, output);
            return Outcome.Rewritten;
        }
        finally
        {
            ArrayPool<RecordSlice>.Shared.Return(slices);
        }
    }

    /// <summary>
    /// A batch with no record left. The one holding a producer's last sequence keeps its header as it was. One kept
    /// only to mark where a cleaned segment's offsets end becomes anonymous (no producer id, sequence, transaction or
    /// control flag): it must not open a transaction or hold a sequence when producer state is rebuilt from the log,
    /// and it must not count as its transaction's data, which would keep the transaction's marker for ever.
    /// </summary>
    private static Outcome WriteEmpty(ReadOnlySpan<byte> batch, BatchPolicy policy, IBufferWriter<byte> output)
    {
        var header = new RecordBatchHeader(batch);
        var original = batch[..RecordBatchHeader.HeaderSize];
        if (policy.LastOfProducer)
        {
            if (header.RecordsCount == 0)
            {
                output.Write(batch[..header.TotalSize]);
                return Outcome.CopiedUnchanged;
            }

            WriteBatch(original, header.Attributes & ~RecordBatchHeader.CompressionCodecMask, header.BaseTimestamp, 0, [], output);
            return Outcome.Rewritten;
        }

        if (!policy.LastOfSegment)
        {
            return Outcome.Dropped;
        }

        int attributes = header.Attributes & RecordBatchHeader.TimestampTypeFlag;
        if (header.RecordsCount == 0 && header.ProducerId == -1 && header.Attributes == attributes)
        {
            output.Write(batch[..header.TotalSize]);
            return Outcome.CopiedUnchanged;
        }

        Span<byte> anonymous = stackalloc byte[RecordBatchHeader.HeaderSize];
        original.CopyTo(anonymous);
        BinaryPrimitives.WriteInt64BigEndian(anonymous[RecordBatchHeader.ProducerIdOffset..], -1);
        BinaryPrimitives.WriteInt16BigEndian(anonymous[RecordBatchHeader.ProducerEpochOffset..], -1);
        BinaryPrimitives.WriteInt32BigEndian(anonymous[RecordBatchHeader.BaseSequenceOffset..], -1);
        WriteBatch(anonymous, attributes, header.BaseTimestamp, 0, [], output);
        return Outcome.Rewritten;
    }

    /// <summary>The original header with new attributes, base timestamp, count and body; length and CRC recomputed.</summary>
    private static void WriteBatch(ReadOnlySpan<byte> originalHeader, int attributes, long baseTimestamp, int count, ReadOnlySpan<byte> body, IBufferWriter<byte> output)
    {
        int size = RecordBatchHeader.HeaderSize + body.Length;
        var target = output.GetSpan(size)[..size];
        originalHeader.CopyTo(target);
        BinaryPrimitives.WriteInt32BigEndian(target[RecordBatchHeader.BatchLengthOffset..], size - RecordBatchHeader.LogOverhead);
        BinaryPrimitives.WriteInt16BigEndian(target[RecordBatchHeader.AttributesOffset..], (short)attributes);
        BinaryPrimitives.WriteInt64BigEndian(target[RecordBatchHeader.BaseTimestampOffset..], baseTimestamp);
        BinaryPrimitives.WriteInt32BigEndian(target[RecordBatchHeader.RecordsCountOffset..], count);
        body.CopyTo(target[RecordBatchHeader.HeaderSize..]);
        BinaryPrimitives.WriteUInt32BigEndian(target[RecordBatchHeader.CrcOffset..], RecordBatchHeader.ComputeCrc(target));
        output.Advance(size);
    }

    private static ReadOnlySpan<byte> Body(ReadOnlySpan<byte> batch, RecordBatchHeader header) => batch[RecordBatchHeader.HeaderSize..header.TotalSize];

    /// <summary>A compressed batch's records section in pooled memory (the caller disposes it); nothing for an uncompressed one.</summary>
    private static PooledBytes Decompress(ReadOnlySpan<byte> batch, RecordBatchHeader header, int maxBytes) =>
        header.Codec == CompressionCodec.None ? default : CompressionCodecs.DecompressPooled(header.Codec, Body(batch, header), maxBytes);

    private static bool IsXerial(ReadOnlySpan<byte> body) =>
        body.Length >= 8 && body[..8].SequenceEqual((ReadOnlySpan<byte>)[0x82, (byte)'S', (byte)'N', (byte)'A', (byte)'P', (byte)'P', (byte)'Y', 0]);

    private static long SaturatingAdd(long a, long b) => b > long.MaxValue - a ? long.MaxValue : a + b;
}
