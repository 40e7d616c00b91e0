using Tributary.Protocol.Records;
using Tributary.Storage.FileSystem;

namespace Tributary.Storage;

/// <summary>
/// The log of one partition: an ordered list of <see cref="LogSegment"/>s, the last one active.
///
/// Append: validate the request's batches (headers, CRCs, and that each holds the records it announces; see
/// <see cref="RecordBatchValidator"/>: nothing is stored or counted from a batch that lies), then under the append
/// lock assign offsets by patching each batch's base offset in the caller's buffer (outside the CRC), write
/// all bytes with one pwrite at the end of the active segment, and add index entries. Durable policy: the
/// append then awaits its <see cref="FlushGeneration"/>, completed by <see cref="LogFlusher"/> after an
/// fdatasync (group commit). PageCache policy: the high watermark moves at once.
///
/// Invariants: offsets are dense and increasing across segments; bytes below the high watermark are
/// synced (Durable) and never change until their segment is deleted whole; a failed write is truncated
/// away before the lock is released, so the log on disk is always a sequence of whole batches.
///
/// Readers never take the append lock: they read an immutable <see cref="ReadState"/> snapshot (segments,
/// high watermark and the file position it corresponds to), published with a volatile write whenever
/// one of those changes. Lock order: <c>_flushLock</c> before <c>_lock</c>.
/// </summary>
public sealed partial class PartitionLog : IDisposable
{
    private readonly object _lock = new();
    private readonly object _flushLock = new();
    private readonly ISegmentFileSystem _fs;
    private readonly TimeProvider _time;
    private readonly LogFlusher _flusher;
    private StorageDiagnostics? _diagnostics;
    private LogDirectory? _logDir;
    private readonly string _directory;
    private volatile LogConfig _config;
    private volatile ReadState _state;

    // Guarded by _lock.
    private LogSegment[] _segments;
    private LogSegment _active;
    private long _logEndOffset;
    private long _logStartOffset;
    private long _highWatermark;
    private LogSegment _hwSegment;
    private long _hwPosition;
    private long _hwMaxTimestamp;
    private FlushGeneration? _pending;
    private readonly List<LogSegment> _rolledUnflushed = [];
    private readonly List<(LogSegment Segment, long DueMs)> _pendingDeletes = [];
    private bool _disposed;
    private bool _closed;
    private bool _failed;
    private int _flushScheduled;

    private PartitionLog(string directory, LogConfig config, TimeProvider time, ISegmentFileSystem fs, LogFlusher flusher,
        LogSegment[] segments, long logStartOffset, LeaderEpochCache epochs)
    {
        _epochs = epochs;
        _directory = directory;
        _config = config;
        _time = time;
        _fs = fs;
        _flusher = flusher;
        _segments = segments;
        _active = segments[^1];
        _logEndOffset = _active.NextOffset;
        _logStartOffset = Math.Min(logStartOffset, _logEndOffset);
        _highWatermark = _logEndOffset;
        _hwSegment = _active;
        _hwPosition = _active.Size;
        _hwMaxTimestamp = _active.MaxTimestamp;
        _state = null!;
        PublishLocked();
        _producers = ProducerStateManager.Load(fs, directory, segments, _logEndOffset); // PartitionLog.Producers.cs
        ForgetAbortedBelowLogStart();
    }

    /// <summary>Raised (outside locks, on the flusher thread or the appending thread) whenever the high watermark moves.</summary>
    public event Action<PartitionLog>? HighWatermarkAdvanced;

    public string Directory => _directory;

    /// <summary>The data directory holding this log (null for a log opened without a <see cref="LogManager"/>).</summary>
    public LogDirectory? LogDirectory => _logDir;

    /// <summary>True once the log's data directory went offline: every operation then fails with <see cref="StorageError.StorageFailure"/>.</summary>
    public bool IsOffline => _logDir?.IsOffline == true;

