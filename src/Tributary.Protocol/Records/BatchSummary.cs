namespace Tributary.Protocol.Records;

/// <summary>What <see cref="RecordBatchValidator"/> learned from walking a produce request's batch headers.</summary>
public readonly record struct BatchSummary(
    int BatchCount,
    /// <summary>Offsets the request will consume: the sum of lastOffsetDelta + 1 over its batches.</summary>
    long RecordCount,
    /// <summary>baseTimestamp of the first batch.</summary>
    long FirstTimestamp,
    /// <summary>Largest maxTimestamp over the batches.</summary>
    long MaxTimestamp,
    long ProducerId,
    short ProducerEpoch,
    int BaseSequence,
    /// <summary>Sequence of the last record of the last batch (baseSequence + lastOffsetDelta), -1 without idempotence.</summary>
    int LastSequence,
    bool IsTransactional,
    bool IsControl,
    /// <summary>Bit i set when some batch uses <see cref="CompressionCodec"/> i.</summary>
    int CodecMask);
