using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using Tributary.Protocol.Records;

namespace Tributary.Storage.Cleaning;

/// <summary>
/// Log compaction (cleanup.policy=compact): keeps, per key, the last record, in the closed segments of compacted
/// partitions, on one background thread per <see cref="LogManager"/>.
///
/// The log of a compacted partition has a clean part (already cleaned against a key map) and a dirty part, split
/// at the first dirty offset kept in <see cref="CleanerCheckpoint"/>. Only segments that are closed, wholly below
/// the high watermark, and (min.compaction.lag.ms) old enough are cleanable; the active segment never is. Each
/// round the cleaner takes the log with the highest dirty ratio (dirty bytes / cleanable bytes) among those at or
/// above min.cleanable.dirty.ratio, or whose oldest dirty record is older than max.compaction.lag.ms, and:
/// <list type="number">
/// <item>reads the dirty part into an <see cref="OffsetMap"/> (key → latest offset) until the map's budget is
/// used — the map's end offset; what lies beyond is cleaned in a later pass (multi-pass cleaning);</item>
/// <item>rewrites the segments from the log start up to the map's end offset in groups that fit one segment
/// (segment.bytes, 32-bit relative offsets), each into a <c>.cleaned</c> segment through <see cref="BatchRewriter"/>
/// — offsets never change, so fetch and ListOffsets simply see gaps;</item>
/// <item>swaps each group in crash-safely (<see cref="PartitionLog.ReplaceSegments"/>), then records the map's end
/// offset as the new first dirty offset.</item>
/// </list>
/// Transactions (<see cref="TransactionTracker"/>, as Kafka): only segments wholly below the last stable offset are
/// cleanable, so every transaction met is decided; aborted batches never enter the key map and lose their records;
/// committed transactional records are compacted like others; a marker stays while its transaction has data in the
/// log, then gets a delete horizon and goes a pass after it (its aborted-transaction index entry goes first); the
/// batch with an active producer's last sequence stays, emptied, so producer state rebuilt from the log survives.
/// Reads and writes are throttled (log.cleaner.io.max.bytes.per.second). Nothing here holds the append lock
/// except the array swap, so producers and consumers are not held up; a failure (disk full, IO error) discards the
/// cleaned files and the log is retried at the next round. A failure on the log's own data (a batch that cannot be
/// decompressed or parsed) marks that log uncleanable until restart (<see cref="PartitionLog.UncleanableReason"/>),
/// and the cleaner goes on with the others.
/// </summary>
public sealed class LogCleaner : IDisposable
{
    private const int WriteChunk = 1 << 20;
    private const long SyncEvery = 8 << 20;
    private readonly Func<IEnumerable<PartitionLog>> _logs;
    private readonly CleanerOptions _options;
    private readonly TimeProvider _time;
    private readonly Throttler _throttler;
    private readonly OffsetMap _map;
    private readonly ArrayBufferWriter<byte> _groupBuffer = new(WriteChunk + (64 << 10));
    private readonly CancellationTokenSource _stop = new();
    private readonly AutoResetEvent _wake = new(false);
    private Thread? _thread;
    private long _bytesRead;
    private long _bytesWritten;
    private long _cleaningTicks;
    // Per log, the earliest delete horizon set by a pass: once it passes, the log is worth a pass for its tombstones
    // alone. In memory only: after a restart those tombstones go with the next pass that new writes trigger.
    private readonly ConditionalWeakTable<PartitionLog, StrongBox<long>> _horizons = [];

    public LogCleaner(Func<IEnumerable<PartitionLog>> logs, CleanerOptions options, TimeProvider time)
    {
        _logs = logs;
        _options = options;
        _time = time;
        _throttler = new Throttler(options.IoMaxBytesPerSecond);
        _map = new OffsetMap(16, retainBytes: options.DedupeBufferSize);
    }

