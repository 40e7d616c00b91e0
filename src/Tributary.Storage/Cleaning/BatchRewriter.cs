using System.Buffers;
using System.Buffers.Binary;
using Tributary.Protocol.Records;

namespace Tributary.Storage.Cleaning;

/// <summary>
/// Rewrites one stored batch for the cleaner, keeping what must survive and nothing else.
///
/// A record with a key survives unless the key map holds a later offset for its key, or it is a tombstone
/// (null value) whose delete horizon has passed. Records at or past the map's end offset, and records without a
/// key, always survive. Control batches and transactional batches are copied unchanged: which transactional
/// records were aborted is not known until transactions exist (the seam is <see cref="CopiedUnchanged"/>).
///
/// The rewritten batch keeps its base offset, last offset delta (so the batch still ends where it ended: offsets
/// stay dense across batches and a producer's last sequence stays base sequence + last offset delta), partition
/// leader epoch, producer id, epoch, base sequence, max timestamp, timestamp type and codec; surviving records keep
/// their bytes and offset deltas. Tombstones are kept for delete.retention.ms after the cleaner first keeps them,
/// as Kafka does since KIP-534: that pass sets the batch's delete-horizon flag (attribute bit 6) and stores
/// now + delete.retention.ms as the batch's base timestamp, re-basing the records' timestamp deltas so every
/// record's timestamp is unchanged; a later pass past the horizon removes them. The horizon lives in the batch,
/// so it survives restarts and re-cleaning without any side file.
/// A batch left empty disappears, unless <c>keepEmpty</c> (the last batch of a cleaned segment, which
/// marks where the segment's offset range ends): then an empty batch with the same offsets remains.
/// </summary>
internal static class BatchRewriter
{
    public const short DeleteHorizonFlag = 0x40;

    public enum Outcome
    {
        Dropped,
        CopiedUnchanged,
        Rewritten,
    }

    private struct RecordSlice
    {
        public int Start;
        public int End;
        public int TimestampEnd;
        public long TimestampDelta;
        public bool Retain;
    }

    /// <summary>Adds each data record's key at its offset (records at or after <paramref name="fromOffset"/>) to the map.</summary>
    /// <returns>False, adding nothing, when the batch could not fit in the map.</returns>
    public static bool IndexKeys(ReadOnlySpan<byte> batch, long fromOffset, OffsetMap map)
    {
        var header = new RecordBatchHeader(batch);
        if (header.IsControl || header.IsTransactional || header.RecordsCount == 0)
        {
            return true;
        }

        if (map.Count + header.RecordsCount > map.Capacity)
        {
            return false;
        }

        byte[]? decompressed = header.Codec == CompressionCodec.None ? null
            : CompressionCodecs.Decompress(header.Codec, batch[RecordBatchHeader.HeaderSize..header.TotalSize]);
        ReadOnlySpan<byte> data = decompressed ?? batch[RecordBatchHeader.HeaderSize..header.TotalSize];
        int position = 0;
        long baseOffset = header.BaseOffset;
        for (int i = 0; i < header.RecordsCount; i++)
        {
            int length = RecordVarint.ReadVarint(data, ref position);
            int end = position + length;
            int p = position + 1;
            _ = RecordVarint.ReadVarlong(data, ref p);
            long offset = baseOffset + RecordVarint.ReadVarint(data, ref p);
            int keyLength = RecordVarint.ReadVarint(data, ref p);
            if (keyLength >= 0 && offset >= fromOffset)
            {
                map.Put(data.Slice(p, keyLength), offset);
            }

            position = end;
        }

        return true;
    }

