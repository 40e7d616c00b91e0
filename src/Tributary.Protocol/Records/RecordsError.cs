namespace Tributary.Protocol.Records;

/// <summary>Why a produce request's records were rejected; each maps to one Kafka error code.</summary>
public enum RecordsError
{
    None,
    /// <summary>CORRUPT_MESSAGE (2): framing or CRC wrong.</summary>
    CorruptMessage,
    /// <summary>MESSAGE_TOO_LARGE (10): one batch exceeds max.message.bytes.</summary>
    MessageTooLarge,
    /// <summary>UNSUPPORTED_FOR_MESSAGE_FORMAT (43): magic 0 or 1.</summary>
    UnsupportedForMessageFormat,
    /// <summary>INVALID_RECORD (87): well-framed but semantically wrong (counts, deltas).</summary>
    InvalidRecord,
    /// <summary>UNSUPPORTED_COMPRESSION_TYPE (76): codec id unknown, or zstd where the caller forbids it.</summary>
    UnsupportedCompressionType,
}