    /// <summary>Totals since start, for metrics and benchmarks.</summary>
    public long BytesRead => Interlocked.Read(ref _bytesRead);
    public long BytesWritten => Interlocked.Read(ref _bytesWritten);
    public TimeSpan TimeCleaning => TimeSpan.FromTicks(Interlocked.Read(ref _cleaningTicks));

    /// <summary>Last failure, for diagnostics.</summary>
    public Exception? LastError { get; private set; }

    /// <summary>After each pass over a log (on the cleaner thread): what it read, wrote and took, for the operator's log.</summary>
    public event Action<PartitionLog, CleanResult>? Cleaned;

    /// <summary>When a round fails (on the cleaner thread); the cleaner goes on with the next round after its backoff.</summary>
    public event Action<Exception>? Failed;

    /// <summary>When a log is marked uncleanable (on the cleaner thread), with the failure; it is skipped until restart.</summary>
    public event Action<PartitionLog, Exception>? MarkedUncleanable;

    /// <summary>For tests: called on the cleaner thread when a group's <c>.cleaned</c> segment has just been created, with the pass's token.</summary>
    internal Action<CancellationToken>? GroupStarted { get; set; }

    public void Start()
    {
        if (_thread is not null || !_options.Enabled)
        {
            return;
        }

        _thread = new Thread(Run) { IsBackground = true, Name = "tributary-log-cleaner" };
        _thread.Start();
    }

    /// <summary>Asks the cleaner thread to look for work now rather than after its backoff.</summary>
    public void Wake() => _wake.Set();

    private void Run()
    {
        if (_options.LowPriority) BackgroundPriority.LowerCurrentThread();
        var token = _stop.Token;
        while (!token.IsCancellationRequested)
        {
            bool cleaned = false;
            try
            {
                cleaned = CleanOnce().Cleaned;
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                break; // stopping mid-pass: the partial cleaned segment was deleted, the log is as it was
            }
            catch (Exception e)
            {
                // Nothing may end this thread but stopping: an exception escaping it would abort the process, and at
                // every restart again. A failure of one log's data was already handled in CleanOnce.
                LastError = e;
                Failed?.Invoke(e);
            }

            if (!cleaned)
            {
                WaitHandle.WaitAny([_wake, token.WaitHandle], TimeSpan.FromMilliseconds(_options.BackoffMs));
            }
        }
    }

    /// <summary>One round: cleans the dirtiest eligible log (one pass), if any.</summary>
    public CleanResult CleanOnce()
    {
        long now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        PartitionLog? best = null;
        double bestRatio = -1;
        foreach (var log in _logs())
        {
            var config = log.Config;
            if (!config.CleanupCompact || log.CleanerBroken)
            {
                continue;
            }

            var plan = Plan(log, config, now);
            bool tombstonesDue = _horizons.TryGetValue(log, out var horizon) && horizon.Value <= now;
            if (plan.DirtyBytes == 0 && !tombstonesDue)
            {
                continue;
            }

            bool eligible = tombstonesDue || (plan.DirtyBytes > 0 && plan.Ratio >= config.MinCleanableDirtyRatio)
                || (config.MaxCompactionLagMs < long.MaxValue && plan.OldestDirtyTimestamp >= 0 && now - plan.OldestDirtyTimestamp > config.MaxCompactionLagMs);
            if (eligible && plan.Ratio > bestRatio)
            {
                best = log;
                bestRatio = plan.Ratio;
            }
        }

        if (best is null)
        {
            return CleanResult.Nothing;
        }

        try
        {
            return Clean(best);
        }
        catch (ObjectDisposedException)
        {
            return CleanResult.Nothing; // closed under us (topic deleted, shutdown)
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException && !LogDirectory.IsOutOfSpace(e))
        {
            // A full disk only fails this pass (retried after the backoff). A disk failure reading or writing the log's files: its directory goes offline (as Kafka's cleaner does
            // through maybeHandleIOException) and the cleaner skips its logs from now on.
            best.ReportIOFailure("cleaner", e);
            throw;
        }
        catch (Exception e) when (IsFaultOfLog(e))
        {
            // As Kafka's uncleanable partitions: the log's data defeats the cleaner (a batch it cannot decompress or
            // parse), so retrying would fail the same way and, as the dirtiest log, starve every other one. Skip it from
            // now on and take the next log in the same round.
            best.MarkUncleanable(e.Message);
            MarkedUncleanable?.Invoke(best, e);
            return CleanOnce();
        }
    }