    /// <summary>Writes the surviving form of <paramref name="batch"/> (if any) to <paramref name="output"/>.</summary>
    public static Outcome Rewrite(ReadOnlySpan<byte> batch, OffsetMap map, long mapEndOffset, long nowMs, long deleteRetentionMs,
        bool keepEmpty, IBufferWriter<byte> output)
    {
        var header = new RecordBatchHeader(batch);
        int total = header.TotalSize;
        if (header.IsControl || header.IsTransactional || header.BaseOffset >= mapEndOffset)
        {
            output.Write(batch[..total]);
            return Outcome.CopiedUnchanged;
        }

        var body = batch[RecordBatchHeader.HeaderSize..total];
        byte[]? decompressed = header.Codec == CompressionCodec.None ? null : CompressionCodecs.Decompress(header.Codec, body);
        ReadOnlySpan<byte> data = decompressed ?? body;
        bool hasHorizon = (header.Attributes & DeleteHorizonFlag) != 0;
        long horizon = hasHorizon ? header.BaseTimestamp : long.MaxValue;
        int count = header.RecordsCount;
        var slices = ArrayPool<RecordSlice>.Shared.Rent(Math.Max(count, 1));
        try
        {
            int retained = 0;
            bool tombstoneKept = false;
            int position = 0;
            for (int i = 0; i < count; i++)
            {
                ref var slice = ref slices[i];
                slice.Start = position;
                int length = RecordVarint.ReadVarint(data, ref position);
                if (length < 0 || length > data.Length - position)
                {
                    throw new InvalidRecordException("Record length runs past the end of the batch.");
                }

                slice.End = position + length;
                int p = position + 1;
                slice.TimestampDelta = RecordVarint.ReadVarlong(data, ref p);
                slice.TimestampEnd = p;
                long offset = header.BaseOffset + RecordVarint.ReadVarint(data, ref p);
                int keyLength = RecordVarint.ReadVarint(data, ref p);
                bool retain;
                if (offset >= mapEndOffset || keyLength < 0)
                {
                    retain = true;
                }
                else
                {
                    var key = data.Slice(p, keyLength);
                    p += keyLength;
                    bool tombstone = RecordVarint.ReadVarint(data, ref p) < 0;
                    retain = map.Get(key) <= offset && !(tombstone && nowMs >= horizon);
                    tombstoneKept |= retain && tombstone;
                }

                slice.Retain = retain;
                retained += retain ? 1 : 0;
                position = slice.End;
            }

            bool setHorizon = tombstoneKept && !hasHorizon;
            if (retained == count && !setHorizon)
            {
                output.Write(batch[..total]);
                return Outcome.CopiedUnchanged;
            }

            if (retained == 0 && !keepEmpty)
            {
                return Outcome.Dropped;
            }

            long baseTimestamp = header.BaseTimestamp;
            long newBase = setHorizon ? SaturatingAdd(nowMs, deleteRetentionMs) : baseTimestamp;
            var records = new ArrayBufferWriter<byte>(data.Length + 16);
            for (int i = 0; i < count; i++)
            {
                ref var slice = ref slices[i];
                if (!slice.Retain)
                {
                    continue;
                }

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

            var codec = retained == 0 ? CompressionCodec.None : header.Codec;
            ReadOnlySpan<byte> newBody = codec == CompressionCodec.None ? records.WrittenSpan
                : CompressionCodecs.Compress(codec, records.WrittenSpan, xerialSnappy: codec == CompressionCodec.Snappy && IsXerial(body));
            int size = RecordBatchHeader.HeaderSize + newBody.Length;
            var target = output.GetSpan(size)[..size];
            batch[..RecordBatchHeader.HeaderSize].CopyTo(target);
            short attributes = (short)((header.Attributes & ~RecordBatchHeader.CompressionCodecMask) | (int)codec | (setHorizon ? DeleteHorizonFlag : 0));
            BinaryPrimitives.WriteInt32BigEndian(target[RecordBatchHeader.BatchLengthOffset..], size - RecordBatchHeader.LogOverhead);
            BinaryPrimitives.WriteInt16BigEndian(target[RecordBatchHeader.AttributesOffset..], attributes);
            BinaryPrimitives.WriteInt64BigEndian(target[RecordBatchHeader.BaseTimestampOffset..], newBase);
            BinaryPrimitives.WriteInt32BigEndian(target[RecordBatchHeader.RecordsCountOffset..], retained);
            newBody.CopyTo(target[RecordBatchHeader.HeaderSize..]);
            BinaryPrimitives.WriteUInt32BigEndian(target[RecordBatchHeader.CrcOffset..], RecordBatchHeader.ComputeCrc(target));
            output.Advance(size);
            return Outcome.Rewritten;
        }
        finally
        {
            ArrayPool<RecordSlice>.Shared.Return(slices);
        }
    }

    private static bool IsXerial(ReadOnlySpan<byte> body) =>
        body.Length >= 8 && body[..8].SequenceEqual((ReadOnlySpan<byte>)[0x82, (byte)'S', (byte)'N', (byte)'A', (byte)'P', (byte)'P', (byte)'Y', 0]);

    private static long SaturatingAdd(long a, long b) => b > long.MaxValue - a ? long.MaxValue : a + b;
}
