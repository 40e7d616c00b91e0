namespace Tributary.Storage;

/// <summary>Storage failures, each mapping to one Kafka error code.</summary>
public enum StorageError
{
    CorruptMessage,
    MessageTooLarge,
    UnsupportedForMessageFormat,
    InvalidRecord,
    OffsetOutOfRange,
    /// <summary>Disk or IO failure: KAFKA_STORAGE_ERROR (56).</summary>
    StorageFailure,
    InvalidTimestamp,
    UnsupportedCompressionType,
    /// <summary>Idempotence: a sequence gap or a new epoch not starting at 0 (OUT_OF_ORDER_SEQUENCE_NUMBER, 45).</summary>
    OutOfOrderSequence,
    /// <summary>A producer epoch older than the partition has seen (INVALID_PRODUCER_EPOCH, 47).</summary>
    InvalidProducerEpoch,
    /// <summary>A non-transactional write by a producer with an open transaction (INVALID_TXN_STATE, 48).</summary>
    InvalidTxnState,
    /// <summary>A leader's append to a replica that follows another broker now (NOT_LEADER_OR_FOLLOWER, 6).</summary>
    NotLeader,
}

public sealed class StorageException : Exception
{
    public StorageException(StorageError error, string message, Exception? inner = null)
        : base(message, inner)
    {
        Error = error;
    }

    public StorageError Error { get; }

    /// <summary>Per-record reasons for an InvalidRecord refusal (the produce response's record_errors).</summary>
    public IReadOnlyList<RecordError> RecordErrors { get; init; } = [];
}

/// <summary>Why one record of a refused batch was rejected: its index in the batch and a message.</summary>
public readonly record struct RecordError(int BatchIndex, string Message);