    /// <summary>
    /// A failure that belongs to the log being cleaned rather than to the disk or to stopping: disk and IO failures
    /// (full, read-only, failed rename) are the directory's and are retried after the backoff, as before.
    /// </summary>
    private bool IsFaultOfLog(Exception e) =>
        e is not (IOException or UnauthorizedAccessException or StorageException or OutOfMemoryException)
        && !(e is OperationCanceledException && _stop.IsCancellationRequested);

    /// <summary>The logs the cleaner skips because a pass failed on their data (Kafka's <c>uncleanable-partitions</c>).</summary>
    public IReadOnlyList<PartitionLog> UncleanableLogs => [.. _logs().Where(l => l.UncleanableReason is not null)];

    /// <param name="DirtyRecords">At most this many records are dirty (dirty segments were never cleaned, so their offsets are dense): sizes the key map.</param>
    private readonly record struct CleanPlan(LogSegment[] Segments, long FirstDirtyOffset, long CleanBytes, long DirtyBytes, long DirtyRecords, long OldestDirtyTimestamp)
    {
        public double Ratio => CleanBytes + DirtyBytes == 0 ? 0 : (double)DirtyBytes / (CleanBytes + DirtyBytes);
    }

    private static CleanPlan Plan(PartitionLog log, LogConfig config, long now)
    {
        var (segments, _) = log.CleanableSnapshot();
        if (config.MinCompactionLagMs > 0)
        {
            int count = 0;
            while (count < segments.Length && Math.Max(segments[count].MaxTimestamp, -1) <= now - config.MinCompactionLagMs)
            {
                count++;
            }

            segments = segments[..count];
        }

        if (segments.Length == 0)
        {
            return new CleanPlan(segments, 0, 0, 0, 0, -1);
        }

        long firstDirty = Math.Clamp(log.CleanerCheckpointEntry.FirstDirtyOffset, segments[0].BaseOffset, segments[^1].NextOffset);
        long clean = 0, dirty = 0, records = 0, oldest = -1;
        foreach (var segment in segments)
        {
            if (segment.NextOffset <= firstDirty)
            {
                clean += segment.Size;
            }
            else
            {
                dirty += segment.Size;
                records += segment.NextOffset - Math.Max(segment.BaseOffset, firstDirty);
                if (oldest < 0)
                {
                    oldest = FirstTimestamp(segment);
                }
            }
        }

        return new CleanPlan(segments, firstDirty, clean, dirty, records, oldest);
    }

    private static long FirstTimestamp(LogSegment segment)
    {
        Span<byte> header = stackalloc byte[RecordBatchHeader.HeaderSize];
        return segment.Size >= RecordBatchHeader.HeaderSize && segment.Log.Read(0, header) == header.Length
            ? new RecordBatchHeader(header).BaseTimestamp : segment.MaxTimestamp;
    }

    /// <summary>One cleaning pass over <paramref name="log"/>, whatever its dirty ratio (tests and the admin path use it directly).</summary>
    public CleanResult Clean(PartitionLog log)
    {
        // One pass at a time: passes share the key map and the write buffer.
        lock (_map)
        {
            return CleanPass(log);
        }
    }

