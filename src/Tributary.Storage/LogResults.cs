namespace Tributary.Storage;

/// <summary>Offsets assigned to one produce request's batches.</summary>
/// <param name="LogAppendTime">The broker timestamp written into the batches, -1 for CreateTime topics.</param>
public readonly record struct AppendResult(long BaseOffset, long LastOffset, long LogAppendTime, long LogStartOffset);

/// <summary>A record found by timestamp; Offset and Timestamp are -1 when there is none.</summary>
public readonly record struct TimestampLookup(long Offset, long Timestamp)
{
    public static TimestampLookup None => new(-1, -1);
}
