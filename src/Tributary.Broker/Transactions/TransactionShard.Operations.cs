using Tributary.Broker.Groups;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Transactions;

/// <summary>The requests of the transaction coordinator, for the ids of one shard: InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, and the admin views.</summary>
internal sealed partial class TransactionShard
{
    /// <summary>
    /// InitProducerId with a transactional id: the id's producer id with its epoch bumped (a new id when the epoch is
    /// exhausted), after aborting any open transaction. KIP-360: a request carrying the producer's current id and epoch
    /// is a recovery bump; one carrying the previous epoch is a retry of the last bump and gets the current epoch again;
    /// any other is fenced.
    /// </summary>
    public async Task<(ErrorCode Error, long ProducerId, short Epoch)> InitProducerIdAsync(string transactionalId, int timeoutMs, long producerId, short epoch)
    {
        var fail = (ErrorCode e) => (e, -1L, (short)-1);
        if (!_txns.TryGetValue(transactionalId, out var current))
        {
            var fresh = new TransactionMetadata(transactionalId) { ProducerId = coordinator.Ids.Next(), Epoch = 0, TimeoutMs = timeoutMs, State = TransactionState.Empty, LastUpdateMs = NowMs };
            return await PersistAsync(transactionalId, fresh).ConfigureAwait(false) ? (ErrorCode.None, fresh.ProducerId, fresh.Epoch) : fail(ErrorCode.CoordinatorNotAvailable);
        }
        if (current.State is TransactionState.PrepareCommit or TransactionState.PrepareAbort)
        {
            await FinishAsync(current).ConfigureAwait(false);
            if (!_txns.TryGetValue(transactionalId, out current) || current.State is TransactionState.PrepareCommit or TransactionState.PrepareAbort)
                return fail(ErrorCode.ConcurrentTransactions);
        }
        if (producerId >= 0)
        {
            var isCurrent = producerId == current.ProducerId && epoch == current.Epoch;
            var isRetry = producerId == current.LastProducerId && epoch == current.LastEpoch && current.State == TransactionState.Empty;
            if (isRetry) return (ErrorCode.None, current.ProducerId, current.Epoch);
            if (!isCurrent) return fail(ErrorCode.ProducerFenced);
        }
        if (current.State == TransactionState.Ongoing)
        {
            if (!await AbortWithBumpAsync(current).ConfigureAwait(false)) return fail(ErrorCode.ConcurrentTransactions);
            current = _txns[transactionalId];
        }
        var next = current.Clone();
        next.LastProducerId = current.ProducerId;
        // Only a recovery bump (the producer sent its id and epoch) may be retried. A new instance's bump must
        // fence the old one: were its epoch remembered, the old instance's recovery request would pass as a retry
        // and get the new instance's epoch.
        next.LastEpoch = producerId >= 0 ? current.Epoch : (short)-1;
        if (current.Epoch >= short.MaxValue - 1)
        {
            next.ProducerId = coordinator.Ids.Next();
            next.Epoch = 0;
        }
        else
        {
            next.Epoch = (short)(current.Epoch + 1);
        }
        next.TimeoutMs = timeoutMs;
        next.State = TransactionState.Empty;
        next.StartTimeMs = -1;
        next.LastUpdateMs = NowMs;
        next.Partitions.Clear();
        return await PersistAsync(transactionalId, next).ConfigureAwait(false) ? (ErrorCode.None, next.ProducerId, next.Epoch) : fail(ErrorCode.CoordinatorNotAvailable);
    }

