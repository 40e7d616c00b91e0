namespace Tributary.Storage.Cleaning;

/// <summary>Broker-level cleaner settings (Kafka's log.cleaner.* names).</summary>
public sealed record CleanerOptions
{
    /// <summary>log.cleaner.enable.</summary>
    public bool Enabled { get; init; } = true;
    /// <summary>log.cleaner.dedupe.buffer.size: the key map's memory budget, in bytes.</summary>
    public long DedupeBufferSize { get; init; } = 128L << 20;
    /// <summary>log.cleaner.io.max.bytes.per.second: read plus written bytes per second, across the cleaner.</summary>
    public double IoMaxBytesPerSecond { get; init; } = double.MaxValue;
    /// <summary>log.cleaner.backoff.ms: sleep when no log needs cleaning.</summary>
    public long BackoffMs { get; init; } = 15_000;
    /// <summary>
    /// Whether the cleaner thread runs at the lowest priority (nice 19), so it never competes with request handling.
    /// Off only in tests that must see a pass start on a machine kept busy by other work.
    /// </summary>
    internal bool LowPriority { get; init; } = true;
}

/// <summary>What one cleaning pass of one log did.</summary>
public readonly record struct CleanResult(int SegmentsIn, int SegmentsOut, long BytesRead, long BytesWritten, long FirstDirtyOffset, long EndOffset, TimeSpan Elapsed)
{
    public static CleanResult Nothing => default;
    public bool Cleaned => SegmentsIn > 0;
}
