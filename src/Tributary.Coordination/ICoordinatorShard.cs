namespace Tributary.Coordination;

/// <summary>One record of a coordinator's internal partition, as the loader hands it to a shard.</summary>
public readonly record struct CoordinatorRecord(long Offset, ReadOnlyMemory<byte>? Key, ReadOnlyMemory<byte>? Value)
{
    /// <summary>
    /// The producer whose transactional batch holds this record (a shard's <see cref="TransactionalProducer"/> append, or
    /// the producer a marker ends the transaction of); -1 for a plain record.
    /// </summary>
    public long ProducerId { get; init; } = -1;

    public short ProducerEpoch { get; init; } = -1;

    /// <summary>
    /// Set on a transaction marker (control batch) met in the log: the outcome for <see cref="ProducerId"/>. Key and
    /// value are null then, and the runtime hands it to <see cref="ICoordinatorShard.ReplayEndTransaction"/>.
    /// </summary>
    public TransactionOutcome? Marker { get; init; }
}

/// <summary>How a transaction ended, as its marker says.</summary>
public enum TransactionOutcome
{
    Abort,
    Commit,
}

/// <summary>
/// The producer a transactional append is written for: the batch carries its id and epoch and the transactional flag,
/// so it belongs to that producer's open transaction in the partition and is decided by the marker the transaction
/// coordinator later writes there (as Kafka's group coordinator writes TxnOffsetCommit).
/// </summary>
public readonly record struct TransactionalProducer(long ProducerId, short ProducerEpoch);

/// <summary>
/// The state machine of one shard (one partition of an internal topic). The runtime calls every member on the shard's
/// event loop, one call at a time, so an implementation holds plain collections and no locks.
/// </summary>
public interface ICoordinatorShard
{
    /// <summary>
    /// Applies one record read back from the partition (last value per key wins; a null value is a tombstone).
    /// Throwing skips that record: the runtime reports it and counts it, and the replay goes on, as Kafka's loaders
    /// skip what they cannot decode.
    /// </summary>
    void Replay(CoordinatorRecord record);

    /// <summary>
    /// Replay met a transaction marker at <paramref name="offset"/>: the records <paramref name="producerId"/> wrote
    /// transactionally before it are committed or aborted (Kafka's <c>replayEndTransactionMarker</c>). Shards that never
    /// append transactionally ignore it.
    /// </summary>
    void ReplayEndTransaction(long producerId, short producerEpoch, TransactionOutcome outcome, long offset)
    {
    }

    /// <summary>The partition has been read to its end; from the next event on, operations run.</summary>
    void OnLoaded();

    /// <summary>
    /// The shard is going away (leadership moved, or the broker stops): answer whatever is parked. Timers are already
    /// cancelled and every append this shard started has delivered its outcome.
    /// </summary>
    void OnUnloaded();
}

/// <summary>Where a shard is in its life.</summary>
public enum ShardStatus
{
    /// <summary>Not hosted here (never loaded, or unloaded): requests get NOT_COORDINATOR.</summary>
    NotLoaded,

    /// <summary>Replaying: requests get COORDINATOR_LOAD_IN_PROGRESS.</summary>
    Loading,

    /// <summary>Serving.</summary>
    Loaded,

    /// <summary>
    /// The replay failed (the partition could not be read, or the shard could not be built from it). The shard stays
    /// unavailable, answering COORDINATOR_LOAD_IN_PROGRESS, until it is unloaded and loaded again: serving partial
    /// state could hand out a fenced producer epoch or an offset older than a committed one.
    /// </summary>
    Failed,
}

/// <summary>How bad a runtime message is; the host maps it to its logger.</summary>
public enum CoordinatorLogLevel
{
    Debug,
    Info,
    Warn,
    Error,
}
