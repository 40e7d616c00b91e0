using Tributary.Storage.FileSystem;

namespace Tributary.Storage;

/// <summary>
/// One segment: <c>NNNNNNNNNNNNNNNNNNNN.log</c> (record batches exactly as stored, back to back) with its
/// <see cref="OffsetIndex"/> (<c>.index</c>) and <see cref="TimeIndex"/> (<c>.timeindex</c>), named by the
/// 20-digit base offset. Only the active (last) segment is written; writes happen under the partition's
/// append lock. A closed segment never changes again until it is deleted whole.
/// </summary>
internal sealed class LogSegment : IDisposable
{
    public const string LogExtension = ".log";
    public const string IndexExtension = ".index";
    public const string TimeIndexExtension = ".timeindex";
    public const string DeletedSuffix = ".deleted";

    private long _bytesSinceIndexEntry;

    private LogSegment(string directory, long baseOffset, ISegmentFile log, OffsetIndex offsetIndex, TimeIndex timeIndex)
    {
        Directory = directory;
        BaseOffset = baseOffset;
        Log = log;
        OffsetIndex = offsetIndex;
        TimeIndex = timeIndex;
        NextOffset = baseOffset;
        LastBatchBaseOffset = baseOffset;
    }

    public string Directory { get; }
    public long BaseOffset { get; }
    public ISegmentFile Log { get; }
    public OffsetIndex OffsetIndex { get; }
    public TimeIndex TimeIndex { get; }
    /// <summary>Bytes of whole batches in the log file.</summary>
    public long Size { get; private set; }
    /// <summary>Offset after the last batch; BaseOffset when empty.</summary>
    public long NextOffset { get; private set; }
    public long LastBatchBaseOffset { get; private set; }
    /// <summary>Largest batch max timestamp, -1 when empty.</summary>
    public long MaxTimestamp { get; private set; } = -1;
    /// <summary>Wall clock (ms) when the segment was created or reopened: the start of its segment.ms age.</summary>
    public long CreatedMs { get; set; }
    /// <summary>Wall clock (ms) of the last append: the retention fallback when batches carry no timestamps.</summary>
    public long LastAppendMs { get; set; }

    public static string FileName(long baseOffset, string extension) => $"{baseOffset:D20}{extension}";

    public string PathOf(string extension) => System.IO.Path.Combine(Directory, FileName(BaseOffset, extension));

    /// <param name="suffix">Appended to every file name: the cleaner writes <c>.cleaned</c> segments and renames them into place.</param>
    public static LogSegment Create(ISegmentFileSystem fs, string directory, long baseOffset, long nowMs, string suffix = "")
    {
        var segment = OpenFiles(fs, directory, baseOffset, suffix);
        segment.Log.SetLength(0);
        segment.OffsetIndex.TruncateTo(0);
        segment.TimeIndex.TruncateTo(0);
        segment.CreatedMs = nowMs;
        segment.LastAppendMs = nowMs;
        return segment;
    }

    /// <summary>
    /// Opens an existing segment and makes it consistent. The active segment, and any segment whose indexes
    /// do not fit its log or whose tail (from the last index entry on) fails validation, is scanned in full
    /// with CRC checks, truncated at the first bad or incomplete batch, and gets rebuilt indexes.
    /// A closed segment with plausible indexes only has its tail checked, so opening a large log stays cheap.
    /// </summary>
    /// <returns>The segment and whether its log was truncated (the caller must then drop later segments).</returns>
    public static (LogSegment Segment, bool Truncated) Recover(ISegmentFileSystem fs, string directory, long baseOffset, bool isActive, int indexIntervalBytes, long nowMs)
    {
        var segment = OpenFiles(fs, directory, baseOffset);
        segment.CreatedMs = nowMs;
        segment.LastAppendMs = fs.GetLastWriteTimeUtc(segment.Log.Path).ToUnixTimeMilliseconds();
        long logSize = segment.Log.Length;
        if (!isActive && segment.TryRecoverTail(logSize, indexIntervalBytes))
        {
            return (segment, false);
        }

        bool truncated = segment.RecoverFull(logSize, indexIntervalBytes, allowGaps: !isActive);
        return (segment, truncated);
    }

