namespace Tributary.Storage;

/// <summary>When an append counts as acknowledged.</summary>
public enum FlushPolicy
{
    /// <summary>fdatasync before acknowledging (default). Concurrent appends share one sync (group commit).</summary>
    Durable,
    /// <summary>Kafka's default: acknowledge once the bytes are in the page cache; the OS flushes later.</summary>
    PageCache,
}

/// <summary>Which timestamp a topic keeps: the producer's (CreateTime) or the broker's at append (LogAppendTime).</summary>
public enum TimestampType
{
    CreateTime,
    LogAppendTime,
}

/// <summary>Effective per-partition configuration (topic overrides already applied); Kafka names in comments.</summary>
public sealed record LogConfig
{
    /// <summary>segment.bytes; capped at 2 GiB because index positions are 32-bit.</summary>
    public long SegmentBytes { get; init; } = 1L << 30;
    /// <summary>segment.ms: roll a segment this long after its first append.</summary>
    public long SegmentMs { get; init; } = 7 * 24 * 3600_000L;
    /// <summary>retention.ms, applied to a segment's largest timestamp; -1 = unlimited.</summary>
    public long RetentionMs { get; init; } = 7 * 24 * 3600_000L;
    /// <summary>retention.bytes for the whole partition; -1 = unlimited.</summary>
    public long RetentionBytes { get; init; } = -1;
    /// <summary>index.interval.bytes: distance between offset index entries.</summary>
    public int IndexIntervalBytes { get; init; } = 4096;
    /// <summary>max.message.bytes: largest record batch accepted.</summary>
    public int MaxMessageBytes { get; init; } = 1048588;
    /// <summary>message.timestamp.type.</summary>
    public TimestampType TimestampType { get; init; } = TimestampType.CreateTime;
    /// <summary>
    /// message.timestamp.before.max.ms (KIP-937): on a CreateTime topic a record older than this by the broker's clock
    /// is refused with INVALID_TIMESTAMP. Long.MaxValue (the default) checks nothing.
    /// </summary>
    public long TimestampBeforeMaxMs { get; init; } = long.MaxValue;
    /// <summary>message.timestamp.after.max.ms: the same for a record this far in the future.</summary>
    public long TimestampAfterMaxMs { get; init; } = long.MaxValue;
    /// <summary>
    /// compression.type: the codec every stored batch carries (<see cref="Protocol.Records.BatchRecompressor"/>);
    /// null for "producer", the default, which stores batches as the producer compressed them.
    /// </summary>
    public Tributary.Protocol.Records.CompressionCodec? Compression { get; init; }
    /// <summary>
    /// min.insync.replicas. Not a storage matter: kept here so the produce handler reads it from the partition's cached
    /// config (one broker is one in-sync replica, so above 1 acks=all gets NOT_ENOUGH_REPLICAS).
    /// </summary>
    public int MinInSyncReplicas { get; init; } = 1;
    public FlushPolicy FlushPolicy { get; init; } = FlushPolicy.Durable;
    /// <summary>file.delete.delay.ms: how long a removed segment stays as .deleted, so in-flight reads finish.</summary>
    public long FileDeleteDelayMs { get; init; } = 60000;
    /// <summary>cleanup.policy contains "delete": time and size retention remove old segments.</summary>
    public bool CleanupDelete { get; init; } = true;
    /// <summary>cleanup.policy contains "compact": the <see cref="LogCleaner"/> keeps the last record per key.</summary>
    public bool CleanupCompact { get; init; }
    /// <summary>min.cleanable.dirty.ratio: clean once dirty bytes / cleanable bytes reach this.</summary>
    public double MinCleanableDirtyRatio { get; init; } = 0.5;
    /// <summary>delete.retention.ms: how long a tombstone survives after the cleaner first sees it.</summary>
    public long DeleteRetentionMs { get; init; } = 86_400_000;
    /// <summary>min.compaction.lag.ms: records younger than this are never compacted.</summary>
    public long MinCompactionLagMs { get; init; }
    /// <summary>
    /// max.compaction.lag.ms: a dirty record older than this makes its log eligible whatever its ratio, and a compacted
    /// log's active segment rolls this long after its first append (Kafka's maxSegmentMs), so its records become cleanable.
    /// </summary>
    public long MaxCompactionLagMs { get; init; } = long.MaxValue;
}
