using Tributary.Protocol.Records;

namespace Tributary.Storage.Cleaning;

/// <summary>The last batch a still-known producer wrote (ProducerStateManager), which compaction must not erase.</summary>
/// <param name="LastDataOffset">Last offset of its last data batch; -1 when it wrote only markers since its epoch began.</param>
internal readonly record struct ProducerLastBatch(long LastDataOffset, short Epoch);

/// <summary>
/// Kafka's transaction rules for one cleaning walk, fed the batches in offset order (its CleanedTransactionMetadata):
/// <list type="bullet">
/// <item>A transactional data batch is aborted when an aborted transaction of its producer started at or before it
/// (the aborted-transaction index) and its abort marker has not been passed yet. Aborted batches never enter the key
/// map and their records are removed.</item>
/// <item>A marker can go (<see cref="OnControlBatch"/> true) only once no data of its transaction was seen in this
/// walk. The walk starts at the log start, so "seen" means "still in the log": the first pass that removes a
/// transaction's data keeps its marker; a later pass, finding no data, stamps the marker with a delete horizon
/// (delete.retention.ms); a pass after the horizon removes it.</item>
/// <item>The batch holding an active producer's last sequence (or its last marker, when it wrote no data in its
/// current epoch) is kept, emptied if need be (<see cref="IsLastOfProducer"/>), so the producer state rebuilt by
/// replaying the log after a restart still knows the producer's epoch and next sequence.</item>
/// </list>
/// Only decided transactions are ever walked: the cleaner stops below the last stable offset.
/// </summary>
internal sealed class TransactionTracker
{
    private readonly Queue<AbortedTxn> _aborted;
    private readonly Dictionary<long, (AbortedTxn Txn, bool Seen)> _ongoingAborted = [];
    private readonly HashSet<long> _ongoingCommitted = [];
    private readonly IReadOnlyDictionary<long, ProducerLastBatch> _lastBatches;

    public TransactionTracker(IEnumerable<AbortedTxn> aborted, IReadOnlyDictionary<long, ProducerLastBatch>? lastBatches = null)
    {
        _aborted = new Queue<AbortedTxn>(aborted.OrderBy(t => t.FirstOffset));
        _lastBatches = lastBatches ?? new Dictionary<long, ProducerLastBatch>();
    }

    /// <summary>A data batch: true when it belongs to an aborted transaction (its records go).</summary>
    public bool OnDataBatch(in RecordBatchHeader header)
    {
        ConsumeAbortedUpTo(header.LastOffset);
        if (!header.IsTransactional)
        {
            return false;
        }

        long pid = header.ProducerId;
        if (_ongoingAborted.TryGetValue(pid, out var aborted))
        {
            _ongoingAborted[pid] = (aborted.Txn, true);
            return true;
        }

        _ongoingCommitted.Add(pid);
        return false;
    }

    /// <summary>A control batch: true when no data of its transaction was seen, so the marker may go (after its horizon).</summary>
    /// <param name="batch">The whole batch; its single record's key holds the marker type.</param>
    public bool OnControlBatch(in RecordBatchHeader header, ReadOnlySpan<byte> batch)
    {
        ConsumeAbortedUpTo(header.LastOffset);
        if (header.RecordsCount == 0)
        {
            return true; // emptied by an earlier pass
        }

        long pid = header.ProducerId;
        return ProducerStateManager.ControlType(batch) switch
        {
            0 => !(_ongoingAborted.Remove(pid, out var aborted) && aborted.Seen),
            1 => !_ongoingCommitted.Remove(pid),
            _ => false, // a marker type this broker does not know: keep it
        };
    }

    public bool IsLastOfProducer(in RecordBatchHeader header)
    {
        if (header.ProducerId < 0 || !_lastBatches.TryGetValue(header.ProducerId, out var last))
        {
            return false;
        }

        return last.LastDataOffset >= 0
            ? !header.IsControl && header.LastOffset == last.LastDataOffset
            : header.IsControl && header.ProducerEpoch == last.Epoch;
    }

    private void ConsumeAbortedUpTo(long offset)
    {
        while (_aborted.TryPeek(out var next) && next.FirstOffset <= offset)
        {
            _aborted.Dequeue();
            _ongoingAborted[next.ProducerId] = (next, false);
        }
    }
}
