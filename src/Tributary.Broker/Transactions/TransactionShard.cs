using Tributary.Coordination;
using Tributary.Protocol.Records;
using Tributary.Storage;

namespace Tributary.Broker.Transactions;

/// <summary>
/// The transaction state machine for the transactional ids of one partition of <c>__transaction_state</c> (those
/// whose <see cref="TransactionStateRecords.PartitionFor"/> is <see cref="CoordinatorContext.Partition"/>), run by the
/// coordination runtime on the shard's own loop: one call at a time, so it holds plain collections.
///
/// Every operation runs exclusively (the loop awaits it to its end, writes included), so the shard is a plain
/// sequential state machine and an operation's writes (state record, then control batches, then the Complete state) happen
/// in order with nothing interleaved. A change is computed on a copy, appended to the partition, and installed only
/// once the append is durable (append, then apply): what a client was told is what a restart replays.
///
/// Loading replays the partition (last record per id wins, a tombstone removes the id, a record that does not decode is
/// skipped by the runtime); transactions found in PrepareCommit/PrepareAbort are then finished, and open ones are left
/// to finish or time out. A periodic timer on the injected clock aborts transactions open past their timeout.
///
/// Ending a transaction: PrepareCommit/PrepareAbort is written first — from then on the outcome is decided and
/// survives a crash — then a commit or abort marker (a control batch with the producer's id and epoch) is appended
/// to every partition of the transaction, the groups' partitions of <c>__consumer_offsets</c> included (there the
/// marker commits or drops the offsets TxnOffsetCommit wrote), and the Complete state is written. A failure after the decision leaves the Prepare state, which the periodic check
/// retries; meanwhile requests for that id get CONCURRENT_TRANSACTIONS.
///
/// Fencing: InitProducerId bumps the epoch (aborting an open transaction first, with the bumped epoch), so a zombie
/// with the old epoch is refused here (PRODUCER_FENCED) and by every partition it wrote to (its markers carry the
/// new epoch). A transaction open longer than its timeout is aborted the same way.
/// </summary>
internal sealed partial class TransactionShard(CoordinatorContext context, TransactionCoordinator coordinator) : ICoordinatorShard
{
    private readonly Dictionary<string, TransactionMetadata> _txns = new(StringComparer.Ordinal);

    /// <summary>Transactions whose markers failed and have a retry scheduled (one at a time each).</summary>
    private readonly HashSet<string> _markerRetries = new(StringComparer.Ordinal);

    private static readonly TimeSpan MarkerRetryDelay = TimeSpan.FromMilliseconds(300);
    private bool _serving;

    private long NowMs => context.NowMs;

    private BrokerLog Log => coordinator.Log;

    private TransactionSettings Settings => coordinator.Settings;

    // ---- load and unload ---------------------------------------------------------------------------------------

    public void Replay(CoordinatorRecord record)
    {
        if (record.Key is not { } key || TransactionStateRecords.ReadKey(key) is not { } id) return;
        // A value that does not decode throws: the runtime skips and counts it, and the id keeps its last good state.
        if (record.Value is { } value) _txns[id] = TransactionStateRecords.ReadValue(id, value, coordinator.Groups.PartitionFor);
        else _txns.Remove(id);
    }

    public void OnLoaded()
    {
        foreach (var m in _txns.Values)
        {
            coordinator.Publish(m, previous: null);
            coordinator.Ids.Observe(Math.Max(m.ProducerId, m.LastProducerId));
        }
        _serving = true;
        coordinator.ShardServing(context.Partition);
        var prepared = _txns.Values.Where(m => m.State is TransactionState.PrepareCommit or TransactionState.PrepareAbort).ToList();
        if (prepared.Count > 0)
        {
            // Queued ahead of any request: the loop takes requests only once this call has returned.
            context.Post(async () =>
            {
                foreach (var m in prepared) await FinishAsync(m).ConfigureAwait(false);
            });
        }
        var interval = TimeSpan.FromMilliseconds(Settings.AbortCheckIntervalMs);
        context.Schedule(interval, CheckTimeoutsAsync, period: interval);
    }

    public void OnUnloaded()
    {
        if (!_serving) return;
        _serving = false;
        foreach (var m in _txns.Values) coordinator.Publish(next: null, previous: m);
        coordinator.ShardStopped(context.Partition);
    }

    // ---- persistence -------------------------------------------------------------------------------------------

    /// <summary>Writes <paramref name="next"/> (null removes the id) and installs it once durable; false when the write failed.</summary>
    private async Task<bool> PersistAsync(string transactionalId, TransactionMetadata? next)
    {
        try
        {
            await context.AppendAsync([(TransactionStateRecords.Key(transactionalId), next is null ? null : TransactionStateRecords.Value(next))]).ConfigureAwait(false);
        }
        catch (Exception e) when (e is StorageException or IOException or InvalidOperationException or ObjectDisposedException)
        {
            Log.Error($"transaction coordinator: writing the state of {transactionalId} failed: {e.Message}");
            return false;
        }
        _txns.Remove(transactionalId, out var previous);
        if (next is not null) _txns[transactionalId] = next;
        coordinator.Publish(next, previous);
        return true;
    }

    // ---- markers -----------------------------------------------------------------------------------------------

    /// <summary>Writes a commit or abort marker on the leader of each of the transaction's partitions; false if any failed.</summary>
    private async Task<bool> WriteMarkersAsync(TransactionMetadata m, bool commit)
    {
        if (coordinator.FailMarkersForTests)
        {
            Log.Warn($"transaction coordinator: markers for {m.TransactionalId} withheld (test fault)");
            return false;
        }
        var failures = await coordinator.Markers.WriteAsync(m.ProducerId, m.Epoch, commit, coordinatorEpoch: 0, m.Partitions, m.EpochBumpedAtEnd).ConfigureAwait(false);
        if (failures.Count == 0) return true;
        // Retried until every leader took its marker, as Kafka's marker channel retries: soon (a leader moved, and the
        // partitions' read_committed readers wait on this transaction), and by the periodic check as well.
        Log.Warn($"transaction coordinator: writing markers for {m.TransactionalId} failed, to be retried: {string.Join("; ", failures)}");
        if (_markerRetries.Add(m.TransactionalId))
        {
            context.Schedule(MarkerRetryDelay, async () =>
            {
                _markerRetries.Remove(m.TransactionalId);
                if (_txns.TryGetValue(m.TransactionalId, out var current) && current.State is TransactionState.PrepareCommit or TransactionState.PrepareAbort)
                    await FinishAsync(current).ConfigureAwait(false);
            });
        }
        return false;
    }
}