    private static LogSegment OpenFiles(ISegmentFileSystem fs, string directory, long baseOffset, string suffix = "")
    {
        ISegmentFile? log = null, index = null, timeIndex = null;
        try
        {
            log = fs.OpenFile(System.IO.Path.Combine(directory, FileName(baseOffset, LogExtension) + suffix), create: true);
            index = fs.OpenFile(System.IO.Path.Combine(directory, FileName(baseOffset, IndexExtension) + suffix), create: true);
            timeIndex = fs.OpenFile(System.IO.Path.Combine(directory, FileName(baseOffset, TimeIndexExtension) + suffix), create: true);
            return new LogSegment(directory, baseOffset, log, new OffsetIndex(index), new TimeIndex(timeIndex));
        }
        catch
        {
            log?.Dispose();
            index?.Dispose();
            timeIndex?.Dispose();
            throw;
        }
    }

    private bool TryRecoverTail(long logSize, int indexIntervalBytes)
    {
        if (!OffsetIndex.TryLoad(logSize) || !TimeIndex.TryLoad(int.MaxValue))
        {
            return false;
        }

        var (lastRelative, lastPosition) = OffsetIndex.Last;
        long start = OffsetIndex.Count == 0 ? 0 : lastPosition;
        long minOffset = OffsetIndex.Count == 0 ? BaseOffset : BaseOffset + lastRelative;
        long maxTimestamp = TimeIndex.LastTimestamp;
        bool sawBatch = false;
        using (var scanner = new BatchScanner(Log, start, logSize, minOffset, verify: true) { AllowGaps = true })
        {
            while (scanner.TryNext(out var batch))
            {
                if (!sawBatch && OffsetIndex.Count > 0 && batch.BaseOffset != minOffset)
                {
                    return false; // the last index entry does not point at the batch it names
                }

                if (batch.Position > 0 && batch.Position - start >= indexIntervalBytes)
                {
                    return false; // the writer would have indexed this batch: entries are missing
                }

                sawBatch = true;
                NextOffset = batch.LastOffset + 1;
                LastBatchBaseOffset = batch.BaseOffset;
                maxTimestamp = Math.Max(maxTimestamp, batch.MaxTimestamp);
                _bytesSinceIndexEntry += batch.Size;
            }

            if (scanner.StoppedEarly || (OffsetIndex.Count > 0 && !sawBatch))
            {
                return false;
            }
        }

        if (TimeIndex.Count > 0 && BaseOffset + TimeIndex.StartFor(long.MaxValue) >= NextOffset && NextOffset > BaseOffset)
        {
            return false; // a time index entry names an offset past the log
        }

        Size = logSize;
        MaxTimestamp = maxTimestamp;
        return true;
    }

    private bool RecoverFull(long logSize, int indexIntervalBytes, bool allowGaps)
    {
        OffsetIndex.Clear();
        TimeIndex.Clear();
        Size = 0;
        NextOffset = BaseOffset;
        LastBatchBaseOffset = BaseOffset;
        MaxTimestamp = -1;
        _bytesSinceIndexEntry = 0;
        long validEnd;
        using (var scanner = new BatchScanner(Log, 0, logSize, BaseOffset, verify: true) { AllowGaps = allowGaps })
        {
            while (scanner.TryNext(out var batch))
            {
                if (batch.LastOffset - BaseOffset > int.MaxValue)
                {
                    break;
                }

                OnBatchAppended(batch.Position, batch.Size, batch.BaseOffset, batch.LastOffset, batch.MaxTimestamp, indexIntervalBytes, persist: false);
            }

            validEnd = Size;
        }

        bool truncated = validEnd < logSize;
        if (truncated)
        {
            Log.SetLength(validEnd);
        }

        OffsetIndex.WriteAll();
        TimeIndex.WriteAll();
        return truncated;
    }

    /// <summary>Everything an append may change, to undo a failed one.</summary>
    public readonly record struct Mark(long Size, long NextOffset, long LastBatchBaseOffset, long MaxTimestamp, long BytesSinceIndexEntry, int OffsetEntries, int TimeEntries);

    public Mark GetMark() => new(Size, NextOffset, LastBatchBaseOffset, MaxTimestamp, _bytesSinceIndexEntry, OffsetIndex.Count, TimeIndex.Count);

    /// <summary>Undoes appends after <paramref name="mark"/>: memory first, then the files (which may throw).</summary>
    public void Rollback(Mark mark)
    {
        Size = mark.Size;
        NextOffset = mark.NextOffset;
        LastBatchBaseOffset = mark.LastBatchBaseOffset;
        MaxTimestamp = mark.MaxTimestamp;
        _bytesSinceIndexEntry = mark.BytesSinceIndexEntry;
        OffsetIndex.TruncateTo(mark.OffsetEntries);
        TimeIndex.TruncateTo(mark.TimeEntries);
        Log.SetLength(mark.Size);
    }