    /// <summary>
    /// AddPartitionsToTxn: partitions join the open transaction (opening one when none is). With
    /// <paramref name="verifyOnly"/> (KIP-890) nothing changes and partitions not in the transaction get
    /// TRANSACTION_ABORTABLE... reported as INVALID_TXN_STATE for them.
    /// </summary>
    public async Task<(ErrorCode Error, Dictionary<(string Topic, int Partition), ErrorCode> Partitions)> AddPartitionsAsync(
        string transactionalId, long producerId, short epoch, IReadOnlyList<(string Topic, int Partition)> partitions, bool verifyOnly)
    {
        var results = new Dictionary<(string, int), ErrorCode>();
        (ErrorCode, Dictionary<(string, int), ErrorCode>) All(ErrorCode e)
        {
            foreach (var p in partitions) results[p] = e;
            return (e, results);
        }
        var (error, current) = Validate(transactionalId, producerId, epoch);
        if (error != ErrorCode.None) return All(error);
        if (verifyOnly)
        {
            foreach (var p in partitions)
                results[p] = current!.State == TransactionState.Ongoing && current.Partitions.Contains(p) ? ErrorCode.None : ErrorCode.InvalidTxnState;
            return (ErrorCode.None, results);
        }
        // Known to the cluster, wherever its replicas are (this broker need not hold one).
        var unknown = partitions.Where(p => !coordinator.Topics.HasPartition(p.Topic, p.Partition)).ToHashSet();
        if (unknown.Count > 0)
        {
            foreach (var p in partitions) results[p] = unknown.Contains(p) ? ErrorCode.UnknownTopicOrPartition : ErrorCode.OperationNotAttempted;
            return (ErrorCode.None, results);
        }
        var next = StartOrContinue(current!);
        next.Partitions.UnionWith(partitions);
        if (!await PersistAsync(transactionalId, next).ConfigureAwait(false)) return All(ErrorCode.CoordinatorNotAvailable);
        return All(ErrorCode.None);
    }

    /// <summary>
    /// AddOffsetsToTxn: the group's partition of <c>__consumer_offsets</c> joins the transaction, as in Kafka, so its
    /// marker also lands there and commits or drops the offsets TxnOffsetCommit writes there (on the group's coordinator,
    /// whichever broker that is). The partition is not checked here: the topic is created by the group coordinator's
    /// first write, and a partition that never got one needs no marker (see TransactionMarkers).
    /// </summary>
    public async Task<ErrorCode> AddOffsetsAsync(string transactionalId, long producerId, short epoch, string groupId)
    {
        var (error, current) = Validate(transactionalId, producerId, epoch);
        if (error != ErrorCode.None) return error;
        var next = StartOrContinue(current!);
        next.Partitions.Add((GroupSettings.OffsetsTopic, coordinator.Groups.PartitionFor(groupId)));
        return await PersistAsync(transactionalId, next).ConfigureAwait(false) ? ErrorCode.None : ErrorCode.CoordinatorNotAvailable;
    }

    /// <summary>EndTxn: commits or aborts the open transaction; a retry of the finished end is answered as success.</summary>
    public async Task<ErrorCode> EndTxnAsync(string transactionalId, long producerId, short epoch, bool commit)
    {
        var (error, current) = Validate(transactionalId, producerId, epoch, allowPrepare: true);
        if (error != ErrorCode.None) return error;
        switch (current!.State)
        {
            case TransactionState.Ongoing:
                return await EndAsync(current, commit).ConfigureAwait(false);
            case TransactionState.CompleteCommit when commit:
            case TransactionState.CompleteAbort when !commit:
                return ErrorCode.None;
            case TransactionState.PrepareCommit when commit:
            case TransactionState.PrepareAbort when !commit:
                await FinishAsync(current).ConfigureAwait(false);
                return ErrorCode.None;
            case TransactionState.PrepareCommit or TransactionState.PrepareAbort:
                return ErrorCode.ConcurrentTransactions;
            default:
                return ErrorCode.InvalidTxnState;
        }
    }

    /// <summary>The id's state, or null when it is unknown.</summary>
    public TransactionDescription? Describe(string transactionalId) =>
        _txns.TryGetValue(transactionalId, out var m) ? Describe(m) : null;

    /// <summary>Every id of this shard.</summary>
    public List<TransactionDescription> DescribeAll() => [.. _txns.Values.Select(Describe)];

    private static TransactionDescription Describe(TransactionMetadata m) =>
        new(m.TransactionalId, m.State, m.ProducerId, m.Epoch, m.TimeoutMs, m.StartTimeMs, [.. m.Partitions]);

    // ---- state machine ------------------------------------------------------------------------------------------

