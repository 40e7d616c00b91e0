namespace Tributary.Coordination;

/// <summary>One record of a coordinator's internal partition, as the loader hands it to a shard.</summary>
public readonly record struct CoordinatorRecord(long Offset, ReadOnlyMemory<byte>? Key, ReadOnlyMemory<byte>? Value);

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
