using System.Threading.Channels;
using Tributary.Coordination;
using Tributary.Protocol.Records;
using Tributary.Storage;

namespace Tributary.SchemaRegistry.Storage;

/// <summary>
/// Where a registry that follows <c>_schemas</c>-0 reads it: this broker's replica (null while it holds none) and the end
/// of what is committed in that replica as far as this broker knows: the leader's high watermark, the one a follower
/// last heard from its leader, or null while it has heard none (a follower that just started). A broker without a
/// replica (a cluster larger than the replication factor) reads the leader's committed records over Fetch instead,
/// as a consumer does (<paramref name="FetchFromLeader"/>: batches from an offset; null while no leader answers).
/// </summary>
public sealed record SchemaLogSource(Func<PartitionLog?> Replica, Func<PartitionLog, long?> Committed,
    Func<long, CancellationToken, Task<LeaderFetch?>>? FetchFromLeader = null);

/// <summary>
/// What a consumer's fetch of <c>_schemas</c>-0 from its leader returned: whole batches from the offset asked (up to the
/// high watermark, so committed), the high watermark and the log start (an offset below it is gone).
/// </summary>
public sealed record LeaderFetch(ReadOnlyMemory<byte> Batches, long HighWatermark, long LogStartOffset);

/// <summary>
/// Keeps a registry's state equal to the committed prefix of this broker's replica of <c>_schemas</c>-0, on every broker
/// that holds one, leader or follower alike (Confluent's followers tail the topic the same way, as consumers).
/// <para>
/// Algorithm: on every nudge (a high watermark moved, the metadata changed, a writer wants its own write) one loop reads
/// the records from <see cref="AppliedEnd"/> up to the committed end and applies them in offset order. Invariants: the
/// state is always the replay of the replica's records below <see cref="AppliedEnd"/>, and <see cref="AppliedEnd"/> never
/// passes the committed end, so nothing applied can be truncated away when leadership moves (new leaders come from the
/// ISR, which holds every committed record). Only an unclean election or a replica started over breaks that: the leader
/// epoch of the last record applied no longer reaches <see cref="AppliedEnd"/> in the replica's epoch history (its suffix
/// was truncated and replaced, KIP-101's test), the log ends below or starts above it, or the replica is another
/// instance. The state is then rebuilt from the log start. A record that does not decode is skipped and counted, as
/// replay at start skips it.
/// </para>
/// <para>
/// On a broker without a replica the loop instead long-polls the leader with consumer fetches from
/// <see cref="AppliedEnd"/> (<see cref="SchemaLogSource.FetchFromLeader"/>) and applies what they return, which is
/// committed by construction; the state is current once a fetch reached the high watermark.
/// </para>
/// </summary>
internal sealed class SchemaLogTail : IAsyncDisposable
{
    private static readonly TimeSpan RetryAfterFailure = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan RemoteRetry = TimeSpan.FromMilliseconds(200);

    private readonly SchemaLogSource _source;
    private readonly Action<CoordinatorRecord> _apply;
    private readonly Action _reset;
    private readonly Action<CoordinatorLogLevel, string> _report;
    private readonly TimeProvider _time;
    private readonly object _gate = new();
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly List<(long Offset, TaskCompletionSource<bool> Done)> _waiters = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Action<PartitionLog> _onLocalAdvance;
    private PartitionLog? _subscribed;
    private PartitionLog? _stateFrom;
    private long _appliedEnd;
    private int _appliedEpoch = -1;
    private long _skipped;
    private long _remoteHighWatermark;
    private volatile bool _current;
    private Task _loop = Task.CompletedTask;

    /// <param name="apply">Applies one record (throws when it does not decode: it is skipped and counted).</param>
    /// <param name="reset">Empties the state before a rebuild.</param>
    public SchemaLogTail(SchemaLogSource source, Action<CoordinatorRecord> apply, Action reset, Action<CoordinatorLogLevel, string> report, TimeProvider time)
    {
        _source = source;
        _apply = apply;
        _reset = reset;
        _report = report;
        _time = time;
        _onLocalAdvance = _ => Poke();
    }

    /// <summary>The offset after the last record applied: the state is the replay of the replica below it.</summary>
    public long AppliedEnd => Interlocked.Read(ref _appliedEnd);

    /// <summary>True when the last catch-up found a replica and knew its committed end; false before, and while not.</summary>
    public bool IsCurrent => _current;