    /// <summary>Throws StorageFailure without touching the disk when the log's directory is offline.</summary>
    internal void ThrowIfOffline() => _logDir?.ThrowIfOffline(_directory);

    /// <summary>
    /// Where every I/O failure on this log's files goes: through its directory's <see cref="LogDirectory.HandleIOException"/>
    /// (the directory goes offline) when the log belongs to a <see cref="LogManager"/>; a standalone log keeps the
    /// local handling (<paramref name="message"/>). Returns the exception to throw.
    /// </summary>
    private StorageException IOFailure(string operation, Exception e, string message) =>
        _logDir?.HandleIOException(operation, _directory, e) ?? new StorageException(StorageError.StorageFailure, message, e);

    /// <summary>An I/O failure the caller goes on from (cleanup that is retried at the next open): the directory still goes offline.</summary>
    internal void ReportIOFailure(string operation, Exception e) => _logDir?.HandleIOException(operation, _directory, e);

    /// <summary>Fails the appends waiting for a sync (the directory went offline; no sync will come).</summary>
    internal void FailPending(Exception error)
    {
        FlushGeneration? pending;
        lock (_lock)
        {
            pending = _pending;
            _pending = null;
        }

        pending?.Fail(error);
    }

    /// <summary>Effective configuration; may be replaced at runtime (AlterConfigs); applies to the next append or retention pass.</summary>
    public LogConfig Config
    {
        get => _config;
        set => _config = value ?? throw new ArgumentNullException(nameof(value));
    }

    public long LogStartOffset => _state.LogStartOffset;
    public long LogEndOffset => Interlocked.Read(ref _logEndOffset);
    public long HighWatermark => _state.HighWatermark;

    public long SizeInBytes
    {
        get
        {
            long total = 0;
            foreach (var segment in _state.Segments)
            {
                total += segment.Size;
            }

            return total;
        }
    }

    public int SegmentCount => _state.Segments.Length;

    /// <summary>
    /// Each segment's base offset and largest record timestamp, oldest first: what ListOffsets v0 answers with (Kafka
    /// lists segment base offsets by the segments' modification times, which the largest timestamp stands for here).
    /// </summary>
    public IReadOnlyList<(long BaseOffset, long MaxTimestamp)> SegmentStarts()
    {
        var state = _state;
        return [.. state.Segments.Select(segment => (segment.BaseOffset, state.MaxTimestampOf(segment)))];
    }

    /// <summary>
    /// Appends one produce request's batches (the buffer is owned by the call and its base offsets are
    /// overwritten). Completes when the bytes are acknowledged under the flush policy. Errors come back as
    /// a faulted task carrying a <see cref="StorageException"/>.
    /// </summary>
    public ValueTask<AppendResult> AppendAsync(Memory<byte> batches, CancellationToken ct = default) => AppendAsync(batches, allowZstd: true, ct);

    /// <param name="allowZstd">False for a Produce request below v7, where Kafka answers UNSUPPORTED_COMPRESSION_TYPE for zstd.</param>
    public ValueTask<AppendResult> AppendAsync(Memory<byte> batches, bool allowZstd, CancellationToken ct = default) =>
        AppendAsync(batches, allowZstd, AppendOrigin.Client, ct);

    /// <summary>An append by <paramref name="origin"/> (<see cref="AppendOrigin.Coordinator"/>: a coordinator's own batches).</summary>
    public ValueTask<AppendResult> AppendAsync(Memory<byte> batches, AppendOrigin origin, CancellationToken ct = default) =>
        AppendAsync(batches, allowZstd: true, origin, ct);

