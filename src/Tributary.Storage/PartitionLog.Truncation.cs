namespace Tributary.Storage;

public sealed partial class PartitionLog
{
    /// <summary>
    /// Removes every record at or after <paramref name="offset"/> (Kafka's <c>Log.truncateTo</c>): a follower cutting its
    /// log back to where it diverged from the new leader's. Truncating at or past the log end changes nothing. An offset
    /// inside a batch truncates at that batch's start (a batch is never split), so the log end becomes the largest batch
    /// boundary at or below the offset. Below the log start the log is emptied and starts again at the offset (Kafka's
    /// <c>truncateFullyAndStartAt</c>).
    ///
    /// Order on disk, so that a kill -9 at any step leaves a log that opens as a prefix of the old one: the cleaner's first
    /// dirty offset is lowered to the offset when above it (redoing work is safe); the later segments
    /// are renamed to <c>.deleted</c> newest first (a crash leaves a prefix) and the directory synced; then the segment
    /// holding the offset is cut and synced with its indexes; then the epoch checkpoint drops its entries at or after the
    /// new end; then producer state is rebuilt (Kafka's approach: snapshots above the new end are deleted and the state is
    /// loaded from the newest snapshot at or below it plus a replay of the batches after it, which also rebuilds the
    /// aborted-transaction index), and the directory is synced. Everything is durable when this returns, so records above
    /// the offset never come back. A crash midway may leave more of the old log (never more than before the call), and
    /// reopening repairs the epoch checkpoint and producer state against whatever remains. An I/O failure midway turns
    /// the log read-only (its directory offline under a <see cref="LogManager"/>); the next open recovers it.
    ///
    /// Waiting durable appends are flushed first. The high watermark is clamped to the new end. Reads in flight over the
    /// removed segments finish (their files go after file.delete.delay.ms, as with retention).
    /// </summary>
    public void TruncateTo(long offset) => Truncate(offset, fully: false);

    /// <summary>
    /// Kafka's <c>truncateFullyAndStartAt</c>: removes every record and starts the log at <paramref name="offset"/>, below
    /// or above the current log end — a follower whose fetch offset the leader no longer holds (it is below the leader's
    /// log start) starts again at the leader's log start. The offset becomes the log start and the log end (persisted in
    /// <c>log-start-offset.checkpoint</c>); epochs, producer state and aborted transactions are cleared. Crash-safe and
    /// durable on return as <see cref="TruncateTo"/>: a crash midway reopens as a prefix of the old log or an empty one.
    /// </summary>
    public void TruncateFullyAndStartAt(long offset) => Truncate(offset, fully: true);