    private CleanResult CleanPass(PartitionLog log)
    {
        var started = Stopwatch.StartNew();
        long now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var config = log.Config;
        var plan = Plan(log, config, now);
        if (plan.Segments.Length == 0)
        {
            return CleanResult.Nothing;
        }

        var token = _stop.Token;
        long read = 0, written = 0;
        var map = _map;
        map.Reset(OffsetMap.SlotsFor(_options.DedupeBufferSize, plan.DirtyRecords));
        long end = BuildOffsetMap(log, plan, map, ref read, token);
        if (end <= plan.FirstDirtyOffset && plan.DirtyBytes > 0)
        {
            throw new StorageException(StorageError.StorageFailure,
                $"The cleaner's key map ({map.Capacity} keys, log.cleaner.dedupe.buffer.size) cannot hold one batch of {log.Directory}.");
        }

        var latest = LatestOffsets.Build(map, plan.FirstDirtyOffset, end);
        int segmentsIn = 0, segmentsOut = 0;
        _horizons.Remove(log);
        // One walk from the log start across all groups, so a marker is judged against every batch before it.
        var transactions = new TransactionTracker(log.AbortedTransactions(plan.Segments[0].BaseOffset, long.MaxValue), log.LastBatchesOfProducers());
        var removedAborts = new List<long>();
        foreach (var group in GroupSegments(plan.Segments, end, config))
        {
            token.ThrowIfCancellationRequested();
            removedAborts.Clear();
            var cleaned = CleanGroup(log, group, map, latest, end, now, config, transactions, removedAborts, ref read, ref written, token);
            bool swapped;
            try
            {
                // Before the swap: an index entry without its marker would make readers skip that producer's later
                // committed batches, while a marker without its entry (its data is long gone) is harmless.
                if (removedAborts.Count > 0)
                {
                    log.ForgetAbortedTransactions(removedAborts);
                }

                swapped = log.ReplaceSegments(group, cleaned);
            }
            catch
            {
                cleaned.Dispose();
                throw;
            }

            if (!swapped)
            {
                cleaned.Dispose();
                DeleteCleanedFiles(log, cleaned);
                break; // the log changed under us (retention, close): start afresh next round
            }

            segmentsIn += group.Length;
            segmentsOut++;
        }

        if (segmentsIn > 0)
        {
            log.WriteCleanerCheckpoint(new CleanerCheckpoint.Entry(end, now));
        }

        Interlocked.Add(ref _bytesRead, read);
        Interlocked.Add(ref _bytesWritten, written);
        Interlocked.Add(ref _cleaningTicks, started.Elapsed.Ticks);
        var result = new CleanResult(segmentsIn, segmentsOut, read, written, plan.FirstDirtyOffset, end, started.Elapsed);
        Cleaned?.Invoke(log, result);
        return result;
    }

    /// <summary>Fills the map from the first dirty offset; returns the offset after the last batch indexed (the map's end).</summary>
    private long BuildOffsetMap(PartitionLog log, CleanPlan plan, OffsetMap map, ref long read, CancellationToken token)
    {
        long end = plan.FirstDirtyOffset;
        var transactions = new TransactionTracker(log.AbortedTransactions(plan.FirstDirtyOffset, long.MaxValue));
        foreach (var segment in plan.Segments)
        {
            if (segment.NextOffset <= plan.FirstDirtyOffset)
            {
                continue;
            }

            long start = plan.FirstDirtyOffset > segment.BaseOffset ? segment.OffsetIndex.FloorPosition(plan.FirstDirtyOffset - segment.BaseOffset) : 0;
            using var scanner = new BatchScanner(segment.Log, start, segment.Size, 0, verify: false);
            long position = start;
            while (scanner.TryNext(out var batch))
            {
                if (batch.LastOffset < plan.FirstDirtyOffset)
                {
                    continue;
                }

                var bytes = scanner.Bytes(batch);
                var header = new RecordBatchHeader(bytes);
                if (header.IsControl)
                {
                    _ = transactions.OnControlBatch(header, bytes); // closes its transaction; markers hold no keys
                }
                else if (!transactions.OnDataBatch(header) && !BatchRewriter.IndexKeys(bytes, plan.FirstDirtyOffset, map, CompressionCodecs.MaxDecompressedBytes(log.Config.MaxMessageBytes)))
                {
                    return end; // full: the rest is for the next pass
                }

                end = batch.LastOffset + 1;
                if (scanner.Position - position >= WriteChunk)
                {
                    read += scanner.Position - position;
                    _throttler.Account(scanner.Position - position, token);
                    position = scanner.Position;
                }
            }

            read += scanner.Position - position;
            _throttler.Account(scanner.Position - position, token);
            end = Math.Max(end, segment.NextOffset);
        }

        return end;
    }

