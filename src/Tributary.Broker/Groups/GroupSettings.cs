using System.Globalization;

namespace Tributary.Broker.Groups;

/// <summary>The coordinator's broker settings, under Kafka's names and with Kafka's defaults.</summary>
public sealed record GroupSettings(
    int OffsetsTopicPartitions,
    int InitialRebalanceDelayMs,
    int MinSessionTimeoutMs,
    int MaxSessionTimeoutMs,
    int MaxGroupSize,
    int MaxMetadataBytes,
    int ConsumerHeartbeatIntervalMs,
    int ConsumerSessionTimeoutMs,
    long OffsetsRetentionMs,
    long OffsetsRetentionCheckIntervalMs)
{
    public const string OffsetsTopic = "__consumer_offsets";

    public static GroupSettings From(BrokerSettings settings)
    {
        int Int(string name, int fallback) =>
            settings.Get(name) is { } v
                ? int.TryParse(v, CultureInfo.InvariantCulture, out var n) ? n : throw new ArgumentException($"{name} must be an integer, not '{v}'")
                : fallback;
        long Long(string name, long fallback) =>
            settings.Get(name) is { } v
                ? long.TryParse(v, CultureInfo.InvariantCulture, out var n) ? n : throw new ArgumentException($"{name} must be an integer, not '{v}'")
                : fallback;
        return new GroupSettings(
            OffsetsTopicPartitions: Math.Max(1, Int("offsets.topic.num.partitions", 50)),
            InitialRebalanceDelayMs: Math.Max(0, Int("group.initial.rebalance.delay.ms", 3000)),
            MinSessionTimeoutMs: Int("group.min.session.timeout.ms", 6000),
            MaxSessionTimeoutMs: Int("group.max.session.timeout.ms", 1_800_000),
            MaxGroupSize: Int("group.max.size", int.MaxValue),
            MaxMetadataBytes: Int("offset.metadata.max.bytes", 4096),
            ConsumerHeartbeatIntervalMs: Int("group.consumer.heartbeat.interval.ms", 5000),
            ConsumerSessionTimeoutMs: Int("group.consumer.session.timeout.ms", 45000),
            OffsetsRetentionMs: Math.Max(1, Long("offsets.retention.minutes", 10080)) * 60_000,
            OffsetsRetentionCheckIntervalMs: Math.Max(1, Long("offsets.retention.check.interval.ms", 600_000)));
    }
}
