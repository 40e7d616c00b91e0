using Tributary.Storage.Cleaning;
using Tributary.Storage.FileSystem;

namespace Tributary.Storage;

/// <summary>What <c>topic describe</c> shows about compaction: the dirty ratio now, when the cleaner last finished a pass, and why it skips the log (null if it does not).</summary>
public readonly record struct CleanerStatus(long FirstDirtyOffset, double DirtyRatio, long LastCleanTimeMs, long CleanableBytes, string? UncleanableReason);

/// <summary>The cleaner's side of the log: a snapshot to plan from, and the crash-safe swap of cleaned segments.</summary>
public sealed partial class PartitionLog
{
    internal const string CleanedSuffix = ".cleaned";
    internal const string SwapSuffix = ".swap";

    /// <summary>
    /// Serialises the steps that change which files make up the log outside the append path: a cleaner swap,
    /// retention and DeleteRecords. Order: <c>_swapLock</c>, then <c>_flushLock</c>, then <c>_lock</c>.
    /// </summary>
    private readonly object _swapLock = new();
    private CleanerCheckpoint.Entry? _cleanerCheckpoint;
    private bool _cleanerBroken;
    private string? _uncleanableReason;

    /// <summary>
    /// Segments the cleaner may rewrite: closed, before the high-watermark segment and wholly below the last stable
    /// offset (so every transaction they hold data of is decided; the LSO is at most the high watermark).
    /// </summary>
    internal (LogSegment[] Segments, long LogStartOffset) CleanableSnapshot()
    {
        var state = _state;
        long stable = _producers.LastStableOffset(state.HighWatermark);
        int count = 0;
        while (count < state.Segments.Length - 1 && state.Segments[count].BaseOffset < state.HwSegment.BaseOffset
            && state.Segments[count].NextOffset <= stable)
        {
            count++;
        }

        return (state.Segments[..count], state.LogStartOffset);
    }

    internal ISegmentFileSystem FileSystem => _fs;

    /// <summary>Per producer still remembered, the batch compaction must keep (see <see cref="TransactionTracker"/>).</summary>
    internal Dictionary<long, ProducerLastBatch> LastBatchesOfProducers() => _producers.LastBatches();

    /// <summary>Drops the aborted-transaction entries whose abort markers (at these offsets) the cleaner is removing; durable on return.</summary>
    internal void ForgetAbortedTransactions(IReadOnlyCollection<long> markerOffsets) => _producers.ForgetAborted(markerOffsets);

    internal bool CleanerBroken => Volatile.Read(ref _cleanerBroken) || UncleanableReason is not null;

    /// <summary>
    /// Why the cleaner skips this log (Kafka's uncleanable partition), or null: a pass failed on the log's own data, a
    /// batch it cannot read. Held in memory only, so the next start tries once more, and a deleted and re-created
    /// topic starts clean; the log itself keeps serving reads and appends.
    /// </summary>
    public string? UncleanableReason => Volatile.Read(ref _uncleanableReason);

    internal void MarkUncleanable(string reason) => Volatile.Write(ref _uncleanableReason, reason);

    internal CleanerCheckpoint.Entry CleanerCheckpointEntry
    {
        get
        {
            lock (_swapLock)
            {
                return _cleanerCheckpoint ??= CleanerCheckpoint.Read(_fs, _directory);
            }
        }
    }

    internal void WriteCleanerCheckpoint(CleanerCheckpoint.Entry entry)
    {
        lock (_swapLock)
        {
            CleanerCheckpoint.Write(_fs, _directory, entry);
            _cleanerCheckpoint = entry;
        }
    }

    /// <summary>Compaction state for describe; the dirty ratio is computed over the segments the cleaner could take now.</summary>
    public CleanerStatus GetCleanerStatus()
    {
        var entry = CleanerCheckpointEntry;
        var (segments, _) = CleanableSnapshot();
        long clean = 0, dirty = 0;
        foreach (var segment in segments)
        {
            if (segment.NextOffset <= entry.FirstDirtyOffset)
            {
                clean += segment.Size;
            }
            else
            {
                dirty += segment.Size;
            }
        }

        double ratio = clean + dirty == 0 ? 0 : (double)dirty / (clean + dirty);
        return new CleanerStatus(entry.FirstDirtyOffset, ratio, entry.LastCleanTimeMs, clean + dirty, UncleanableReason);
    }

