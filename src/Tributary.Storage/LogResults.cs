namespace Tributary.Storage;

/// <summary>
/// Who writes an append, as Kafka's <c>AppendOrigin</c>: a client's batches have their producer sequences checked (a
/// retry is answered as a duplicate, a gap refused); a coordinator's transactional batches (the group coordinator's
/// TxnOffsetCommit records) carry no sequence (-1) and are checked for the producer epoch and transaction state only.
/// </summary>
public enum AppendOrigin
{
    Client,
    Coordinator,

    /// <summary>
    /// A marker of a transaction-version-2 transaction (KIP-890 part 2), written with the epoch the coordinator bumped
    /// when the transaction ended: it must be above every epoch the producer used here, so a duplicated or late marker,
    /// which carries an epoch already seen, cannot close the producer's next transaction.
    /// </summary>
    EpochBumpingMarker,
}

/// <summary>Offsets assigned to one produce request's batches.</summary>
/// <param name="LogAppendTime">The broker timestamp written into the batches, -1 for CreateTime topics.</param>
public readonly record struct AppendResult(long BaseOffset, long LastOffset, long LogAppendTime, long LogStartOffset);

/// <summary>A record found by timestamp; Offset and Timestamp are -1 when there is none.</summary>
public readonly record struct TimestampLookup(long Offset, long Timestamp)
{
    public static TimestampLookup None => new(-1, -1);
}
