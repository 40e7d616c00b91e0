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
}

public sealed class StorageException : Exception
{
    public StorageException(StorageError error, string message, Exception? inner = null)
        : base(message, inner)
    {
        Error = error;
    }

    public StorageError Error { get; }
}
