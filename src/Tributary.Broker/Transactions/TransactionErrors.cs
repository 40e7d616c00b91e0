using Tributary.Protocol.Messages;

namespace Tributary.Broker.Transactions;

/// <summary>KIP-588: clients before a given request version know INVALID_PRODUCER_EPOCH, not PRODUCER_FENCED.</summary>
public static class TransactionErrors
{
    public static ErrorCode ForVersion(ErrorCode error, short version, short fencedSince) =>
        error == ErrorCode.ProducerFenced && version < fencedSince ? ErrorCode.InvalidProducerEpoch : error;
}
