using Tributary.Protocol.Records;
using Tributary.Storage;

namespace Tributary.Broker.Metadata;

/// <summary>
/// The topic-level configs Tributary knows, under Kafka's names, each with the broker setting that supplies its
/// default (as Kafka: <c>retention.ms</c> defaults from <c>log.retention.ms</c>). DescribeConfigs lists these;
/// CreateTopics and AlterConfigs validate against them.
/// </summary>
public static class TopicConfigDefinitions
{
    /// <param name="Doc">DescribeConfigs' documentation: what the config does here, or why it is accepted but not applied.</param>
    public sealed record Definition(string Name, string? BrokerSetting, string Default, Func<string, string?> Validate, bool Sensitive = false, string? Doc = null);

    private static Func<string, string?> Long(long min) => v =>
        long.TryParse(v, out var n) && n >= min ? null : $"must be an integer >= {min}";

    private static Func<string, string?> Int(int min) => v =>
        int.TryParse(v, out var n) && n >= min ? null : $"must be an integer >= {min}";

    private static Func<string, string?> OneOf(params string[] options) => v =>
        options.Contains(v) ? null : $"must be one of {string.Join(", ", options)}";

    private static Func<string, string?> CleanupPolicy => v =>
        v.Split(',', StringSplitOptions.TrimEntries).All(p => p is "delete" or "compact") ? null : "must be a list of delete, compact";

    private static Func<string, string?> Ratio => v =>
        double.TryParse(v, System.Globalization.CultureInfo.InvariantCulture, out var d) && d is >= 0 and <= 1 ? null : "must be between 0 and 1";

    private const string Compat = "Accepted for compatibility, not applied: ";

    /// <summary>Kafka's ThrottledReplicaListValidator: <c>*</c>, or <c>partition:broker</c> pairs separated by commas (or nothing).</summary>
    private static Func<string, string?> ThrottledReplicas => v =>
        v == "*" || v.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .All(e => e.Split(':', StringSplitOptions.TrimEntries) is [var p, var b] && int.TryParse(p, out var pi) && pi >= 0 && int.TryParse(b, out var bi) && bi >= 0)
            ? null : "must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],...";

    public static readonly IReadOnlyList<Definition> All =
    [
        new("cleanup.policy", "log.cleanup.policy", "delete", CleanupPolicy,
            Doc: "delete: time and size retention remove old segments; compact: the log cleaner keeps the last record per key. Applied."),
        new("compression.type", "compression.type", "producer", OneOf("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"),
            Doc: "producer: batches are stored as the producer compressed them. A codec (uncompressed = none): every produced batch is "
                + "recompressed to it before it is stored, unless it already uses it. Below Fetch v10 a zstd topic is refused. Applied."),
        new("delete.retention.ms", "log.cleaner.delete.retention.ms", "86400000", Long(0),
            Doc: "How long the cleaner keeps a tombstone of a compacted topic. Applied."),
        new("file.delete.delay.ms", "log.segment.delete.delay.ms", "60000", Long(0),
            Doc: "How long a removed segment stays on disk so in-flight reads finish. Applied."),
        new("flush.messages", "log.flush.interval.messages", "9223372036854775807", Long(1),
            Doc: Compat + "when appends are fsynced is the broker's log.flush.policy: durable (the default) acknowledges only after "
                + "an fsync, stricter than any value here; page-cache leaves write-back to the OS, as Kafka's defaults do."),
        new("flush.ms", "log.flush.interval.ms", "9223372036854775807", Long(0),
            Doc: Compat + "when appends are fsynced is the broker's log.flush.policy (see flush.messages)."),
        new("index.interval.bytes", "log.index.interval.bytes", "4096", Int(0),
            Doc: "Bytes of log between offset index entries. Applied."),
        new("max.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms", "9223372036854775807", Long(1),
            Doc: "A dirty record older than this makes its log cleanable whatever its dirty ratio. Applied."),
        new("max.message.bytes", "message.max.bytes", "1048588", Int(0),
            Doc: "Largest record batch accepted (after recompression, when compression.type asks for it). Applied."),
        new("message.timestamp.type", "log.message.timestamp.type", "CreateTime", OneOf("CreateTime", "LogAppendTime"),
            Doc: "CreateTime keeps the producer's timestamps; LogAppendTime stamps each batch with the broker's clock. Applied."),
        new("message.timestamp.before.max.ms", "log.message.timestamp.before.max.ms", "9223372036854775807", Long(0),
            Doc: "CreateTime topics: a record whose timestamp is more than this before the broker's clock is refused with "
                + "INVALID_TIMESTAMP (KIP-937). Applied."),
        new("message.timestamp.after.max.ms", "log.message.timestamp.after.max.ms", "9223372036854775807", Long(0),
            Doc: "CreateTime topics: a record whose timestamp is more than this after the broker's clock is refused with "
                + "INVALID_TIMESTAMP (KIP-937). Applied."),
        new("min.cleanable.dirty.ratio", "log.cleaner.min.cleanable.ratio", "0.5", Ratio,
            Doc: "The cleaner compacts a log once its dirty share reaches this. Applied."),
        new("min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms", "0", Long(0),
            Doc: "Records younger than this are never compacted. Applied."),
        new("min.insync.replicas", "min.insync.replicas", "1", Int(1),
            Doc: "acks=all is refused with NOT_ENOUGH_REPLICAS while the ISR is smaller, and answered NOT_ENOUGH_REPLICAS_AFTER_APPEND "
                + "when it shrank below it while the records were being replicated, as Kafka. Applied."),
        new("preallocate", "log.preallocate", "false", OneOf("true", "false"),
            Doc: Compat + "segment files grow as they are written; preallocation would change no visible behaviour."),
        new("retention.bytes", "log.retention.bytes", "-1", Long(-1),
            Doc: "Size retention of a partition; -1 for none. Applied."),
        new("retention.ms", "log.retention.ms", "604800000", Long(-1),
            Doc: "Time retention, by a segment's largest timestamp; -1 for none. Applied."),
        new("segment.bytes", "log.segment.bytes", "1073741824", Int(14),
            Doc: "A segment rolls before it would grow past this. Applied."),
        new("segment.index.bytes", "log.index.size.max.bytes", "10485760", Int(4),
            Doc: Compat + "indexes are kept in memory and grow as needed (8 bytes per index.interval.bytes of log), so there is "
                + "no preallocated index to fill; segments roll by segment.bytes and segment.ms."),
        new("segment.jitter.ms", "log.roll.jitter.ms", "0", Long(0),
            Doc: Compat + "segments roll exactly at segment.ms, which is one of the times Kafka's random jitter may pick."),
        new("segment.ms", "log.roll.ms", "604800000", Long(1),
            Doc: "A segment rolls this long after its first append. Applied."),
        new("unclean.leader.election.enable", "unclean.leader.election.enable", "false", OneOf("true", "false"),
            Doc: Compat + "a single broker holds the only replica, so there is no leader election to make unclean."),
        new("leader.replication.throttled.replicas", null, "", ThrottledReplicas,
            Doc: "Replicas (partition:broker, or * for all) whose leader, on that broker, sends to out-of-sync followers at most "
                + "leader.replication.throttled.rate bytes a second (a reassignment's new replicas catching up). Applied."),
        new("follower.replication.throttled.replicas", null, "", ThrottledReplicas,
            Doc: "Replicas (partition:broker, or * for all) that, while out of the ISR, fetch from their leader at most "
                + "follower.replication.throttled.rate bytes a second on that broker. Applied."),
        new("message.downconversion.enable", "log.message.downconversion.enable", "true", OneOf("true", "false"),
            Doc: Compat + "Tributary serves Fetch v4 and later only, which read record batches as stored; it never down-converts."),
        // Broker-side record validation (IRecordValidator, supplied by the host's schema registry), Confluent's names.
        new(RecordValidation.KeyConfig, null, "false", OneOf("true", "false"),
            Doc: "Produce checks each record key against the schema registry (Confluent's broker-side schema validation). Applied."),
        new(RecordValidation.ValueConfig, null, "false", OneOf("true", "false"),
            Doc: "Produce checks each record value against the schema registry (Confluent's broker-side schema validation). Applied."),
    ];

