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
        // Known to the cluster, wherever its replicas are (this broker need not hold one). A group's partition of
        // __consumer_offsets (TxnOffsetCommit v5 adds it) is not checked, as AddOffsetsToTxn does not check it.
        var unknown = partitions.Where(p => p.Topic != GroupSettings.OffsetsTopic && !coordinator.Topics.HasPartition(p.Topic, p.Partition)).ToHashSet();
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

    /// <summary>
    /// EndTxn: commits or aborts the open transaction; a retry of the finished end is answered as success. Returns the
    /// producer id and epoch the producer goes on with.
    /// <para>
    /// With <paramref name="bumpEpoch"/> (transaction version 2, EndTxn v5; KIP-890 part 2) every end bumps the epoch:
    /// the markers carry the new epoch and the producer's next transaction uses it, so a write of the ended transaction
    /// that arrives late is fenced in every partition. When the epoch is spent the producer goes on with a new producer
    /// id. A retry comes with the epoch the end replaced and gets the identity it would have got. An empty transaction
    /// (nothing was added) may be aborted, which bumps the epoch too; committing one is INVALID_TXN_STATE.
    /// </para>
    /// </summary>
    public async Task<(ErrorCode Error, long ProducerId, short Epoch)> EndTxnAsync(string transactionalId, long producerId, short epoch, bool commit, bool bumpEpoch)
    {
        if (bumpEpoch && _txns.TryGetValue(transactionalId, out var known) && IsRetryOfBumpedEnd(known, producerId, epoch, commit))
            return await AnswerEndAsync(known).ConfigureAwait(false);
        var (error, current) = Validate(transactionalId, producerId, epoch, allowPrepare: true);
        if (error != ErrorCode.None) return (error, -1, -1);
        switch (current!.State)
        {
            case TransactionState.Ongoing:
                var ended = await EndAsync(current, commit, bumpEpoch).ConfigureAwait(false);
                return ended == ErrorCode.None ? Decided(_txns[transactionalId]) : (ended, -1, -1);
            case TransactionState.Empty or TransactionState.CompleteCommit or TransactionState.CompleteAbort when bumpEpoch:
                return commit ? (ErrorCode.InvalidTxnState, -1, -1) : await AbortEmptyAsync(current).ConfigureAwait(false);
            case TransactionState.CompleteCommit when commit:
            case TransactionState.CompleteAbort when !commit:
                return (ErrorCode.None, current.ProducerId, current.Epoch);
            case TransactionState.PrepareCommit when commit:
            case TransactionState.PrepareAbort when !commit:
                return await AnswerEndAsync(current).ConfigureAwait(false);
            case TransactionState.PrepareCommit or TransactionState.PrepareAbort:
                return (ErrorCode.ConcurrentTransactions, -1, -1);
            default:
                return (ErrorCode.InvalidTxnState, -1, -1);
        }
    }

    /// <summary>The end of the producer's last transaction with the same decision, bumped from the epoch it sends.</summary>
    private static bool IsRetryOfBumpedEnd(TransactionMetadata m, long producerId, short epoch, bool commit) =>
        m.LastProducerId == producerId && m.LastEpoch == epoch && (m.ProducerId != producerId || m.Epoch != epoch) && m.State switch
        {
            TransactionState.PrepareCommit or TransactionState.CompleteCommit => commit,
            TransactionState.PrepareAbort or TransactionState.CompleteAbort => !commit,
            _ => false,
        };

    /// <summary>A retried end: its markers are tried again if some are still unwritten, then it is answered (<see cref="Decided"/>).</summary>
    private async Task<(ErrorCode, long, short)> AnswerEndAsync(TransactionMetadata m)
    {
        if (m.State is TransactionState.PrepareCommit or TransactionState.PrepareAbort)
        {
            await FinishAsync(m).ConfigureAwait(false);
            if (_txns.TryGetValue(m.TransactionalId, out var finished)) m = finished;
        }
        return Decided(m);
    }

    /// <summary>
    /// The identity a producer goes on with after its end: a durable decision is success, its markers retried here until
    /// written; only an end that moves the producer to a new id (known when it completes) is CONCURRENT_TRANSACTIONS
    /// until then, which the producer retries.
    /// </summary>
    private static (ErrorCode, long, short) Decided(TransactionMetadata m) =>
        m.State is TransactionState.PrepareCommit or TransactionState.PrepareAbort && m.EpochBumpedAtEnd && m.Epoch >= short.MaxValue - 1
            ? (ErrorCode.ConcurrentTransactions, -1, -1)
            : (ErrorCode.None, m.ProducerId, m.Epoch);

    /// <summary>Transaction version 2: aborting a transaction nothing was added to writes no marker, only the bumped epoch.</summary>
    private async Task<(ErrorCode, long, short)> AbortEmptyAsync(TransactionMetadata current)
    {
        var next = current.Clone();
        next.LastProducerId = current.ProducerId;
        next.LastEpoch = current.Epoch;
        next.Epoch = (short)(current.Epoch + 1);
        next.State = TransactionState.CompleteAbort;
        next.StartTimeMs = -1;
        next.LastUpdateMs = NowMs;
        next.Partitions.Clear();
        RotateIfSpent(next);
        return await PersistAsync(current.TransactionalId, next).ConfigureAwait(false) ? (ErrorCode.None, next.ProducerId, next.Epoch) : (ErrorCode.CoordinatorNotAvailable, -1, -1);
    }

    /// <summary>An epoch that cannot be bumped again: the producer goes on with a new producer id at epoch 0, as in Kafka.</summary>
    private void RotateIfSpent(TransactionMetadata next)
    {
        if (next.Epoch < short.MaxValue - 1) return;
        next.ProducerId = coordinator.Ids.Next();
        next.Epoch = 0;
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
    private async Task<ErrorCode> EndAsync(TransactionMetadata current, bool commit, bool bumpEpoch)
    {
        var prepare = current.Clone();
        if (bumpEpoch)
        {
            prepare.LastProducerId = current.ProducerId;
            prepare.LastEpoch = current.Epoch;
            prepare.Epoch = (short)(current.Epoch + 1);
            prepare.EpochBumpedAtEnd = true;
        }
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
        if (prepared.EpochBumpedAtEnd) RotateIfSpent(complete);
        complete.EpochBumpedAtEnd = false;
        return await PersistAsync(prepared.TransactionalId, complete).ConfigureAwait(false);
    }

    /// <summary>Aborts an open transaction with the epoch bumped, fencing the producer that opened it.</summary>
    private async Task<bool> AbortWithBumpAsync(TransactionMetadata current)
    {
        var prepare = current.Clone();
        prepare.LastProducerId = current.ProducerId;
        prepare.LastEpoch = current.Epoch;
        prepare.Epoch = (short)Math.Min(short.MaxValue, current.Epoch + 1);
        prepare.EpochBumpedAtEnd = prepare.Epoch > current.Epoch;
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