    private ValueTask<AppendResult> AppendAsync(Memory<byte> batches, bool allowZstd, AppendOrigin origin, CancellationToken ct)
    {
        if (_logDir is { IsOffline: true } offline)
        {
            return ValueTask.FromException<AppendResult>(offline.Offline(_directory));
        }

        var config = _config;
        var error = RecordBatchValidator.Validate(batches.Span, config.MaxMessageBytes, allowZstd, out var summary, out var message);
        if (error != RecordsError.None)
        {
            return ValueTask.FromException<AppendResult>(new StorageException(Map(error), message ?? error.ToString()));
        }

        if (config.CleanupCompact && Cleaning.CompactedTopicValidator.Check(batches.Span, System.IO.Path.GetFileName(_directory),
            CompressionCodecs.MaxDecompressedBytes(config.MaxMessageBytes)) is { } keyless)
        {
            return ValueTask.FromException<AppendResult>(keyless);
        }

        // The default configuration (CreateTime without bounds, compression.type=producer) skips both branches.
        if (TimestampRangeValidator.Applies(config) && TimestampRangeValidator.Check(batches.Span, System.IO.Path.GetFileName(_directory),
            _time.GetUtcNow().ToUnixTimeMilliseconds(), config.TimestampBeforeMaxMs, config.TimestampAfterMaxMs,
            CompressionCodecs.MaxDecompressedBytes(config.MaxMessageBytes)) is { } outOfRange)
        {
            return ValueTask.FromException<AppendResult>(outOfRange);
        }

        if (config.Compression is { } codec && BatchRecompressor.Needed(summary.CodecMask, codec))
        {
            try
            {
                batches = BatchRecompressor.Recompress(batches.Span, codec, CompressionCodecs.MaxDecompressedBytes(config.MaxMessageBytes), out int largest);
                if (largest > config.MaxMessageBytes)
                {
                    // As Kafka re-checks sizes after recompression (RecordTooLargeException).
                    return ValueTask.FromException<AppendResult>(new StorageException(StorageError.MessageTooLarge,
                        $"Record batch is {largest} bytes after recompression to {codec}, larger than max.message.bytes ({config.MaxMessageBytes})."));
                }
            }
            catch (InvalidRecordException e)
            {
                return ValueTask.FromException<AppendResult>(new StorageException(StorageError.CorruptMessage, $"Records could not be recompressed: {e.Message}", e));
            }
        }

        AppendResult result;
        FlushGeneration? generation = null;
        bool rolled;
        try
        {
            lock (_lock)
            {
                result = AppendLocked(batches.Span, summary, config, origin, out rolled);
                if (config.FlushPolicy == FlushPolicy.Durable)
                {
                    generation = _pending ??= new FlushGeneration();
                }
            }
        }
        catch (StorageException e)
        {
            return ValueTask.FromException<AppendResult>(e);
        }
        catch (ObjectDisposedException e)
        {
            // Closed under the caller (topic deleted, broker stopping): a retriable storage error, not a crash.
            return ValueTask.FromException<AppendResult>(new StorageException(StorageError.StorageFailure, $"The log in {_directory} is closed.", e));
        }

        if (generation is null)
        {
            RaiseHighWatermarkAdvanced();
            if (rolled)
            {
                ScheduleFlush();
            }

            return new ValueTask<AppendResult>(result);
        }

        ScheduleFlush();
        return AwaitFlush(generation.Task, result, ct);
    }

    private static async ValueTask<AppendResult> AwaitFlush(Task flushed, AppendResult result, CancellationToken ct)
    {
        await (ct.CanBeCanceled ? flushed.WaitAsync(ct) : flushed).ConfigureAwait(false);
        return result;
    }

    private AppendResult AppendLocked(Span<byte> batches, in BatchSummary summary, LogConfig config, AppendOrigin origin, out bool rolled)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ThrowIfOffline();
        if (_failed)
        {
            throw new StorageException(StorageError.StorageFailure, $"The log in {_directory} failed an earlier write and could not be repaired; it is read-only.");
        }

        if (_following)
        {
            // Checked under the append lock that Follow() takes: a produce or marker that passed its leadership check
            // just before this replica became a follower must not land after the truncation that follows.
            throw new StorageException(StorageError.NotLeader, $"The replica in {_directory} follows another broker now; it takes only its leader's batches.");
        }