    /// <summary>
    /// The end of this broker's replica, what a writer applies before it decides; without a replica, the leader's high
    /// watermark as its last fetch answered.
    /// </summary>
    public long LocalEnd => _source.Replica()?.LogEndOffset ?? Interlocked.Read(ref _remoteHighWatermark);

    /// <summary>True while the state is fed over Fetch from the leader: no replica here, and a way to fetch.</summary>
    private bool Remote => _source.FetchFromLeader is not null && _source.Replica() is null;

    /// <summary>Records skipped because they did not decode.</summary>
    public long SkippedRecords => Interlocked.Read(ref _skipped);

    /// <summary>Starts the loop that catches up on every <see cref="Poke"/>.</summary>
    public void Start() => _loop = Task.Run(RunAsync);

    /// <summary>Something may have been committed: catch up soon (cheap; safe from any thread, the flush thread included).</summary>
    public void Poke() => _wake.Writer.TryWrite(true);

    /// <summary>Completes true once <see cref="AppliedEnd"/> reaches <paramref name="offset"/>, false after <paramref name="timeout"/>.</summary>
    public async Task<bool> WaitAppliedAsync(long offset, TimeSpan timeout, CancellationToken cancellationToken)
    {
        TaskCompletionSource<bool> done;
        lock (_waiters)
        {
            if (AppliedEnd >= offset) return true;
            done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((offset, done));
        }
        Poke();
        try
        {
            return await done.Task.WaitAsync(timeout, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return AppliedEnd >= offset;
        }
        finally
        {
            lock (_waiters) _waiters.RemoveAll(w => w.Done == done);
        }
    }

    /// <summary>
    /// Applies what is committed and not applied yet, on the caller's thread (the loop's, or the opener's at start).
    /// Throws what reading the replica throws.
    /// </summary>
    public void CatchUp()
    {
        lock (_gate)
        {
            var log = _source.Replica();
            Follow(log);
            if (log is null)
            {
                // No replica here (yet): behind, unless the leader is followed over Fetch (which says so itself).
                if (_source.FetchFromLeader is null) _current = false;
                return;
            }
            if (_source.Committed(log) is not { } committed)
            {
                // A follower that has not heard from its leader: the state may be behind.
                _current = false;
                return;
            }
            var applied = AppliedEnd;
            if ((_stateFrom is not null && !ReferenceEquals(_stateFrom, log)) || Diverged(log, applied))
            {
                _report(CoordinatorLogLevel.Warn, $"the replica of _schemas-0 no longer holds what the registry applied (applied to {applied}, " +
                    $"log {log.LogStartOffset}..{log.LogEndOffset}); rebuilding the registry's state from the log start.");
                _reset();
                applied = 0;
                Interlocked.Exchange(ref _appliedEnd, 0);
                _appliedEpoch = -1;
            }
            _stateFrom = log;
            if (committed > applied)
            {
                foreach (var record in log.ReplayRecords(applied, committed, undecodable: Undecodable))
                {
                    try
                    {
                        _apply(new CoordinatorRecord(record.Offset, record.Key, record.Value));
                    }
                    catch (Exception e) when (e is not OutOfMemoryException)
                    {
                        Undecodable(record.Offset, e);
                    }
                }
                Interlocked.Exchange(ref _appliedEnd, committed);
                _appliedEpoch = EpochOf(log, committed - 1);
            }
            _current = true;
        }
        CompleteWaiters();
    }

    /// <summary>Applies what a fetch from the leader returned (only records at or above <see cref="AppliedEnd"/>).</summary>
    private void ApplyFetched(LeaderFetch fetch)
    {
        lock (_gate)
        {
            var applied = AppliedEnd;
            if (fetch.LogStartOffset > applied)
            {
                // The records below the leader's log start are gone: the state is what remains.
                if (applied > 0) _reset();
                applied = fetch.LogStartOffset;
            }
            // Whatever a replica once fed it, the state is now the leader's committed prefix.
            _stateFrom = null;
            _appliedEpoch = -1;
            var next = applied;
            var batches = fetch.Batches;
            while (batches.Length >= RecordBatchHeader.HeaderSize)
            {
                var size = RecordBatchHeader.ReadTotalSize(batches.Span);
                if (size <= 0 || size > batches.Length) break;
                var batch = batches[..size];
                batches = batches[size..];
                var header = new RecordBatchHeader(batch.Span);
                if (header.LastOffset < applied) continue;
                next = Math.Max(next, header.LastOffset + 1);
                if (header.IsControl) continue;
                List<DecodedRecord> records;
                try
                {
                    records = RecordReader.ReadAll(batch);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    Undecodable(header.BaseOffset, e);
                    continue;
                }
                foreach (var record in records)
                {
                    if (record.Offset < applied) continue;
                    try
                    {
                        _apply(new CoordinatorRecord(record.Offset, record.Key, record.Value));
                    }
                    catch (Exception e) when (e is not OutOfMemoryException)
                    {
                        Undecodable(record.Offset, e);
                    }
                }
            }
            Interlocked.Exchange(ref _appliedEnd, next);
            Interlocked.Exchange(ref _remoteHighWatermark, fetch.HighWatermark);
            _current = next >= fetch.HighWatermark;
        }
        CompleteWaiters();
    }

    /// <summary>True when the replica no longer holds the history the state was built from (see the class comment).</summary>
    private bool Diverged(PartitionLog log, long applied)
    {
        if (applied == 0) return false;
        if (log.LogEndOffset < applied || log.LogStartOffset > applied) return true;
        if (_appliedEpoch < 0) return false;
        var (epoch, end) = log.EndOffsetForEpoch(_appliedEpoch);
        return epoch != _appliedEpoch || end < applied;
    }

    /// <summary>The leader epoch the replica's history gives <paramref name="offset"/>; -1 when it has none.</summary>
    private static int EpochOf(PartitionLog log, long offset)
    {
        var epoch = -1;
        foreach (var (e, start) in log.EpochEntries)
        {
            if (start > offset) break;
            epoch = e;
        }
        return epoch;
    }

    /// <summary>Subscribes to the replica's own durable-end advances (a broker alone, a follower's appends).</summary>
    private void Follow(PartitionLog? log)
    {
        if (ReferenceEquals(log, _subscribed)) return;
        if (_subscribed is not null) _subscribed.HighWatermarkAdvanced -= _onLocalAdvance;
        _subscribed = log;
        if (log is not null) log.HighWatermarkAdvanced += _onLocalAdvance;
    }

    private void Undecodable(long offset, Exception e)
    {
        Interlocked.Increment(ref _skipped);
        _report(CoordinatorLogLevel.Error, $"skipped an undecodable record of _schemas-0 at offset {offset}: {e.GetType().Name}: {e.Message}");
    }

    private void CompleteWaiters()
    {
        var applied = AppliedEnd;
        lock (_waiters)
        {
            foreach (var (offset, done) in _waiters)
                if (offset <= applied) done.TrySetResult(true);
        }
    }

    private async Task RunAsync()
    {
        var reader = _wake.Reader;
        try
        {
            while (true)
            {
                if (Remote)
                {
                    await FetchFromLeaderAsync().ConfigureAwait(false);
                    // A replica arrived meanwhile (the nudge that said so may have been spent here): follow it now.
                    if (!Remote) Poke();
                    continue;
                }
                if (!await reader.WaitToReadAsync(_stop.Token).ConfigureAwait(false)) return;
                reader.TryRead(out _);
                try
                {
                    CatchUp();
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // A read failure (the replica's directory went offline, ...): reads go to the leader meanwhile.
                    _current = false;
                    _report(CoordinatorLogLevel.Error, $"following _schemas-0 failed at offset {AppliedEnd}; retrying: {e.GetType().Name}: {e.Message}");
                    await Task.Delay(RetryAfterFailure, _time, _stop.Token).ConfigureAwait(false);
                    Poke();
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>One long poll of the leader (it waits for new records there); without an answer, a short pause or a nudge.</summary>
    private async Task FetchFromLeaderAsync()
    {
        LeaderFetch? fetch;
        try
        {
            fetch = await _source.FetchFromLeader!(AppliedEnd, _stop.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException and not OperationCanceledException)
        {
            _report(CoordinatorLogLevel.Debug, $"fetching _schemas-0 from its leader failed at offset {AppliedEnd}: {e.Message}");
            fetch = null;
        }
        if (fetch is not null)
        {
            ApplyFetched(fetch);
            return;
        }
        _current = false;
        try
        {
            await _wake.Reader.WaitToReadAsync(_stop.Token).AsTask().WaitAsync(RemoteRetry, _time, _stop.Token).ConfigureAwait(false);
            _wake.Reader.TryRead(out _);
        }
        catch (TimeoutException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _wake.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
        lock (_gate) Follow(null);
        lock (_waiters)
        {
            foreach (var (_, done) in _waiters) done.TrySetResult(false);
        }
    }
}