    private void Truncate(long offset, bool fully)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        lock (_swapLock)
        {
            if (!fully && offset >= LogEndOffset)
            {
                return;
            }

            FlushPending();
            lock (_flushLock)
                lock (_lock)
                {
                    ObjectDisposedException.ThrowIf(_disposed, this);
                    ThrowIfOffline();
                    if (_failed)
                    {
                        throw new StorageException(StorageError.StorageFailure, $"The log in {_directory} failed an earlier write and could not be repaired; it is read-only.");
                    }

                    if (!fully && offset >= _logEndOffset)
                    {
                        return;
                    }

                    long now = _time.GetUtcNow().ToUnixTimeMilliseconds();
                    try
                    {
                        if (fully || offset < _logStartOffset)
                        {
                            TruncateFullyLocked(offset, now);
                        }
                        else
                        {
                            TruncateLocked(offset, now);
                        }
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        // Memory and disk may now disagree (readers keep the last published state, whose files stay open):
                        // the log turns read-only, and reopening it recovers a prefix of the old log.
                        _failed = true;
                        throw IOFailure("truncate", e, $"Truncating {_directory} to offset {offset} failed: {e.Message}; the log is read-only until it is reopened.");
                    }

                    PublishLocked();
                }
        }
    }

    /// <summary>
    /// The cleaner's first dirty offset goes no further than the cut (Kafka's maybeTruncateCheckpoint): what is appended
    /// after the truncation is dirty. Written first: a crash after it only makes the cleaner redo work.
    /// </summary>
    private void ClampCleanerCheckpointLocked(long offset)
    {
        var entry = CleanerCheckpointEntry;
        if (entry.FirstDirtyOffset > offset)
        {
            WriteCleanerCheckpoint(entry with { FirstDirtyOffset = offset });
        }
    }

    private void TruncateLocked(long offset, long now)
    {
        ClampCleanerCheckpointLocked(offset);
        int keep = _segments.Length;
        while (keep > 1 && _segments[keep - 1].BaseOffset > offset)
        {
            keep--;
        }

        RemoveNewestSegmentsLocked(keep, now);
        var segment = _segments[keep - 1];
        long end = segment.TruncateFrom(offset);
        segment.FlushAll();
        _rolledUnflushed.Remove(segment);
        _active = segment;
        Interlocked.Exchange(ref _logEndOffset, end);
        _logStartOffset = Math.Min(_logStartOffset, end);
        if (_highWatermark > end)
        {
            _highWatermark = end;
            _hwSegment = segment;
            _hwPosition = segment.Size;
            _hwMaxTimestamp = segment.MaxTimestamp;
        }

        _epochs.TruncateFromEnd(end);
        ReloadProducerStateLocked();
    }

    /// <summary>
    /// Every segment goes, an empty one starts at <paramref name="offset"/>, which becomes the log start. A crash before the
    /// new segment exists reopens an empty log at the previous log-start checkpoint; nothing of the old log comes back
    /// once its segments are renamed away.
    /// </summary>
    private void TruncateFullyLocked(long offset, long now)
    {
        ClampCleanerCheckpointLocked(offset);
        // First what describes the old history: without an epoch checkpoint a crash from here rebuilds it from whatever
        // batches remain, and without snapshots producer state is replayed from them.
        _epochs.DeleteFile();
        foreach (long snapshot in ProducerStateSnapshot.List(_fs, _directory))
        {
            ProducerStateSnapshot.Delete(_fs, _directory, snapshot);
        }

        RemoveNewestSegmentsLocked(0, now);
        var fresh = LogSegment.Create(_fs, _directory, offset, now);
        _fs.SyncDirectory(_directory);
        LogStartCheckpoint.Write(_fs, _directory, offset);
        _segments = [fresh];
        _active = fresh;
        Interlocked.Exchange(ref _logEndOffset, offset);
        _logStartOffset = offset;
        _highWatermark = offset;
        _hwSegment = fresh;
        _hwPosition = 0;
        _hwMaxTimestamp = -1;
        _epochs.Clear();
        ReloadProducerStateLocked();
        _producers.ForgetAbortedBelow(offset);
    }

    /// <summary>
    /// Renames the segments from index <paramref name="keep"/> on to <c>.deleted</c>, newest first and each segment's log
    /// file first (recovery drops index files without a log), then syncs the directory. Their files are deleted after
    /// file.delete.delay.ms, or by the next open.
    /// </summary>
    private void RemoveNewestSegmentsLocked(int keep, long now)
    {
        if (keep >= _segments.Length)
        {
            return;
        }

        for (int i = _segments.Length - 1; i >= keep; i--)
        {
            var segment = _segments[i];
            foreach (string extension in Extensions)
            {
                string path = segment.PathOf(extension);
                _fs.MoveFile(path, path + LogSegment.DeletedSuffix);
            }

            _rolledUnflushed.Remove(segment);
            _pendingDeletes.Add((segment, now + _config.FileDeleteDelayMs));
        }

        _fs.SyncDirectory(_directory);
        _segments = _segments[..keep];
    }

    /// <summary>Producer state and the aborted-transaction index rebuilt for the truncated log; snapshot deletions made durable.</summary>
    private void ReloadProducerStateLocked()
    {
        var old = _producers;
        long expirationMs = old.ExpirationMs;
        old.Dispose();
        var reloaded = ProducerStateManager.Load(_fs, _directory, _segments, _logEndOffset);
        reloaded.ExpirationMs = expirationMs;
        _producers = reloaded;
        _fs.SyncDirectory(_directory);
    }
}
