using System.Buffers;
using System.Buffers.Binary;
using Tributary.Protocol.Records;

namespace Tributary.Storage;

public sealed partial class PartitionLog
{
    // Bytes of a batch header needed to know its base offset, size and last offset.
    private const int OffsetsHeaderSize = RecordBatchHeader.LastOffsetDeltaOffset + 4;

    /// <summary>
    /// A read_committed read: the batches below <paramref name="lastStableOffset"/> (as <see cref="Read"/>) and the
    /// aborted transactions that begin within them, which the consumer must drop. The aborted transactions are taken
    /// before the batches are read: retention or DeleteRecords running in between may forget an abort whose records
    /// the read still returns, and those records would then pass as committed.
    /// </summary>
    public FetchSlice ReadCommitted(long offset, int maxBytes, long lastStableOffset, out IReadOnlyList<AbortedTxn> aborted, bool minOneBatch = true)
    {
        ThrowIfOffline();
        var candidates = AbortedTransactions(offset, lastStableOffset);
        var slice = Read(offset, maxBytes, lastStableOffset, minOneBatch);
        aborted = candidates.Count == 0 || slice.IsEmpty ? [] : [.. candidates.Where(a => a.FirstOffset < slice.NextOffset)];
        return slice;
    }

    /// <summary>
    /// Copies whole batches, starting with the one that contains <paramref name="offset"/>, into a pooled
    /// buffer: at most <paramref name="maxBytes"/>, but the whole first batch even when larger if
    /// <paramref name="minOneBatch"/> (KIP-74; otherwise nothing is read when it does not fit), and only batches
    /// below the high watermark and starting below <paramref name="maxOffsetExclusive"/> when given (a bound on
    /// a batch boundary, as the last stable offset is, cuts exactly). Reads within one
    /// segment; no per-record work: the offset index gives a batch boundary, a few header reads find the
    /// batch, one pread copies the data.
    /// </summary>
    /// <exception cref="StorageException">OffsetOutOfRange when offset is below the log start or above the high watermark.</exception>
    public FetchSlice Read(long offset, int maxBytes, long? maxOffsetExclusive = null, bool minOneBatch = true)
    {
        ThrowIfOffline();
        try
        {
            return ReadCore(offset, maxBytes, maxOffsetExclusive, minOneBatch);
        }
        catch (ObjectDisposedException e)
        {
            if (Volatile.Read(ref _closed))
            {
                throw new StorageException(StorageError.StorageFailure, $"The log in {_directory} is closed.", e);
            }

            // The segment was deleted (retention) and closed under this read: its offsets are gone.
            throw new StorageException(StorageError.OffsetOutOfRange, $"Offset {offset} was removed from {_directory} during the read.", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw IOFailure("read", e, $"Reading {_directory} failed: {e.Message}");
        }
    }

    private FetchSlice ReadCore(long offset, int maxBytes, long? maxOffsetExclusive, bool minOneBatch)
    {
        var state = _state;
        if (offset < state.LogStartOffset || offset > state.HighWatermark)
        {
            throw new StorageException(StorageError.OffsetOutOfRange,
                $"Offset {offset} is outside [{state.LogStartOffset}, {state.HighWatermark}] in {_directory}.");
        }

        long upper = Math.Min(state.HighWatermark, maxOffsetExclusive ?? long.MaxValue);
        var segments = state.Segments;
        Span<byte> header = stackalloc byte[OffsetsHeaderSize];
        for (int i = FindSegment(segments, offset); i < segments.Length && offset < upper; i++)
        {
            var segment = segments[i];
            long limit = state.ReadableLimit(segment);
            if (limit == 0)
            {
                break;
            }

            long position = offset > segment.BaseOffset ? segment.OffsetIndex.FloorPosition(offset - segment.BaseOffset) : 0;
            while (position + OffsetsHeaderSize <= limit)
            {
                if (segment.Log.Read(position, header) < OffsetsHeaderSize)
                {
                    break;
                }

                long baseOffset = BinaryPrimitives.ReadInt64BigEndian(header);
                int size = RecordBatchHeader.ReadTotalSize(header);
                long lastOffset = baseOffset + BinaryPrimitives.ReadInt32BigEndian(header[RecordBatchHeader.LastOffsetDeltaOffset..]);
                if (lastOffset >= offset)
                {
                    return baseOffset >= upper || (!minOneBatch && size > maxBytes) ? Empty(state) : CopyBatches(segment, position, size, limit, upper, maxBytes, state);
                }

                position += size;
            }
        }

        return Empty(state);
    }

    private static FetchSlice Empty(ReadState state) => new(null, 0, -1, -1, state.HighWatermark, state.LogStartOffset);

    private static FetchSlice CopyBatches(LogSegment segment, long position, int firstSize, long limit, long upper, int maxBytes, ReadState state)
    {
        int length = (int)Math.Min(limit - position, Math.Max(maxBytes, firstSize));
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        int read;
        try
        {
            read = segment.Log.Read(position, buffer.AsSpan(0, length));
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }

        int end = 0;
        long nextOffset = -1;
        while (read - end >= OffsetsHeaderSize)
        {
            var batch = buffer.AsSpan(end, read - end);
            int size = RecordBatchHeader.ReadTotalSize(batch);
            long baseOffset = BinaryPrimitives.ReadInt64BigEndian(batch);
            if (size > batch.Length || baseOffset >= upper)
            {
                break;
            }

            nextOffset = baseOffset + BinaryPrimitives.ReadInt32BigEndian(batch[RecordBatchHeader.LastOffsetDeltaOffset..]) + 1;
            end += size;
        }

        if (end == 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            return Empty(state);
        }

        return new FetchSlice(buffer, end, BinaryPrimitives.ReadInt64BigEndian(buffer), nextOffset, state.HighWatermark, state.LogStartOffset);
    }

    /// <summary>Index of the last segment whose base offset is ≤ offset (0 when none).</summary>
    private static int FindSegment(LogSegment[] segments, long offset)
    {
        int lo = 0, hi = segments.Length - 1, found = 0;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (segments[mid].BaseOffset <= offset)
            {
                found = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return found;
    }

    /// <summary>
    /// ListOffsets by timestamp: the first record (by offset, at or after the log start, below the high
    /// watermark) whose timestamp is ≥ <paramref name="timestamp"/>. Segments whose max timestamp is smaller
    /// are skipped; in the first candidate segment the time index gives the batch to start from, batch headers
    /// are walked to the first batch whose max timestamp qualifies, and that batch's records are decoded.
    /// </summary>
    public TimestampLookup FindOffsetByTimestamp(long timestamp)
    {
        ThrowIfOffline();
        try
        {
            return FindOffsetByTimestampCore(timestamp);
        }
        catch (ObjectDisposedException)
        {
            return FindOffsetByTimestampCore(timestamp); // a segment went away under us: retry on the new snapshot
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw IOFailure("read", e, $"Reading {_directory} failed: {e.Message}");
        }
        catch (InvalidRecordException e)
        {
            throw new StorageException(StorageError.CorruptMessage, $"A stored batch in {_directory} cannot be decoded: {e.Message}", e);
        }
    }

    private TimestampLookup FindOffsetByTimestampCore(long timestamp)
    {
        var state = _state;
        foreach (var segment in state.Segments)
        {
            long limit = state.ReadableLimit(segment);
            if (limit == 0)
            {
                break;
            }

            if (state.MaxTimestampOf(segment) < timestamp || segment.NextOffset <= state.LogStartOffset)
            {
                continue;
            }

            int startRelative = segment.TimeIndex.StartFor(timestamp);
            long position = segment.OffsetIndex.FloorPosition(startRelative);
            var found = ScanForTimestamp(segment, position, limit, timestamp, state.LogStartOffset, CompressionCodecs.MaxDecompressedBytes(_config.MaxMessageBytes));
            if (found.Offset >= 0)
            {
                return found;
            }
        }

        return TimestampLookup.None;
    }

    /// <summary>ListOffsets MAX_TIMESTAMP: the first record carrying the largest timestamp below the high watermark.</summary>
    public TimestampLookup FindMaxTimestamp()
    {
        var state = _state;
        long max = -1;
        foreach (var segment in state.Segments)
        {
            if (state.ReadableLimit(segment) == 0)
            {
                break;
            }

            if (segment.NextOffset > state.LogStartOffset)
            {
                max = Math.Max(max, state.MaxTimestampOf(segment));
            }
        }

        return max < 0 ? TimestampLookup.None : FindOffsetByTimestamp(max);
    }

    private static TimestampLookup ScanForTimestamp(LogSegment segment, long position, long limit, long timestamp, long logStartOffset, int maxDecompressedBytes)
    {
        using var scanner = new BatchScanner(segment.Log, position, limit, 0, verify: false);
        while (scanner.TryNext(out var batch))
        {
            if (batch.MaxTimestamp < timestamp || batch.LastOffset < logStartOffset)
            {
                continue;
            }

            if (RecordReader.TryFindFirstAtOrAfter(scanner.Bytes(batch), timestamp, logStartOffset, maxDecompressedBytes, out var offset, out var found))
            {
                return new TimestampLookup(offset, found);
            }
        }

        return TimestampLookup.None;
    }
}