        long now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        rolled = MaybeRollLocked(batches.Length, summary.RecordCount, now, config);
        var segment = _active;
        var mark = segment.GetMark();
        if (segment.Size == 0)
        {
            segment.CreatedMs = now;
        }

        bool logAppendTime = config.TimestampType == TimestampType.LogAppendTime;
        int leaderEpoch = _leaderEpoch;
        long baseOffset = _logEndOffset;
        long next = baseOffset;
        for (int position = 0; position < batches.Length;)
        {
            var batch = batches[position..];
            int size = RecordBatchHeader.ReadTotalSize(batch);
            RecordBatchHeader.SetBaseOffset(batch, next);
            RecordBatchHeader.SetPartitionLeaderEpoch(batch, leaderEpoch); // outside the CRC, like the base offset
            if (logAppendTime)
            {
                RecordBatchHeader.SetLogAppendTime(batch[..size], now);
            }

            next += new RecordBatchHeader(batch).LastOffsetDelta + 1L;
            position += size;
        }

        // Idempotence and transactions (PartitionLog.Producers.cs): a retried batch gets its original offsets.
        var producerAppend = PrepareProducerState(batches, now, logAppendTime, origin, out var duplicate);
        if (duplicate is { } original)
        {
            return original;
        }

        WriteBatchesLocked(segment, mark, batches, config);
        if (producerAppend is not null)
        {
            _producers.Commit(producerAppend, now);
        }

        if (leaderEpoch > _epochs.LatestEpoch)
        {
            AssignEpochLocked(leaderEpoch, baseOffset);
        }

        segment.LastAppendMs = now;
        Interlocked.Exchange(ref _logEndOffset, next);
        if (config.FlushPolicy == FlushPolicy.PageCache)
        {
            AdvanceHighWatermarkLocked(next, segment, segment.Size, segment.MaxTimestamp);
        }

