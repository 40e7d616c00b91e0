namespace Tributary.Storage;

/// <summary>Sequence range and offsets of one batch a producer wrote, kept to answer its retries.</summary>
public readonly record struct ProducerBatch(int FirstSequence, int LastSequence, long FirstOffset, long LastOffset, long TimestampMs);

/// <summary>
/// What a partition remembers about one producer id: its epoch, the last <see cref="MaxCachedBatches"/> batches
/// (so a retried batch is recognised and answered with its original offsets) and the first offset of its open
/// transaction, if any. Entries are copied before a change (<see cref="Clone"/>), so a failed append leaves the
/// state as it was.
/// </summary>
public sealed class ProducerStateEntry
{
    /// <summary>Kafka keeps the last five batches: librdkafka and the Java client keep at most five in flight.</summary>
    public const int MaxCachedBatches = 5;

    public ProducerStateEntry(long producerId) => ProducerId = producerId;

    public long ProducerId { get; }
    public short Epoch { get; set; } = -1;
    public int CoordinatorEpoch { get; set; } = -1;
    public long LastTimestampMs { get; set; } = -1;
    /// <summary>First offset of the producer's open transaction in this partition; -1 when none.</summary>
    public long CurrentTxnFirstOffset { get; set; } = -1;
    public List<ProducerBatch> Batches { get; } = [];

    public int LastSequence => Batches.Count == 0 ? -1 : Batches[^1].LastSequence;
    public long LastOffset => Batches.Count == 0 ? -1 : Batches[^1].LastOffset;

    public ProducerStateEntry Clone()
    {
        var copy = new ProducerStateEntry(ProducerId)
        {
            Epoch = Epoch,
            CoordinatorEpoch = CoordinatorEpoch,
            LastTimestampMs = LastTimestampMs,
            CurrentTxnFirstOffset = CurrentTxnFirstOffset,
        };
        copy.Batches.AddRange(Batches);
        return copy;
    }

    public void AddBatch(ProducerBatch batch)
    {
        Batches.Add(batch);
        if (Batches.Count > MaxCachedBatches) Batches.RemoveAt(0);
    }

    public ProducerBatch? FindDuplicate(int firstSequence, int lastSequence)
    {
        foreach (var b in Batches)
            if (b.FirstSequence == firstSequence && b.LastSequence == lastSequence) return b;
        return null;
    }
}

/// <summary>A transaction that ended in this partition with an abort marker at <paramref name="LastOffset"/>.</summary>
public readonly record struct AbortedTxn(long ProducerId, long FirstOffset, long LastOffset, long LastStableOffset);

/// <summary>An active producer of a partition as DescribeProducers reports it.</summary>
public readonly record struct ActiveProducer(long ProducerId, short Epoch, int LastSequence, long LastTimestampMs, int CoordinatorEpoch, long CurrentTxnStartOffset);
