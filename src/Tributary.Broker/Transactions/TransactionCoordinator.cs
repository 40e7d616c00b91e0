using System.Threading.Channels;
using Tributary.Broker.Groups;
using Tributary.Broker.Metadata;
using Tributary.Protocol.Records;
using Tributary.Storage;

namespace Tributary.Broker.Transactions;

/// <summary>
/// The transaction coordinator: every transactional id of this broker, its producer id and epoch, and the state of
/// its current transaction.
///
/// One loop owns all state and runs one operation at a time to its end, awaiting its log writes: an operation
/// computes the next metadata on a copy, appends it to <c>__transaction_state</c> (partition chosen as Kafka does,
/// from the id's hash) and installs it only once the append is acknowledged. The loop is therefore a plain
/// sequential state machine; an operation's writes (state record, then control batches, then group offsets) happen
/// in order with nothing interleaved. At start the topic is replayed (last record per id wins) as the first
/// operation; transactions found in PrepareCommit/PrepareAbort are then finished, and open ones are left to finish
/// or time out.
///
/// Ending a transaction: PrepareCommit/PrepareAbort is written first — from then on the outcome is decided and
/// survives a crash — then a commit or abort marker (a control batch with the producer's id and epoch) is appended
/// to every partition of the transaction, the staged offsets are committed to their groups (commit only), and the
/// Complete state is written. A failure after the decision leaves the Prepare state, which the periodic check
/// retries; meanwhile requests for that id get CONCURRENT_TRANSACTIONS.
///
/// Fencing: InitProducerId bumps the epoch (aborting an open transaction first, with the bumped epoch), so a zombie
/// with the old epoch is refused here (PRODUCER_FENCED) and by every partition it wrote to (its markers carry the
/// new epoch). A transaction open longer than its timeout is aborted the same way.
/// </summary>
public sealed partial class TransactionCoordinator : IAsyncDisposable
{
    private readonly TopicCatalog _topics;
    private readonly GroupCoordinator _groups;
    private readonly ProducerIdManager _ids;
    private readonly TimeProvider _time;
    private readonly BrokerLog _log;
    private readonly Channel<Func<Task>> _work = Channel.CreateUnbounded<Func<Task>>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Dictionary<string, TransactionMetadata> _txns = new(StringComparer.Ordinal);
    // Published copy of each producer id's open transaction, read by Produce without the loop (KIP-890 verification).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<long, (short Epoch, bool Ongoing, HashSet<(string, int)> Partitions)> _open = new();

    /// <summary>Transactions in progress (a metrics gauge).</summary>
    public int OpenTransactionCount => _open.Values.Count(t => t.Ongoing);
    // Offsets staged by undecided transactions, per (group, topic, partition): OffsetFetch require_stable (KIP-447).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string, string, int), int> _pendingOffsets = new();
    private Task? _loop;
    private ITimer? _timer;
    private volatile bool _loaded;

    public TransactionCoordinator(TopicCatalog topics, GroupCoordinator groups, TransactionSettings settings, ProducerIdManager ids, TimeProvider time, BrokerLog log)
    {
        _topics = topics;
        _groups = groups;
        Settings = settings;
        _ids = ids;
        _time = time;
        _log = log;
    }

    public TransactionSettings Settings { get; }

    public bool IsLoaded => _loaded;

    /// <summary>Test fault: marker writes fail, so decided transactions stay in PrepareCommit/PrepareAbort.</summary>
    internal volatile bool FailMarkersForTests;

    private long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    public void Start()
    {
        _loop = Task.Run(RunLoopAsync);
        Post(async () =>
        {
            try
            {
                foreach (var m in Replay())
                {
                    _txns[m.TransactionalId] = m;
                    TrackPendingOffsets(m, +1);
                    _open[m.ProducerId] = (m.Epoch, m.State == TransactionState.Ongoing, [.. m.Partitions]);
                }
                foreach (var m in _txns.Values) _ids.Observe(Math.Max(m.ProducerId, m.LastProducerId));
                _loaded = true;
                foreach (var m in _txns.Values.Where(m => m.State is TransactionState.PrepareCommit or TransactionState.PrepareAbort).ToList())
                    await FinishAsync(m).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                _log.Error($"transaction coordinator: replay of {TransactionSettings.StateTopic} failed: {e.Message}");
                _loaded = true;
            }
        });
        var interval = TimeSpan.FromMilliseconds(Settings.AbortCheckIntervalMs);
        _timer = _time.CreateTimer(_ => Post(CheckTimeoutsAsync), null, interval, interval);
    }