    private (ErrorCode, TransactionMetadata?) Validate(string transactionalId, long producerId, short epoch, bool allowPrepare = false)
    {
        if (!_txns.TryGetValue(transactionalId, out var current) || current.ProducerId != producerId)
            return (ErrorCode.InvalidProducerIdMapping, null);
        if (epoch != current.Epoch) return (ErrorCode.ProducerFenced, null);
        if (!allowPrepare && current.State is TransactionState.PrepareCommit or TransactionState.PrepareAbort)
            return (ErrorCode.ConcurrentTransactions, null);
        return (ErrorCode.None, current);
    }

    private TransactionMetadata StartOrContinue(TransactionMetadata current)
    {
        var next = current.Clone();
        var now = NowMs;
        if (current.State != TransactionState.Ongoing)
        {
            next.State = TransactionState.Ongoing;
            next.StartTimeMs = now;
            next.Partitions.Clear();
        }
        next.LastUpdateMs = now;
        return next;
    }

    /// <summary>Decides (Prepare state written), then finishes. Success once the decision is durable.</summary>
    private async Task<ErrorCode> EndAsync(TransactionMetadata current, bool commit)
    {
        var prepare = current.Clone();
        prepare.State = commit ? TransactionState.PrepareCommit : TransactionState.PrepareAbort;
        prepare.LastUpdateMs = NowMs;
        if (!await PersistAsync(current.TransactionalId, prepare).ConfigureAwait(false)) return ErrorCode.CoordinatorNotAvailable;
        await FinishAsync(prepare).ConfigureAwait(false);
        return ErrorCode.None;
    }

    /// <summary>
    /// Writes the markers of a decided transaction, then its Complete state. The offsets it sent to groups need nothing
    /// more: the marker on each group's partition of <c>__consumer_offsets</c> commits or drops them there.
    /// </summary>
    private async Task<bool> FinishAsync(TransactionMetadata prepared)
    {
        var commit = prepared.State == TransactionState.PrepareCommit;
        if (!await WriteMarkersAsync(prepared, commit).ConfigureAwait(false)) return false;
        var complete = prepared.Clone();
        complete.State = commit ? TransactionState.CompleteCommit : TransactionState.CompleteAbort;
        complete.LastUpdateMs = NowMs;
        complete.Partitions.Clear();
        return await PersistAsync(prepared.TransactionalId, complete).ConfigureAwait(false);
    }

    /// <summary>Aborts an open transaction with the epoch bumped, fencing the producer that opened it.</summary>
    private async Task<bool> AbortWithBumpAsync(TransactionMetadata current)
    {
        var prepare = current.Clone();
        prepare.LastProducerId = current.ProducerId;
        prepare.LastEpoch = current.Epoch;
        prepare.Epoch = (short)Math.Min(short.MaxValue, current.Epoch + 1);
        prepare.State = TransactionState.PrepareAbort;
        prepare.LastUpdateMs = NowMs;
        if (!await PersistAsync(current.TransactionalId, prepare).ConfigureAwait(false)) return false;
        return await FinishAsync(prepare).ConfigureAwait(false);
    }

    /// <summary>
    /// The periodic check of this shard (a timer every transaction.abort.timed.out.transaction.cleanup.interval.ms on
    /// the injected clock): aborts transactions open past their timeout, retries unfinished ends and removes ids idle
    /// past transactional.id.expiration.ms. (Forgetting idle producers in every partition is broker-wide: the facade's.)
    /// </summary>
    private async Task CheckTimeoutsAsync()
    {
        var now = NowMs;
        foreach (var m in _txns.Values.ToList())
        {
            if (m.State == TransactionState.Ongoing && now - m.StartTimeMs > m.TimeoutMs)
            {
                Log.Info($"transaction coordinator: aborting {m.TransactionalId} (open for {now - m.StartTimeMs} ms, timeout {m.TimeoutMs} ms)");
                await AbortWithBumpAsync(m).ConfigureAwait(false);
            }
            else if (m.State is TransactionState.PrepareCommit or TransactionState.PrepareAbort)
            {
                await FinishAsync(m).ConfigureAwait(false);
            }
            else if (m.State is TransactionState.Empty or TransactionState.CompleteCommit or TransactionState.CompleteAbort
                && now - m.LastUpdateMs > Settings.TransactionalIdExpirationMs)
            {
                await PersistAsync(m.TransactionalId, null).ConfigureAwait(false);
            }
        }
    }
}
