namespace Tributary.Storage;

public sealed partial class PartitionLog
{
    /// <summary>
    /// DeleteRecords: moves the log start offset up to <paramref name="offset"/> (persisted before returning,
    /// so it survives a restart) and removes the closed segments that lie wholly below it.
    /// </summary>
    /// <exception cref="StorageException">OffsetOutOfRange when offset is above the high watermark.</exception>
    public void DeleteRecordsBefore(long offset)
    {
        lock (_swapLock)
            lock (_lock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                ThrowIfOffline();
                if (offset > _highWatermark || offset < 0)
                {
                    throw new StorageException(StorageError.OffsetOutOfRange, $"Cannot delete records before {offset}: the high watermark is {_highWatermark}.");
                }

                if (offset <= _logStartOffset)
                {
                    return;
                }

                try
                {
                    LogStartCheckpoint.Write(_fs, _directory, offset);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw IOFailure("log start checkpoint", e, $"Writing the log start checkpoint in {_directory} failed: {e.Message}");
                }

                _logStartOffset = offset;
                int count = 0;
                while (count < _segments.Length - 1 && _segments[count + 1].BaseOffset <= offset)
                {
                    count++;
                }

                RemoveOldestSegmentsLocked(count, _time.GetUtcNow().ToUnixTimeMilliseconds(), _config);
                PublishLocked();
            }

        ForgetAbortedBelowLogStart();
    }

    /// <summary>
    /// Outside the append lock: drops the aborted-transaction entries the log start has passed, and moves the epoch cache's
    /// start up to the log start (Kafka's truncateFromStart).
    /// </summary>
    private void ForgetAbortedBelowLogStart()
    {
        try
        {
            _epochs.TruncateFromStart(LogStartOffset);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The file keeps entries below the log start until the next change rewrites it; the directory goes offline.
            if (_logDir is null) _diagnostics?.Report("leader-epoch checkpoint", _directory, e);
            else ReportIOFailure("leader-epoch checkpoint", e);
        }

        try
        {
            _producers.ForgetAbortedBelow(LogStartOffset);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Only the file keeps the stale entries, which no fetch asks for; the next advance retries. Still a disk
            // failure: the directory goes offline (a standalone log only reports it).
            if (_logDir is null) _diagnostics?.Report("aborted-transaction index trim", _directory, e);
            else ReportIOFailure("aborted-transaction index trim", e);
        }
    }

    /// <summary>
    /// One retention pass: rolls the active segment when older than segment.ms, then removes the oldest closed
    /// segments while any of these holds: their largest timestamp is older than retention.ms, the partition
    /// stays at or above retention.bytes without them, or they lie below the log start offset. Only a prefix
    /// of whole closed segments, all below the high watermark, is removed; the active segment never. Time and size
    /// apply only when cleanup.policy includes delete. Files
    /// are renamed to <c>.deleted</c> under the lock (a metadata operation) and removed after
    /// file.delete.delay.ms, so reads already holding the segment finish undisturbed.
    /// </summary>
    /// <returns>Segments removed in this pass.</returns>
    public int EnforceRetention()
    {
        var config = _config;
        long now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        int count = 0;
        bool rolled = false;
        lock (_swapLock)
            lock (_lock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                ThrowIfOffline();
                if (_active.Size > 0 && now - _active.CreatedMs >= config.SegmentMs)
                {
                    RollLocked(now);
                    rolled = true;
                }

                long total = 0;
                foreach (var segment in _segments)
                {
                    total += segment.Size;
                }

                while (count < _segments.Length - 1)
                {
                    var segment = _segments[count];
                    if (segment.NextOffset > _highWatermark)
                    {
                        break;
                    }

                    long largest = segment.MaxTimestamp >= 0 ? segment.MaxTimestamp : segment.LastAppendMs;
                    // cleanup.policy=compact alone keeps everything the cleaner keeps; "compact,delete" does both.
                    bool expired = config.CleanupDelete && config.RetentionMs >= 0 && now - largest > config.RetentionMs;
                    bool oversize = config.CleanupDelete && config.RetentionBytes >= 0 && total - segment.Size >= config.RetentionBytes;
                    bool belowStart = _segments[count + 1].BaseOffset <= _logStartOffset;
                    if (!expired && !oversize && !belowStart)
                    {
                        break;
                    }

                    total -= segment.Size;
                    count++;
                }

                RemoveOldestSegmentsLocked(count, now, config);
            }

        if (rolled)
        {
            ScheduleFlush();
        }

        if (count > 0)
        {
            ForgetAbortedBelowLogStart();
        }

        DeleteDueSegments(now);
        return count;
    }

    private void RemoveOldestSegmentsLocked(int count, long now, LogConfig config)
    {
        if (count == 0)
        {
            return;
        }

        var removed = _segments[..count];
        _segments = _segments[count..];
        _logStartOffset = Math.Max(_logStartOffset, _segments[0].BaseOffset);
        foreach (var segment in removed)
        {
            _rolledUnflushed.Remove(segment);
            foreach (string extension in Extensions)
            {
                string path = segment.PathOf(extension);
                try
                {
                    _fs.MoveFile(path, path + LogSegment.DeletedSuffix);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // Reopening deletes whatever is left; the segment is gone from the log either way. The directory goes offline.
                    ReportIOFailure("retention rename", e);
                }
            }

            _pendingDeletes.Add((segment, now + config.FileDeleteDelayMs));
        }

        PublishLocked();
    }

    private static readonly string[] Extensions = [LogSegment.LogExtension, LogSegment.IndexExtension, LogSegment.TimeIndexExtension];

    private void DeleteDueSegments(long now)
    {
        List<LogSegment>? due = null;
        lock (_lock)
        {
            for (int i = _pendingDeletes.Count - 1; i >= 0; i--)
            {
                if (_pendingDeletes[i].DueMs <= now)
                {
                    (due ??= []).Add(_pendingDeletes[i].Segment);
                    _pendingDeletes.RemoveAt(i);
                }
            }
        }

        if (due is null)
        {
            return;
        }

        lock (_flushLock)
        {
            foreach (var segment in due)
            {
                DeleteSegmentFiles(segment);
            }
        }
    }

    private void DeleteSegmentFiles(LogSegment segment)
    {
        segment.Dispose();
        foreach (string extension in Extensions)
        {
            try
            {
                _fs.DeleteFile(segment.PathOf(extension) + LogSegment.DeletedSuffix);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Left for the next open, which deletes .deleted files. The directory goes offline.
                ReportIOFailure("segment delete", e);
            }
        }
    }
}
