using Tributary.Protocol.Records;
using Tributary.Storage;

namespace Tributary.Coordination;

/// <summary>A shard's partition: read back whole when the shard loads, appended to as the shard decides.</summary>
public interface ICoordinatorLog
{
    /// <summary>
    /// Every data record from the log start to the high watermark, oldest first. A stored batch that cannot be decoded
    /// is passed to <paramref name="undecodable"/> with its offset and skipped; anything else thrown fails the load.
    /// </summary>
    IEnumerable<CoordinatorRecord> Read(Action<long, Exception> undecodable);

    /// <summary>Appends the records as one batch; completes when they are durable under the flush policy.</summary>
    Task AppendAsync(IReadOnlyList<(byte[] Key, byte[]? Value)> records, long timestampMs);
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
        foreach (var record in log.ReplayRecords(undecodable: undecodable))
            yield return new CoordinatorRecord(record.Offset, record.Key, record.Value);
    }

    public async Task AppendAsync(IReadOnlyList<(byte[] Key, byte[]? Value)> records, long timestampMs)
    {
        var builder = new RecordBatchBuilder();
        foreach (var (key, value) in records) builder.Add(timestampMs, key, value);
        var appended = await create().AppendAsync(builder.Build()).ConfigureAwait(false);
        if (replicated is not null) await replicated(appended.LastOffset + 1).ConfigureAwait(false);
    }
}

/// <summary>A partition in memory, for tests of a state machine without storage.</summary>
public sealed class MemoryCoordinatorLog : ICoordinatorLog
{
    private readonly List<(byte[] Key, byte[]? Value)> _records = [];

    public IEnumerable<CoordinatorRecord> Read(Action<long, Exception> undecodable)
    {
        List<(byte[] Key, byte[]? Value)> copy;
        lock (_records) copy = [.. _records];
        for (var i = 0; i < copy.Count; i++)
            yield return new CoordinatorRecord(i, copy[i].Key, copy[i].Value is { } v ? new ReadOnlyMemory<byte>(v) : (ReadOnlyMemory<byte>?)null);
    }

    public Task AppendAsync(IReadOnlyList<(byte[] Key, byte[]? Value)> records, long timestampMs)
    {
        lock (_records) _records.AddRange(records);
        return Task.CompletedTask;
    }

    /// <summary>The records appended so far.</summary>
    public IReadOnlyList<(byte[] Key, byte[]? Value)> Records
    {
        get
        {
            lock (_records) return [.. _records];
        }
    }
}