    /// <summary>Waits until the replay at start has finished (for embedding and tests).</summary>
    public Task WaitUntilLoadedAsync() => Run(() => Task.FromResult(true));

    public async ValueTask DisposeAsync()
    {
        if (_loop is null) return;
        _timer?.Dispose();
        _work.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
        _loop = null;
    }

    private async Task RunLoopAsync()
    {
        var reader = _work.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (reader.TryRead(out var work))
            {
                try
                {
                    await work().ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    _log.Error($"transaction coordinator: {e}");
                }
            }
        }
    }

    private void Post(Func<Task> work)
    {
        if (!_work.Writer.TryWrite(work)) _log.Debug("transaction coordinator: work dropped after stop");
    }

    /// <summary>Runs <paramref name="work"/> on the loop, alone, to its end.</summary>
    private Task<T> Run<T>(Func<Task<T>> work)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_work.Writer.TryWrite(async () =>
        {
            try
            {
                done.TrySetResult(await work().ConfigureAwait(false));
            }
            catch (Exception e)
            {
                done.TrySetException(e);
            }
        }))
        {
            done.TrySetException(new ObjectDisposedException(nameof(TransactionCoordinator)));
        }
        return done.Task;
    }

    /// <summary>
    /// Server-side transaction defence (KIP-890 part 1): a transactional batch is accepted only from the current epoch
    /// of a producer whose open transaction includes the partition. Safe to call from any thread.
    /// </summary>
    public Protocol.Messages.ErrorCode VerifyTransactionalWrite(long producerId, short epoch, string topic, int partition)
    {
        if (!_loaded) return Protocol.Messages.ErrorCode.None; // the log's own epoch checks still apply
        if (!_open.TryGetValue(producerId, out var open)) return Protocol.Messages.ErrorCode.InvalidProducerIdMapping;
        if (epoch != open.Epoch) return Protocol.Messages.ErrorCode.InvalidProducerEpoch;
        return open.Ongoing && open.Partitions.Contains((topic, partition))
            ? Protocol.Messages.ErrorCode.None
            : Protocol.Messages.ErrorCode.InvalidTxnState;
    }

    /// <summary>True while an undecided transaction holds an offset for the partition (OffsetFetch answers UNSTABLE_OFFSET_COMMIT). Any thread.</summary>
    public bool HasPendingOffset(string groupId, string topic, int partition) => _pendingOffsets.ContainsKey((groupId, topic, partition));

    private void TrackPendingOffsets(TransactionMetadata m, int delta)
    {
        foreach (var key in m.PendingOffsets.Keys)
        {
            var count = _pendingOffsets.AddOrUpdate(key, delta, (_, c) => c + delta);
            if (count <= 0) _pendingOffsets.TryRemove(key, out _);
        }
    }

    // ---- persistence -------------------------------------------------------------------------------------------

    private PartitionLog StatePartition(string transactionalId)
    {
        var topic = _topics.Get(TransactionSettings.StateTopic)
            ?? _topics.Create(TransactionSettings.StateTopic, Settings.StatePartitions,
                new Dictionary<string, string> { ["cleanup.policy"] = "compact" }, isInternal: true)
            ?? _topics.Get(TransactionSettings.StateTopic)!;
        var partition = TransactionStateRecords.PartitionFor(transactionalId, topic.PartitionCount);
        return _topics.GetPartition(topic.Name, partition) ?? throw new InvalidOperationException($"{topic.Name}-{partition} has no log");
    }

    /// <summary>Writes <paramref name="next"/> (null removes the id) and installs it once acknowledged; false when the write failed.</summary>
    private async Task<bool> PersistAsync(string transactionalId, TransactionMetadata? next)
    {
        try
        {
            var batch = new RecordBatchBuilder()
                .Add(NowMs, TransactionStateRecords.Key(transactionalId), next is null ? null : TransactionStateRecords.Value(next))
                .Build();
            await StatePartition(transactionalId).AppendAsync(batch).ConfigureAwait(false);
        }
        catch (Exception e) when (e is StorageException or IOException or InvalidOperationException or ObjectDisposedException)
        {
            _log.Error($"transaction coordinator: writing the state of {transactionalId} failed: {e.Message}");
            return false;
        }
        // Produce and OffsetFetch read _open and _pendingOffsets from other threads: install the new state before
        // retiring the old one, so they see one or the other and never a gap where the transaction does not exist.
        _txns.Remove(transactionalId, out var previous);
        if (next is not null)
        {
            TrackPendingOffsets(next, +1);
            _txns[transactionalId] = next;
            _open[next.ProducerId] = (next.Epoch, next.State == TransactionState.Ongoing, [.. next.Partitions]);
        }
        if (previous is not null)
        {
            if (next is null || next.ProducerId != previous.ProducerId) _open.TryRemove(previous.ProducerId, out _);
            TrackPendingOffsets(previous, -1);
        }
        return true;
    }

    /// <summary>Every transactional id stored in the state topic (runs first on the loop).</summary>
    private List<TransactionMetadata> Replay()
    {
        var result = new Dictionary<string, TransactionMetadata>(StringComparer.Ordinal);
        var topic = _topics.Get(TransactionSettings.StateTopic);
        if (topic is null) return [];
        for (var p = 0; p < topic.PartitionCount; p++)
        {
            var log = _topics.GetPartition(topic.Name, p);
            if (log is null) continue;
            var partition = p;
            foreach (var record in log.ReplayRecords(undecodable: (offset, e) => ReportUndecodable(partition, offset, e)))
            {
                try
                {
                    if (record.Key is not { } key || TransactionStateRecords.ReadKey(key) is not { } id) continue;
                    if (record.Value is { } value) result[id] = TransactionStateRecords.ReadValue(id, value);
                    else result.Remove(id);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // Skipped, the id keeping its last good state: a failure here used to end the replay and load
                    // only the ids read before it (failing open with partial state).
                    ReportUndecodable(partition, record.Offset, e);
                }
            }
        }
        return [.. result.Values];
    }

    private void ReportUndecodable(int partition, long offset, Exception e) =>
        _log.Error($"transaction coordinator: skipped an undecodable record of {TransactionSettings.StateTopic}-{partition} at offset {offset}: {e.GetType().Name}: {e.Message}");

    // ---- markers -----------------------------------------------------------------------------------------------

    /// <summary>Appends a commit or abort marker for the transaction to each of its partitions; false if any failed.</summary>
    private async Task<bool> WriteMarkersAsync(TransactionMetadata m, bool commit)
    {
        if (FailMarkersForTests)
        {
            _log.Warn($"transaction coordinator: markers for {m.TransactionalId} withheld (test fault)");
            return false;
        }
        var now = NowMs;
        var key = new byte[] { 0, 0, 0, commit ? (byte)1 : (byte)0 };
        var value = new byte[] { 0, 0, 0, 0, 0, 0 }; // version 0, coordinator epoch 0
        var appends = new List<Task<AppendResult>>();
        foreach (var (topic, partition) in m.Partitions)
        {
            var log = _topics.GetPartition(topic, partition);
            if (log is null) continue; // deleted since: nothing left to mark
            var batch = new RecordBatchBuilder { ProducerId = m.ProducerId, ProducerEpoch = m.Epoch, IsTransactional = true, IsControl = true }
                .Add(now, key, value).Build();
            try
            {
                appends.Add(log.AppendAsync(batch).AsTask());
            }
            catch (Exception e) when (e is StorageException or ObjectDisposedException)
            {
                appends.Add(Task.FromException<AppendResult>(e));
            }
        }
        try
        {
            await Task.WhenAll(appends).ConfigureAwait(false);
            return true;
        }
        catch (Exception e)
        {
            _log.Error($"transaction coordinator: writing markers for {m.TransactionalId} failed: {e.Message}");
            return false;
        }
    }
}
