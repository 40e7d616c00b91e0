using Tributary.Protocol.Records;
using Tributary.Storage;

namespace Tributary.Coordination;

/// <summary>A shard's partition: read back whole when the shard loads, appended to as the shard decides.</summary>
public interface ICoordinatorLog
{
    /// <summary>
    /// Every data record from the log start to the high watermark, oldest first, with the transaction markers among
    /// them (<see cref="CoordinatorRecord.Marker"/>). A stored batch that cannot be decoded is passed to
    /// <paramref name="undecodable"/> with its offset and skipped; anything else thrown fails the load.
    /// </summary>
    IEnumerable<CoordinatorRecord> Read(Action<long, Exception> undecodable);

    /// <summary>
    /// Appends the records as one batch (a transactional one of <paramref name="producer"/> when given); completes with
    /// the offset of its first record when they are durable under the flush policy. A producer epoch older than one the
    /// partition has seen for that producer id fails it (<see cref="StorageException"/>, InvalidProducerEpoch).
    /// </summary>
    Task<long> AppendAsync(IReadOnlyList<(byte[] Key, byte[]? Value)> records, long timestampMs, TransactionalProducer? producer = null);
}

/// <summary>
/// A partition of an internal topic in this broker's storage. The topic may not exist yet (Kafka creates
/// <c>__consumer_offsets</c> on first use): reading a missing partition reads nothing, and the first append creates it.
/// On a replicated partition an append completes once <paramref name="replicated"/> says every in-sync replica holds
/// it (the high watermark passed it), as Kafka's coordinators wait for their writes to be committed.
/// </summary>
public sealed class PartitionCoordinatorLog(Func<PartitionLog?> existing, Func<PartitionLog> create, Func<long, Task>? replicated = null) : ICoordinatorLog
{
    public IEnumerable<CoordinatorRecord> Read(Action<long, Exception> undecodable)
    {
        if (existing() is not { } log) yield break;
        foreach (var entry in log.ReplayWithMarkers(undecodable: undecodable))
        {
            yield return new CoordinatorRecord(entry.Record.Offset, entry.Marker is null ? entry.Record.Key : null, entry.Marker is null ? entry.Record.Value : null)
            {
                ProducerId = entry.ProducerId,
                ProducerEpoch = entry.ProducerEpoch,
                Marker = entry.Marker is { } commit ? (commit ? TransactionOutcome.Commit : TransactionOutcome.Abort) : null,
            };
        }
    }

    public async Task<long> AppendAsync(IReadOnlyList<(byte[] Key, byte[]? Value)> records, long timestampMs, TransactionalProducer? producer = null)
    {
        // A coordinator's transactional batch has no sequence (Kafka's RecordBatch.NO_SEQUENCE) and is appended with the
        // coordinator's origin, so the partition checks its producer epoch but no sequence.
        var builder = producer is { } p
            ? new RecordBatchBuilder { ProducerId = p.ProducerId, ProducerEpoch = p.ProducerEpoch, BaseSequence = -1, IsTransactional = true }
            : new RecordBatchBuilder();
        foreach (var (key, value) in records) builder.Add(timestampMs, key, value);
        var appended = await create().AppendAsync(builder.Build(), AppendOrigin.Coordinator).ConfigureAwait(false);
        if (replicated is not null) await replicated(appended.LastOffset + 1).ConfigureAwait(false);
        return appended.BaseOffset;
    }
}

/// <summary>
/// A partition in memory, for tests of a state machine without storage. Offsets are positions in the list; it keeps
/// transactional records and markers as a log would, and refuses a producer epoch older than one it has seen.
/// </summary>
public sealed class MemoryCoordinatorLog : ICoordinatorLog
{
    private readonly List<CoordinatorRecord> _entries = [];
    private readonly Dictionary<long, short> _epochs = [];

    public IEnumerable<CoordinatorRecord> Read(Action<long, Exception> undecodable)
    {
        List<CoordinatorRecord> copy;
        lock (_entries) copy = [.. _entries];
        return copy;
    }

    public Task<long> AppendAsync(IReadOnlyList<(byte[] Key, byte[]? Value)> records, long timestampMs, TransactionalProducer? producer = null)
    {
        lock (_entries)
        {
            if (producer is { } p && !Fence(p.ProducerId, p.ProducerEpoch))
                return Task.FromException<long>(new StorageException(StorageError.InvalidProducerEpoch, $"producer {p.ProducerId} epoch {p.ProducerEpoch} is fenced"));
            var first = (long)_entries.Count;
            foreach (var (key, value) in records)
            {
                _entries.Add(new CoordinatorRecord(_entries.Count, key, value is { } v ? new ReadOnlyMemory<byte>(v) : (ReadOnlyMemory<byte>?)null)
                {
                    ProducerId = producer?.ProducerId ?? -1,
                    ProducerEpoch = producer?.ProducerEpoch ?? -1,
                });
            }
            return Task.FromResult(first);
        }
    }

    /// <summary>Appends a transaction marker, as the transaction coordinator's marker write would; returns its offset.</summary>
    public long AppendMarker(long producerId, short producerEpoch, TransactionOutcome outcome)
    {
        lock (_entries)
        {
            if (!Fence(producerId, producerEpoch)) throw new StorageException(StorageError.InvalidProducerEpoch, $"producer {producerId} epoch {producerEpoch} is fenced");
            _entries.Add(new CoordinatorRecord(_entries.Count, null, null) { ProducerId = producerId, ProducerEpoch = producerEpoch, Marker = outcome });
            return _entries.Count - 1;
        }
    }

    private bool Fence(long producerId, short epoch)
    {
        if (_epochs.TryGetValue(producerId, out var seen) && epoch < seen) return false;
        _epochs[producerId] = epoch;
        return true;
    }

    /// <summary>The data records appended so far (markers left out).</summary>
    public IReadOnlyList<(byte[] Key, byte[]? Value)> Records
    {
        get
        {
            lock (_entries) return [.. _entries.Where(e => e.Marker is null).Select(e => (e.Key!.Value.ToArray(), e.Value?.ToArray()))];
        }
    }
}