    /// <summary>
    /// Accounts for one batch written at <paramref name="position"/>: an offset index entry (and a time index
    /// entry when the max timestamp grew) once index.interval.bytes have passed since the last entry.
    /// </summary>
    public void OnBatchAppended(long position, int size, long baseOffset, long lastOffset, long maxTimestamp, int indexIntervalBytes, bool persist)
    {
        if (maxTimestamp > MaxTimestamp)
        {
            MaxTimestamp = maxTimestamp;
        }

        if (_bytesSinceIndexEntry >= indexIntervalBytes && position > 0)
        {
            int relative = (int)(baseOffset - BaseOffset);
            OffsetIndex.Append(relative, (int)position, persist);
            if (MaxTimestamp > TimeIndex.LastTimestamp)
            {
                TimeIndex.Append(MaxTimestamp, relative, persist);
            }

            _bytesSinceIndexEntry = 0;
        }

        _bytesSinceIndexEntry += size;
        Size = position + size;
        NextOffset = lastOffset + 1;
        LastBatchBaseOffset = baseOffset;
    }

    /// <summary>
    /// Removes every batch whose last offset is at or after <paramref name="offset"/> (Kafka's <c>LogSegment.truncateTo</c>):
    /// the batch holding the offset goes whole, so the segment ends at a batch boundary at or below it. Index entries naming
    /// removed batches go; the tail from the last remaining offset-index entry is read again to find the new last batch and
    /// largest timestamp (the time index's last remaining entry holds the largest timestamp up to that entry's batch).
    /// The caller syncs the files.
    /// </summary>
    /// <returns>The segment's new next offset.</returns>
    public long TruncateFrom(long offset)
    {
        if (offset >= NextOffset)
        {
            return NextOffset;
        }

        long cut = 0;
        long removedBase = BaseOffset;
        if (offset > BaseOffset)
        {
            long from = OffsetIndex.FloorPosition(offset - BaseOffset);
            cut = Size;
            using var scanner = new BatchScanner(Log, from, Size, 0, verify: false) { LazyBodies = true };
            while (scanner.TryNext(out var batch))
            {
                if (batch.LastOffset >= offset)
                {
                    cut = batch.Position;
                    removedBase = batch.BaseOffset;
                    break;
                }
            }
        }

        int offsetEntries = OffsetIndex.Count;
        while (offsetEntries > 0 && OffsetIndex[offsetEntries - 1].Position >= cut)
        {
            offsetEntries--;
        }

        int timeEntries = TimeIndex.Count;
        while (timeEntries > 0 && BaseOffset + TimeIndex[timeEntries - 1].RelativeOffset >= removedBase)
        {
            timeEntries--;
        }

        OffsetIndex.TruncateTo(offsetEntries);
        TimeIndex.TruncateTo(timeEntries);
        long tailStart = offsetEntries == 0 ? 0 : OffsetIndex[offsetEntries - 1].Position;
        NextOffset = BaseOffset;
        LastBatchBaseOffset = BaseOffset;
        MaxTimestamp = TimeIndex.LastTimestamp;
        using (var scanner = new BatchScanner(Log, tailStart, cut, 0, verify: false) { LazyBodies = true })
        {
            while (scanner.TryNext(out var batch))
            {
                NextOffset = batch.LastOffset + 1;
                LastBatchBaseOffset = batch.BaseOffset;
                MaxTimestamp = Math.Max(MaxTimestamp, batch.MaxTimestamp);
            }
        }

        _bytesSinceIndexEntry = cut - tailStart;
        Size = cut;
        Log.SetLength(cut);
        return NextOffset;
    }

    /// <summary>Called when the segment stops being active: a final time index entry covering the whole segment.</summary>
    public void Close()
    {
        if (Size > 0 && MaxTimestamp > TimeIndex.LastTimestamp)
        {
            TimeIndex.Append(MaxTimestamp, (int)(LastBatchBaseOffset - BaseOffset));
        }
    }

    /// <summary>fsync of the log and both indexes (closed segments).</summary>
    public void FlushAll()
    {
        Log.Flush();
        OffsetIndex.File.Flush();
        TimeIndex.File.Flush();
    }

    public void Dispose()
    {
        Log.Dispose();
        OffsetIndex.Dispose();
        TimeIndex.Dispose();
    }
}
