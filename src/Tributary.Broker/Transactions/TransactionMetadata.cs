namespace Tributary.Broker.Transactions;

/// <summary>Kafka's transaction states (the names DescribeTransactions and ListTransactions report).</summary>
public enum TransactionState : byte
{
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

/// <summary>
/// One transactional id as the coordinator keeps it, and as it is stored in <c>__transaction_state</c>. Owned by its
/// shard's loop (<see cref="TransactionShard"/>); copied (<see cref="Clone"/>) before a change so that a failed write changes nothing.
/// </summary>
public sealed class TransactionMetadata(string transactionalId)
{
    public string TransactionalId { get; } = transactionalId;
    public long ProducerId { get; set; } = -1;
    public long LastProducerId { get; set; } = -1;
    public short Epoch { get; set; } = -1;
    public short LastEpoch { get; set; } = -1;
    public int TimeoutMs { get; set; }
    public TransactionState State { get; set; }
    public long StartTimeMs { get; set; } = -1;
    public long LastUpdateMs { get; set; }
    /// <summary>
    /// The decided transaction's markers carry an epoch above its records' (a transaction-version-2 end, or an abort that
    /// fenced its producer), so each partition can refuse a marker whose epoch it has already seen. Kept only in memory:
    /// a coordinator that takes over a decided transaction writes its markers without that check.
    /// </summary>
    public bool EpochBumpedAtEnd { get; set; }

    /// <summary>The transaction's partitions, the groups' partitions of <c>__consumer_offsets</c> among them (AddOffsetsToTxn).</summary>
    public SortedSet<(string Topic, int Partition)> Partitions { get; } = [];

    public TransactionMetadata Clone()
    {
        var copy = new TransactionMetadata(TransactionalId)
        {
            ProducerId = ProducerId,
            LastProducerId = LastProducerId,
            Epoch = Epoch,
            LastEpoch = LastEpoch,
            TimeoutMs = TimeoutMs,
            State = State,
            StartTimeMs = StartTimeMs,
            LastUpdateMs = LastUpdateMs,
            EpochBumpedAtEnd = EpochBumpedAtEnd,
        };
        copy.Partitions.UnionWith(Partitions);
        return copy;
    }
}