    /// <summary>
    /// Replaces the contiguous segments <paramref name="old"/> by <paramref name="cleaned"/> (written as
    /// <c>.cleaned</c> files, fsynced, covering exactly the same offset range and ending with the batch that ends
    /// that range). The steps, each made durable by a directory fsync before the next:
    /// <list type="number">
    /// <item>rename the cleaned files to <c>.swap</c>, the log file last — its rename is the commit point: recovery
    /// completes a swap whose <c>.log.swap</c> exists and discards one that has only <c>.cleaned</c> files;</item>
    /// <item>rename the old segments' files to <c>.deleted</c> (open handles keep serving reads already under way);</item>
    /// <item>rename the <c>.swap</c> files to their final names;</item>
    /// <item>swap the segment list under the append lock (an array swap: appends and reads are not held up by IO).</item>
    /// </list>
    /// A crash at any point leaves either the old segments or the cleaned one, never both and never neither.
    /// Retention and DeleteRecords wait on <c>_swapLock</c>, so the old segments are still the log's when it commits.
    /// </summary>
    /// <returns>False when the old segments are no longer the log's (retention removed some, the log closed): nothing changed.</returns>
    internal bool ReplaceSegments(LogSegment[] old, LogSegment cleaned)
    {
        lock (_swapLock)
        {
            lock (_lock)
            {
                if (_disposed || IndexOfRun(old) < 0)
                {
                    return false;
                }

                ThrowIfOffline();
            }

            try
            {
                foreach (string extension in (string[])[LogSegment.IndexExtension, LogSegment.TimeIndexExtension, LogSegment.LogExtension])
                {
                    _fs.MoveFile(cleaned.PathOf(extension) + CleanedSuffix, cleaned.PathOf(extension) + SwapSuffix);
                }

                _fs.SyncDirectory(_directory);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Not committed unless the log's .swap rename became durable; recovery decides, and it is safe either way.
                // The files are still the old ones in memory, so the log keeps working; stop cleaning it until restart.
                Volatile.Write(ref _cleanerBroken, true);
                throw IOFailure("cleaner swap", e, $"Committing a cleaned segment in {_directory} failed: {e.Message}");
            }

            try
            {
                foreach (var segment in old)
                {
                    foreach (string extension in Extensions)
                    {
                        _fs.MoveFile(segment.PathOf(extension), segment.PathOf(extension) + LogSegment.DeletedSuffix);
                    }
                }

                _fs.SyncDirectory(_directory);
                foreach (string extension in Extensions)
                {
                    _fs.MoveFile(cleaned.PathOf(extension) + SwapSuffix, cleaned.PathOf(extension));
                }

                _fs.SyncDirectory(_directory);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Committed: the next open completes the swap. Until then the old segments keep serving from their handles.
                Volatile.Write(ref _cleanerBroken, true);
                throw IOFailure("cleaner swap", e, $"Installing a cleaned segment in {_directory} failed: {e.Message}");
            }

            long now = _time.GetUtcNow().ToUnixTimeMilliseconds();
            lock (_lock)
            {
                int index = IndexOfRun(old);
                if (index < 0)
                {
                    // Cannot happen while _swapLock excludes retention, except by Dispose, which closed everything anyway.
                    return false;
                }

                _segments = [.. _segments[..index], cleaned, .. _segments[(index + old.Length)..]];
                foreach (var segment in old)
                {
                    _rolledUnflushed.Remove(segment);
                    _pendingDeletes.Add((segment, now + _config.FileDeleteDelayMs));
                }

                PublishLocked();
            }

            return true;
        }
    }

    private int IndexOfRun(LogSegment[] run)
    {
        int index = Array.IndexOf(_segments, run[0]);
        if (index < 0 || index + run.Length > _segments.Length - 1)
        {
            return -1;
        }

        for (int i = 1; i < run.Length; i++)
        {
            if (!ReferenceEquals(_segments[index + i], run[i]))
            {
                return -1;
            }
        }

        return index;
    }

    /// <summary>
    /// Recovery of an interrupted swap, before the segments are opened: a <c>N.log.swap</c> is committed, so the
    /// segments it covers (base offsets N to the swap's last offset) go and the swap files take their names (a
    /// missing index is rebuilt by the usual recovery). <c>.cleaned</c> files and index <c>.swap</c> files without
    /// their log are an uncommitted swap and are deleted.
    /// </summary>
    internal static void RecoverInterruptedSwaps(ISegmentFileSystem fs, string directory)
    {
        var files = fs.EnumerateFiles(directory).ToList();
        bool changed = false;
        foreach (string path in files.Where(p => p.EndsWith(LogSegment.LogExtension + SwapSuffix, StringComparison.Ordinal)))
        {
            string name = Path.GetFileName(path)[..^(LogSegment.LogExtension.Length + SwapSuffix.Length)];
            if (!TryParseBaseOffset(name, out long baseOffset))
            {
                continue;
            }

            long lastOffset = baseOffset;
            using (var file = fs.OpenFile(path, create: false))
            using (var scanner = new BatchScanner(file, 0, file.Length, baseOffset, verify: true) { AllowGaps = true })
            {
                while (scanner.TryNext(out var batch))
                {
                    lastOffset = batch.LastOffset;
                }
            }

            foreach (string other in fs.EnumerateFiles(directory).ToList())
            {
                string otherName = Path.GetFileName(other);
                string extension = Path.GetExtension(otherName);
                if (extension is LogSegment.LogExtension or LogSegment.IndexExtension or LogSegment.TimeIndexExtension
                    && TryParseBaseOffset(Path.GetFileNameWithoutExtension(otherName), out long otherBase)
                    && otherBase >= baseOffset && otherBase <= lastOffset)
                {
                    fs.DeleteFile(other);
                }
            }

            foreach (string extension in (string[])[LogSegment.IndexExtension, LogSegment.TimeIndexExtension, LogSegment.LogExtension])
            {
                string final = Path.Combine(directory, LogSegment.FileName(baseOffset, extension));
                if (fs.FileExists(final + SwapSuffix))
                {
                    fs.MoveFile(final + SwapSuffix, final);
                }
            }

            changed = true;
        }

        foreach (string path in fs.EnumerateFiles(directory).ToList())
        {
            if (path.EndsWith(CleanedSuffix, StringComparison.Ordinal) || path.EndsWith(SwapSuffix, StringComparison.Ordinal))
            {
                fs.DeleteFile(path);
                changed = true;
            }
        }

        if (changed)
        {
            fs.SyncDirectory(directory);
        }
    }
}