    /// <summary>Runs of whole segments, from the first up to the one holding the map's end, each small enough for one segment.</summary>
    private static IEnumerable<LogSegment[]> GroupSegments(LogSegment[] segments, long end, LogConfig config)
    {
        long maxSize = Math.Min(config.SegmentBytes, int.MaxValue);
        int i = 0;
        while (i < segments.Length && segments[i].BaseOffset < end)
        {
            int j = i + 1;
            long size = segments[i].Size;
            while (j < segments.Length && segments[j].BaseOffset < end && size + segments[j].Size <= maxSize
                && segments[j].NextOffset - 1 - segments[i].BaseOffset <= int.MaxValue)
            {
                size += segments[j].Size;
                j++;
            }

            yield return segments[i..j];
            i = j;
        }
    }

    /// <param name="removedAborts">Receives the offsets of the abort markers this group removes.</param>
    private LogSegment CleanGroup(PartitionLog log, LogSegment[] group, OffsetMap map, LatestOffsets? latest, long end, long now, LogConfig config,
        TransactionTracker transactions, List<long> removedAborts, ref long read, ref long written, CancellationToken token)
    {
        var fs = log.FileSystem;
        var cleaned = LogSegment.Create(fs, log.Directory, group[0].BaseOffset, now, PartitionLog.CleanedSuffix);
        var buffer = _groupBuffer;
        buffer.ResetWrittenCount();
        long bufferStart = 0, syncedTo = 0;
        try
        {
            GroupStarted?.Invoke(token);
        }
        catch
        {
            cleaned.Dispose();
            throw;
        }
        try
        {
            for (int g = 0; g < group.Length; g++)
            {
                var segment = group[g];
                using var scanner = new BatchScanner(segment.Log, 0, segment.Size, 0, verify: false) { LazyBodies = true };
                long accounted = 0;
                while (scanner.TryNext(out var batch))
                {
                    if (scanner.BytesRead - accounted >= WriteChunk)
                    {
                        // Reads are paced as they happen: charging a whole segment at its end would let the cleaner
                        // read it at full speed and then sleep, bursts that producers feel in their latency.
                        _throttler.Account(scanner.BytesRead - accounted, token);
                        accounted = scanner.BytesRead;
                    }

                    bool lastOfGroup = g == group.Length - 1 && batch.Position + batch.Size == segment.Size;
                    var bytes = scanner.Header(batch);
                    BatchRewriter.BatchPolicy policy;
                    if (new RecordBatchHeader(bytes) is { IsControl: false, RecordsCount: > 0 } data)
                    {
                        // A data batch's fate is mostly known from its header: aborted, or holding no key's latest
                        // record (most of a log overwritten many times), it is emptied from the header alone, and its
                        // records are never read.
                        policy = Policy(transactions, data, bytes, lastOfGroup, now);
                        if (!policy.DiscardRecords && latest?.NoneSet(data.BaseOffset, data.LastOffset) != true)
                        {
                            bytes = scanner.Bytes(batch);
                        }
                    }
                    else
                    {
                        bytes = scanner.Bytes(batch);
                        policy = Policy(transactions, new RecordBatchHeader(bytes), bytes, lastOfGroup, now);
                    }
                    if (policy.DiscardRecords && new RecordBatchHeader(bytes) is { IsControl: true, RecordsCount: > 0 } marker
                        && ProducerStateManager.ControlType(bytes) == 0)
                    {
                        removedAborts.Add(marker.BaseOffset);
                    }

                    int before = buffer.WrittenCount;
                    var outcome = BatchRewriter.Rewrite(bytes, map, latest, end, now, config.DeleteRetentionMs, policy, buffer,
                        CompressionCodecs.MaxDecompressedBytes(config.MaxMessageBytes));
                    if (outcome != BatchRewriter.Outcome.Dropped)
                    {
                        var header = new RecordBatchHeader(buffer.WrittenSpan[before..]);
                        if ((header.Attributes & BatchRewriter.DeleteHorizonFlag) != 0 && header.BaseTimestamp > now)
                        {
                            var box = _horizons.GetOrAdd(log, _ => new StrongBox<long>(long.MaxValue));
                            box.Value = Math.Min(box.Value, header.BaseTimestamp);
                        }

                        cleaned.OnBatchAppended(bufferStart + before, header.TotalSize, header.BaseOffset, header.LastOffset, header.MaxTimestamp,
                            config.IndexIntervalBytes, persist: true);
                    }

                    if (buffer.WrittenCount >= WriteChunk)
                    {
                        cleaned.Log.Write(bufferStart, buffer.WrittenSpan);
                        bufferStart += buffer.WrittenCount;
                        written += buffer.WrittenCount;
                        _throttler.Account(buffer.WrittenCount, token);
                        buffer.ResetWrittenCount();
                        if (bufferStart - syncedTo >= SyncEvery)
                        {
                            // Small, regular syncs: one fsync of a whole cleaned segment at the end would queue hundreds
                            // of megabytes ahead of the producers' own syncs on the same disk.
                            cleaned.Log.Flush();
                            syncedTo = bufferStart;
                        }
                    }
                }

                read += scanner.BytesRead;
                _throttler.Account(scanner.BytesRead - accounted, token);
            }

            cleaned.Log.Write(bufferStart, buffer.WrittenSpan);
            written += buffer.WrittenCount;
            cleaned.Close();
            cleaned.FlushAll();
            cleaned.LastAppendMs = group.Max(s => s.LastAppendMs);
            cleaned.CreatedMs = now;
            return cleaned;
        }
        catch
        {
            cleaned.Dispose();
            DeleteCleanedFiles(log, cleaned);
            throw;
        }
    }