    private static readonly Dictionary<string, Definition> ByName = All.ToDictionary(d => d.Name, StringComparer.Ordinal);

    public static bool TryGet(string name, out Definition definition) => ByName.TryGetValue(name, out definition!);

    /// <summary>Null when the value is acceptable, else the reason it is not.</summary>
    public static string? Validate(string name, string? value)
    {
        if (!ByName.TryGetValue(name, out var def)) return $"Unknown topic config name: {name}";
        if (value is null) return null;
        var problem = def.Validate(value.Trim());
        return problem is null ? null : $"Invalid value {value} for configuration {name}: {problem}";
    }

    /// <summary>The storage settings of one partition from the topic's overrides and the broker's defaults.</summary>
    public static LogConfig ToLogConfig(IReadOnlyDictionary<string, string> overrides, BrokerSettings broker)
    {
        string Get(string name) => overrides.TryGetValue(name, out var v) ? v : broker.TopicDefault(name);
        return new LogConfig
        {
            SegmentBytes = long.Parse(Get("segment.bytes")),
            SegmentMs = long.Parse(Get("segment.ms")),
            RetentionMs = long.Parse(Get("retention.ms")),
            RetentionBytes = long.Parse(Get("retention.bytes")),
            IndexIntervalBytes = int.Parse(Get("index.interval.bytes")),
            MaxMessageBytes = int.Parse(Get("max.message.bytes")),
            TimestampType = Get("message.timestamp.type") == "LogAppendTime" ? TimestampType.LogAppendTime : TimestampType.CreateTime,
            MinInSyncReplicas = int.Parse(Get("min.insync.replicas")),
            TimestampBeforeMaxMs = long.Parse(Get("message.timestamp.before.max.ms")),
            TimestampAfterMaxMs = long.Parse(Get("message.timestamp.after.max.ms")),
            Compression = Get("compression.type") switch
            {
                "uncompressed" => CompressionCodec.None,
                "gzip" => CompressionCodec.Gzip,
                "snappy" => CompressionCodec.Snappy,
                "lz4" => CompressionCodec.Lz4,
                "zstd" => CompressionCodec.Zstd,
                _ => null,
            },
            FileDeleteDelayMs = long.Parse(Get("file.delete.delay.ms")),
            FlushPolicy = broker.FlushPolicy,
            CleanupDelete = Get("cleanup.policy").Split(',', StringSplitOptions.TrimEntries).Contains("delete"),
            CleanupCompact = Get("cleanup.policy").Split(',', StringSplitOptions.TrimEntries).Contains("compact"),
            MinCleanableDirtyRatio = double.Parse(Get("min.cleanable.dirty.ratio"), System.Globalization.CultureInfo.InvariantCulture),
            DeleteRetentionMs = long.Parse(Get("delete.retention.ms")),
            MinCompactionLagMs = long.Parse(Get("min.compaction.lag.ms")),
            MaxCompactionLagMs = long.Parse(Get("max.compaction.lag.ms")),
        };
    }
}
