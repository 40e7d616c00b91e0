using Tributary.Protocol.Messages;
using Tributary.Storage;

namespace Tributary.Broker.Handlers;

/// <summary>The Kafka error code for each storage failure.</summary>
internal static class StorageErrors
{
    public static ErrorCode ToErrorCode(this StorageError error) => error switch
    {
        StorageError.CorruptMessage => ErrorCode.CorruptMessage,
        StorageError.MessageTooLarge => ErrorCode.MessageTooLarge,
        StorageError.UnsupportedForMessageFormat => ErrorCode.UnsupportedForMessageFormat,
        StorageError.InvalidRecord => ErrorCode.InvalidRecord,
        StorageError.OffsetOutOfRange => ErrorCode.OffsetOutOfRange,
        StorageError.StorageFailure => ErrorCode.KafkaStorageError,
        StorageError.InvalidTimestamp => ErrorCode.InvalidTimestamp,
        StorageError.UnsupportedCompressionType => ErrorCode.UnsupportedCompressionType,
        StorageError.OutOfOrderSequence => ErrorCode.OutOfOrderSequenceNumber,
        StorageError.InvalidProducerEpoch => ErrorCode.InvalidProducerEpoch,
        StorageError.InvalidTxnState => ErrorCode.InvalidTxnState,
        StorageError.NotLeader => ErrorCode.NotLeaderOrFollower,
        _ => ErrorCode.UnknownServerError,
    };
}