        return new AppendResult(baseOffset, next - 1, logAppendTime ? now : -1, _logStartOffset);
    }

    /// <summary>
    /// One pwrite of whole batches at the end of the active segment, and their index entries. A failed write is truncated
    /// away before this returns (the log stays a sequence of whole batches), or the log turns read-only when it cannot be.
    /// </summary>
    private void WriteBatchesLocked(LogSegment segment, LogSegment.Mark mark, ReadOnlySpan<byte> batches, LogConfig config)
    {
        try
        {
            segment.Log.Write(mark.Size, batches);
            for (int position = 0; position < batches.Length;)
            {
                var header = new RecordBatchHeader(batches[position..]);
                int size = header.TotalSize;
                segment.OnBatchAppended(mark.Size + position, size, header.BaseOffset, header.LastOffset, header.MaxTimestamp, config.IndexIntervalBytes, persist: true);
                position += size;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            bool repaired = true;
            try
            {
                segment.Rollback(mark);
            }
            catch (Exception rollbackError) when (rollbackError is IOException or UnauthorizedAccessException)
            {
                _failed = true;
                repaired = false;
            }

            // A full disk whose partial write was truncated away leaves the log whole: this append fails and later ones
            // work once space returns (a deliberate difference from Kafka, which takes the directory offline for it too).
            // Any other write failure is the directory's.
            if (repaired && LogDirectory.IsOutOfSpace(e))
            {
                throw new StorageException(StorageError.StorageFailure, $"Append to {_directory} failed: {e.Message}", e);
            }

            throw IOFailure("append", e, $"Append to {_directory} failed: {e.Message}");
        }
    }

    /// <summary>Rolls before an append that would overflow the segment (bytes, age since its first append, or 32-bit relative offsets).</summary>
    private bool MaybeRollLocked(int bytes, long records, long now, LogConfig config)
    {
        var segment = _active;
        if (segment.Size == 0)
        {
            return false;
        }

        long maxSize = Math.Min(config.SegmentBytes, int.MaxValue);
        bool full = segment.Size + bytes > maxSize;
        // Kafka's maxSegmentMs: a compacted log rolls by max.compaction.lag.ms too, so records older than that leave
        // the active segment, which the cleaner never touches, and become cleanable.
        long rollMs = config.CleanupCompact ? Math.Min(config.SegmentMs, config.MaxCompactionLagMs) : config.SegmentMs;
        bool old = now - segment.CreatedMs >= rollMs;
        bool offsetsOverflow = _logEndOffset + records - segment.BaseOffset > int.MaxValue;
        if (!full && !old && !offsetsOverflow)
        {
            return false;
        }

        RollLocked(now);
        return true;
    }

    private void RollLocked(long now)
    {
        SnapshotProducerStateLocked();
        try
        {
            _active.Close();
            var next = LogSegment.Create(_fs, _directory, _logEndOffset, now);
            _rolledUnflushed.Add(_active);
            _segments = [.. _segments, next];
            _active = next;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw IOFailure("roll", e, $"Rolling a segment in {_directory} failed: {e.Message}");
        }

        PublishLocked();
    }

    /// <summary>Starts a new segment now, if the active one holds any data.</summary>
    public void Roll()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ThrowIfOffline();
            if (_active.Size == 0)
            {
                return;
            }

            RollLocked(_time.GetUtcNow().ToUnixTimeMilliseconds());
        }

        ScheduleFlush();
    }

    /// <summary>Syncs everything appended so far and advances the high watermark to the log end, on this thread.</summary>
    public void Flush() => FlushPending(force: true);

    private void ScheduleFlush()
    {
        if (Interlocked.Exchange(ref _flushScheduled, 1) == 0)
        {
            _flusher.Schedule(this);
        }
    }

    /// <summary>
    /// One group commit: closes the pending generation, syncs the segments rolled since the last sync and the
    /// active log, then advances the high watermark to the log end captured at the start.
    /// </summary>
    /// <param name="force">Also sync the active segment's indexes, even with nothing pending (Flush, Dispose).</param>
    internal void FlushPending(bool force = false)
    {
        Interlocked.Exchange(ref _flushScheduled, 0);
        FlushGeneration? generation;
        LogSegment[] rolled;
        LogSegment segment;
        long target, position, maxTimestamp;
        bool advanced;
        lock (_flushLock)
        {
            lock (_lock)
            {
                if (_closed)
                {
                    return;
                }

                generation = _pending;
                _pending = null;
                if (_logDir is { IsOffline: true } offline)
                {
                    // No sync on an offline directory: whatever waits fails (none may hang), nothing touches the disk.
                    _rolledUnflushed.Clear();
                    generation?.Fail(offline.Offline(_directory));
                    return;
                }

                rolled = _rolledUnflushed.Count == 0 ? [] : [.. _rolledUnflushed];
                _rolledUnflushed.Clear();
                segment = _active;
                target = _logEndOffset;
                position = segment.Size;
                maxTimestamp = segment.MaxTimestamp;
                if (!force && generation is null && rolled.Length == 0 && target == _highWatermark)
                {
                    return;
                }
            }

            try
            {
                foreach (var closed in rolled)
                {
                    closed.FlushAll();
                }

                if (force)
                {
                    segment.FlushAll();
                }
                else
                {
                    segment.Log.Flush();
                }

                if (rolled.Length > 0)
                {
                    _fs.SyncDirectory(_directory); // the new segment's name
                }
            }
            catch (Exception e)
            {
                // After a failed fsync the kernel may have dropped the dirty pages: retrying could report
                // success for lost data. Like Kafka taking the log directory offline, the log turns read-only.
                // Any exception, not only I/O ones: the waiting appends must fail rather than wait for ever.
                lock (_lock)
                {
                    _failed = true;
                }

                if (_logDir is { } dir && e is IOException or UnauthorizedAccessException)
                {
                    // The directory goes offline (reported there) and its other partitions' waiting appends fail too.
                    generation?.Fail(dir.HandleIOException("fsync", _directory, e));
                    return;
                }

                generation?.Fail(new StorageException(StorageError.StorageFailure, $"fsync in {_directory} failed: {e.Message}", e));
                _diagnostics?.Report("fsync (the log is read-only until restart)", _directory, e);
                return;
            }

            lock (_lock)
            {
                advanced = AdvanceHighWatermarkLocked(target, segment, position, maxTimestamp);
            }
        }

        generation?.Complete();
        if (advanced)
        {
            RaiseHighWatermarkAdvanced();
        }
    }

    private bool AdvanceHighWatermarkLocked(long target, LogSegment segment, long position, long maxTimestamp)
    {
        if (target <= _highWatermark)
        {
            return false;
        }

        _highWatermark = target;
        _hwSegment = segment;
        _hwPosition = position;
        _hwMaxTimestamp = maxTimestamp;
        PublishLocked();
        return true;
    }

    private void PublishLocked() =>
        _state = new ReadState(_segments, _highWatermark, _hwSegment, _hwPosition, _hwMaxTimestamp, _logStartOffset);

    private void RaiseHighWatermarkAdvanced()
    {
        try
        {
            HighWatermarkAdvanced?.Invoke(this);
        }
        catch (Exception e)
        {
            // A subscriber's failure must not fail the append or stop the flusher.
            _diagnostics?.Report("high-watermark subscriber", _directory, e);
        }
    }

    private static StorageError Map(RecordsError error) => error switch
    {
        RecordsError.MessageTooLarge => StorageError.MessageTooLarge,
        RecordsError.UnsupportedForMessageFormat => StorageError.UnsupportedForMessageFormat,
        RecordsError.InvalidRecord => StorageError.InvalidRecord,
        RecordsError.UnsupportedCompressionType => StorageError.UnsupportedCompressionType,
        _ => StorageError.CorruptMessage,
    };

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
        }

        bool clean;
        try
        {
            FlushPending(force: true);
            clean = true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            clean = false;
        }

        lock (_flushLock)
        {
            List<LogSegment> deletes;
            lock (_lock)
            {
                _closed = true;
                deletes = [.. _pendingDeletes.Select(d => d.Segment)];
                _pendingDeletes.Clear();
                _pending?.Fail(new ObjectDisposedException(nameof(PartitionLog)));
                _pending = null;
            }

            foreach (var segment in _segments)
            {
                segment.Dispose();
            }

            foreach (var segment in deletes)
            {
                DeleteSegmentFiles(segment);
            }

            // An offline directory is not touched again, and a log whose directory failed was not closed cleanly.
            if (clean && !_failed && !IsOffline && WriteEpochCheckpointIfDirty())
            {
                SnapshotProducerStateLocked();
                WriteCleanShutdownMarker();
            }

            _producers.Dispose();
        }
    }

    /// <summary>A clean shutdown skips the open-time check of the epoch checkpoint, so a write that failed earlier must succeed first.</summary>
    private bool WriteEpochCheckpointIfDirty()
    {
        try
        {
            _epochs.WriteIfDirty();
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private void WriteCleanShutdownMarker()
    {
        try
        {
            using (var file = _fs.OpenFile(System.IO.Path.Combine(_directory, CleanShutdownFile), create: true))
            {
                file.Flush();
            }

            _fs.SyncDirectory(_directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Without the marker the next open simply scans the active segment in full.
        }
    }

    /// <summary>What readers need, swapped as a whole. Segments at or after HwSegment hold no readable bytes past HwPosition.</summary>
    private sealed record ReadState(LogSegment[] Segments, long HighWatermark, LogSegment HwSegment, long HwPosition, long HwMaxTimestamp, long LogStartOffset)
    {
        public long ReadableLimit(LogSegment segment) =>
            ReferenceEquals(segment, HwSegment) ? HwPosition
            : segment.BaseOffset < HwSegment.BaseOffset ? segment.Size
            : 0;

        public long MaxTimestampOf(LogSegment segment) => ReferenceEquals(segment, HwSegment) ? HwMaxTimestamp : segment.MaxTimestamp;
    }
}