    private static BatchRewriter.BatchPolicy Policy(TransactionTracker transactions, RecordBatchHeader header, ReadOnlySpan<byte> bytes, bool lastOfGroup, long now)
    {
        bool lastOfProducer = transactions.IsLastOfProducer(header);
        if (!header.IsControl)
        {
            return new BatchRewriter.BatchPolicy(transactions.OnDataBatch(header), false, lastOfProducer, lastOfGroup);
        }

        bool noData = transactions.OnControlBatch(header, bytes);
        bool horizonPassed = (header.Attributes & BatchRewriter.DeleteHorizonFlag) != 0 && header.BaseTimestamp <= now;
        return new BatchRewriter.BatchPolicy(noData && horizonPassed, noData, lastOfProducer, lastOfGroup);
    }

    private static void DeleteCleanedFiles(PartitionLog log, LogSegment cleaned)
    {
        foreach (string extension in (string[])[LogSegment.LogExtension, LogSegment.IndexExtension, LogSegment.TimeIndexExtension])
        {
            try
            {
                log.FileSystem.DeleteFile(cleaned.PathOf(extension) + PartitionLog.CleanedSuffix);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Recovery removes .cleaned leftovers; the directory goes offline.
                log.ReportIOFailure("cleaner cleanup", e);
            }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _wake.Set();
        _thread?.Join();
        _stop.Dispose();
        _wake.Dispose();
    }
}
