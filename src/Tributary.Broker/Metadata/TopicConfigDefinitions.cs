using Tributary.Storage;

namespace Tributary.Broker.Metadata;

/// <summary>
/// The topic-level configs Tributary knows, under Kafka's names, each with the broker setting that supplies its
/// default (as Kafka: <c>retention.ms</c> defaults from <c>log.retention.ms</c>). DescribeConfigs lists these;
/// CreateTopics and AlterConfigs validate against them.
/// </summary>
public static class TopicConfigDefinitions
{
    public sealed record Definition(string Name, string? BrokerSetting, string Default, Func<string, string?> Validate, bool Sensitive = false);

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

    private static readonly Func<string, string?> Any = _ => null;

    public static readonly IReadOnlyList<Definition> All =
    [
        new("cleanup.policy", "log.cleanup.policy", "delete", CleanupPolicy),
        new("compression.type", "compression.type", "producer", OneOf("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd")),
        new("delete.retention.ms", "log.cleaner.delete.retention.ms", "86400000", Long(0)),
        new("file.delete.delay.ms", "log.segment.delete.delay.ms", "60000", Long(0)),
        new("flush.messages", "log.flush.interval.messages", "9223372036854775807", Long(1)),
        new("flush.ms", "log.flush.interval.ms", "9223372036854775807", Long(0)),
        new("index.interval.bytes", "log.index.interval.bytes", "4096", Int(0)),
        new("max.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms", "9223372036854775807", Long(1)),
        new("max.message.bytes", "message.max.bytes", "1048588", Int(0)),
        new("message.timestamp.type", "log.message.timestamp.type", "CreateTime", OneOf("CreateTime", "LogAppendTime")),
        new("message.timestamp.before.max.ms", "log.message.timestamp.before.max.ms", "9223372036854775807", Long(0)),
        new("message.timestamp.after.max.ms", "log.message.timestamp.after.max.ms", "9223372036854775807", Long(0)),
        new("min.cleanable.dirty.ratio", "log.cleaner.min.cleanable.ratio", "0.5", Ratio),
        new("min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms", "0", Long(0)),
        new("min.insync.replicas", "min.insync.replicas", "1", Int(1)),
        new("preallocate", "log.preallocate", "false", OneOf("true", "false")),
        new("retention.bytes", "log.retention.bytes", "-1", Long(-1)),
        new("retention.ms", "log.retention.ms", "604800000", Long(-1)),
        new("segment.bytes", "log.segment.bytes", "1073741824", Int(14)),
        new("segment.index.bytes", "log.index.size.max.bytes", "10485760", Int(4)),
        new("segment.jitter.ms", "log.roll.jitter.ms", "0", Long(0)),
        new("segment.ms", "log.roll.ms", "604800000", Long(1)),
        new("unclean.leader.election.enable", "unclean.leader.election.enable", "false", OneOf("true", "false")),
        new("message.downconversion.enable", "log.message.downconversion.enable", "true", Any),
        // Broker-side record validation (IRecordValidator, supplied by the host's schema registry), Confluent's names.
        new(RecordValidation.KeyConfig, null, "false", OneOf("true", "false")),
        new(RecordValidation.ValueConfig, null, "false", OneOf("true", "false")),
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
