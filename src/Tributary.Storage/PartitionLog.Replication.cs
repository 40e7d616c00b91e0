using Tributary.Protocol.Records;

namespace Tributary.Storage;

/// <summary>
/// What replication needs from the log (Kafka's follower side of <c>UnifiedLog</c>): leader epochs stamped into batches
/// and cached (<see cref="LeaderEpochCache"/>), a follower's append of the leader's bytes with the leader's offsets, and
/// truncation back to where the follower's log diverged from the new leader's.
/// </summary>
public sealed partial class PartitionLog
{
    private readonly LeaderEpochCache _epochs;
    private volatile int _leaderEpoch;

    /// <summary>
    /// The epoch the leader's appends (<see cref="AppendAsync(Memory{byte}, CancellationToken)"/>) write into each batch's
    /// partitionLeaderEpoch field (default 0). Set it when this replica becomes leader: an epoch above the latest cached one
    /// is then cached as starting at the log end, as Kafka's makeLeader does, so the appends of the epoch write no
    /// checkpoint. An append stamped with an epoch above the latest (the default 0 on a new log, or after a reopen dropped
    /// an entry that had no batch yet) adds it at its first batch. Follower appends keep the epochs the leader wrote.
    /// </summary>
    public int LeaderEpoch
    {
        get => _leaderEpoch;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            lock (_lock)
            {
                _leaderEpoch = value;
                if (!_disposed && !IsOffline && value > _epochs.LatestEpoch)
                {
                    AssignEpochLocked(value, _logEndOffset);
                }
            }
        }
    }

    private bool _following;
    private int _followedEpoch = -1;

    /// <summary>
    /// Kafka's makeFollower/makeLeader fence (its leaderIsrUpdateLock): a replica that follows another broker refuses
    /// leader appends (NotLeader) from the moment this returns, so no append that raced the role change lands in a log
    /// the follower then truncates and fetches into. False again when it leads (setting <see cref="LeaderEpoch"/> does
    /// not change it). A new log leads, as a broker alone does.
    /// </summary>
    public bool Following
    {
        get => Volatile.Read(ref _following);
        set
        {
            lock (_lock)
            {
                _following = value;
            }
        }
    }

    /// <summary>
    /// Marks this replica as following the leader of <paramref name="leaderEpoch"/> (and refusing leader appends, as
    /// <see cref="Following"/>): from the moment this returns, a replicated append checked against another epoch fails,
    /// so a fetch from the previous leader that was still in flight cannot land after the new leader's truncation.
    /// </summary>
    public void Follow(int leaderEpoch)
    {
        lock (_lock)
        {
            _following = true;
            _followedEpoch = leaderEpoch;
        }
    }

    /// <summary>The latest epoch in the epoch cache, -1 when it is empty.</summary>
    public int LatestEpoch => _epochs.LatestEpoch;

    /// <summary>The epoch cache's entries (epoch, start offset), oldest first.</summary>
    public IReadOnlyList<(int Epoch, long StartOffset)> EpochEntries => _epochs.Entries;

    /// <summary>
    /// OffsetForLeaderEpoch (Kafka's <c>LeaderEpochFileCache.endOffsetFor</c>): for the latest epoch (the log end offset);
    /// for an older one, the largest cached epoch at or below it and the start offset of the next higher epoch; for one
    /// below the first cached epoch, (that epoch, the first entry's start offset), as Kafka since 2.1; (-1, -1) for an
    /// epoch above the latest, for -1, and when no epoch is cached.
    /// </summary>
    /// <remarks>
    /// Without the append lock, as every reader: the log end is read before the cache, and an append moves the log end only
    /// after caching its epoch, so a concurrent append never yields an end offset the epoch did not reach; a concurrent
    /// truncation may leave the answer one call stale (the follower asks again after the leader's next change).
    /// </remarks>
    public (int Epoch, long EndOffset) EndOffsetForEpoch(int requestedEpoch) => _epochs.EndOffsetFor(requestedEpoch, LogEndOffset);

    /// <summary>Adds an epoch entry after its first batch is written; a failed checkpoint write is retried before a clean close.</summary>
    private void AssignEpochLocked(int epoch, long startOffset)
    {
        try
        {
            _epochs.Assign(epoch, startOffset);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The batch is written and the entry is in memory: the append stands. An unclean open rebuilds the entry from
            // the active segment; the directory goes offline (a standalone log reports it).
            if (_logDir is null) _diagnostics?.Report("leader-epoch checkpoint", _directory, e);
            else ReportIOFailure("leader-epoch checkpoint", e);
        }
    }

    /// <summary>
    /// A follower's append of batches fetched from the leader, with the leader's base offsets and leader epochs as they
    /// are (the bytes are written as given, not copied or changed). They are checked as the leader would check them
    /// (framing, CRC, record counts, max.message.bytes: <see cref="RecordBatchValidator"/>) but not recompressed, and
    /// timestamps and compaction keys are not checked again: the leader did. The first batch must start at the log end
    /// and each next one where the previous ended. Producer state records what the leader accepted (no duplicate or
    /// sequence check can refuse it), commit and abort markers close transactions and fill the aborted-transaction index
    /// as on the leader, and a batch with an epoch above the latest adds it to the epoch cache. Completes under the
    /// flush policy, as <see cref="AppendAsync(Memory{byte}, CancellationToken)"/> (Durable: after the fsync).
    /// </summary>
    /// <returns>The new log end offset.</returns>
    /// <exception cref="StorageException">OffsetOutOfRange when the first batch does not start at the log end; InvalidRecord when
    /// the batches are not contiguous; the validator's errors; StorageFailure on I/O failure (as a faulted task).</exception>
    public ValueTask<long> AppendReplicatedAsync(ReadOnlyMemory<byte> batches, CancellationToken ct = default) =>
        AppendReplicatedAsync(batches, followedEpoch: null, ct);

    /// <summary>
    /// A fetcher's append: as <see cref="AppendReplicatedAsync(ReadOnlyMemory{byte}, CancellationToken)"/>, refused
    /// (NotLeader) unless this replica still follows the leader of <paramref name="followedEpoch"/> (<see cref="Follow"/>).
    /// </summary>
    public ValueTask<long> AppendReplicatedAsync(ReadOnlyMemory<byte> batches, int? followedEpoch, CancellationToken ct = default)
    {
        if (_logDir is { IsOffline: true } offline)
        {
            return ValueTask.FromException<long>(offline.Offline(_directory));
        }

        var config = _config;
        if (CheckReplicated(batches.Span) is { } problem)
        {
            return ValueTask.FromException<long>(new StorageException(StorageError.CorruptMessage, $"Replicated batches for {_directory} are invalid: {problem}"));
        }

        long end;
        FlushGeneration? generation = null;
        bool rolled;
        try
        {
            lock (_lock)
            {
                if (followedEpoch is { } epoch && (!_following || _followedEpoch != epoch))
                {
                    throw new StorageException(StorageError.NotLeader,
                        $"The replica in {_directory} no longer follows the leader of epoch {epoch}; a fetch from it is not appended.");
                }

                end = AppendReplicatedLocked(batches.Span, config, out rolled);
                if (config.FlushPolicy == FlushPolicy.Durable)
                {
                    generation = _pending ??= new FlushGeneration();
                }
            }
        }
        catch (StorageException e)
        {
            return ValueTask.FromException<long>(e);
        }
        catch (ObjectDisposedException e)
        {
            return ValueTask.FromException<long>(new StorageException(StorageError.StorageFailure, $"The log in {_directory} is closed.", e));
        }

        if (generation is null)
        {
            RaiseHighWatermarkAdvanced();
            if (rolled)
            {
                ScheduleFlush();
            }

            return new ValueTask<long>(end);
        }

        ScheduleFlush();
        return AwaitReplicatedFlush(generation.Task, end, ct);
    }

    /// <summary>
    /// What a follower checks of its leader's batches, as Kafka's follower append does (analyzeAndValidateRecords, not
    /// the leader's record-level validation): each is a whole magic-2 batch whose CRC matches, with sane counts. The
    /// leader validated the records when it took them; a compacted log's batches legitimately have fewer records than
    /// offsets, or none, and offset gaps between them, which the producer-side validator would refuse.
    /// </summary>
    private static string? CheckReplicated(ReadOnlySpan<byte> batches)
    {
        if (batches.IsEmpty) return "no batch";
        for (int position = 0; position < batches.Length;)
        {
            var rest = batches[position..];
            if (rest.Length < RecordBatchHeader.HeaderSize) return $"a partial batch header at byte {position}";
            int size = RecordBatchHeader.ReadTotalSize(rest);
            if (size < RecordBatchHeader.HeaderSize || size > rest.Length) return $"a batch of {size} bytes at byte {position} with {rest.Length} left";
            var header = new RecordBatchHeader(rest);
            if (header.Magic != 2) return $"magic {header.Magic} at byte {position}";
            if (header.Crc != RecordBatchHeader.ComputeCrc(rest[..size])) return $"a CRC mismatch at offset {header.BaseOffset}";
            if (header.LastOffsetDelta < 0 || header.RecordsCount < 0 || header.RecordsCount > header.LastOffsetDelta + 1L)
                return $"{header.RecordsCount} records over a last offset delta of {header.LastOffsetDelta} at offset {header.BaseOffset}";
            position += size;
        }

        return null;
    }

    private static async ValueTask<long> AwaitReplicatedFlush(Task flushed, long end, CancellationToken ct)
    {
        await (ct.CanBeCanceled ? flushed.WaitAsync(ct) : flushed).ConfigureAwait(false);
        return end;
    }

    private long AppendReplicatedLocked(ReadOnlySpan<byte> batches, LogConfig config, out bool rolled)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ThrowIfOffline();
        if (_failed)
        {
            throw new StorageException(StorageError.StorageFailure, $"The log in {_directory} failed an earlier write and could not be repaired; it is read-only.");
        }

        long start = _logEndOffset;
        long next = start;
        for (int position = 0; position < batches.Length;)
        {
            var header = new RecordBatchHeader(batches[position..]);
            // A compacted leader log has gaps between batches: offsets only have to move forward (Kafka's follower rule).
            if (header.BaseOffset < next)
            {
                throw position == 0
                    ? new StorageException(StorageError.OffsetOutOfRange,
                        $"Replicated batches start at offset {header.BaseOffset}, but the log in {_directory} ends at {start}: a follower appends only at or after its log end.")
                    : new StorageException(StorageError.InvalidRecord,
                        $"Replicated batches go backwards: a batch starts at offset {header.BaseOffset}, the previous one ended before {next}.");
            }

            next = header.LastOffset + 1;
            position += header.TotalSize;
        }

        long now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        rolled = MaybeRollLocked(batches.Length, next - start, now, config);
        var segment = _active;
        var mark = segment.GetMark();
        if (segment.Size == 0)
        {
            segment.CreatedMs = now;
        }

        var producerAppend = _producers.PrepareReplicated(batches, now);
        WriteBatchesLocked(segment, mark, batches, config);
        if (producerAppend is not null)
        {
            _producers.Commit(producerAppend, now);
        }

        for (int position = 0; position < batches.Length;)
        {
            var header = new RecordBatchHeader(batches[position..]);
            if (header.PartitionLeaderEpoch >= 0 && header.PartitionLeaderEpoch > _epochs.LatestEpoch)
            {
                AssignEpochLocked(header.PartitionLeaderEpoch, header.BaseOffset);
            }

            position += header.TotalSize;
        }

        segment.LastAppendMs = now;
        Interlocked.Exchange(ref _logEndOffset, next);
        if (config.FlushPolicy == FlushPolicy.PageCache)
        {
            AdvanceHighWatermarkLocked(next, segment, segment.Size, segment.MaxTimestamp);
        }

        return next;
    }
}
