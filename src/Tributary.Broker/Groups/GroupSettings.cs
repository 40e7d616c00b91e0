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
    int ConsumerRegexRefreshIntervalMs,
    long OffsetsRetentionMs,
    long OffsetsRetentionCheckIntervalMs)
{
    public const string OffsetsTopic = "__consumer_offsets";

    public static GroupSettings From(BrokerSettings settings) => new(
        OffsetsTopicPartitions: settings.Int("offsets.topic.num.partitions"),
        InitialRebalanceDelayMs: settings.Int("group.initial.rebalance.delay.ms"),
        MinSessionTimeoutMs: settings.Int("group.min.session.timeout.ms"),
        MaxSessionTimeoutMs: settings.Int("group.max.session.timeout.ms"),
        MaxGroupSize: settings.Int("group.max.size"),
        MaxMetadataBytes: settings.Int("offset.metadata.max.bytes"),
        ConsumerHeartbeatIntervalMs: settings.Int("group.consumer.heartbeat.interval.ms"),
        ConsumerSessionTimeoutMs: settings.Int("group.consumer.session.timeout.ms"),
        ConsumerRegexRefreshIntervalMs: settings.Int("group.consumer.regex.refresh.interval.ms"),
        OffsetsRetentionMs: settings.Long("offsets.retention.minutes") * 60_000,
        OffsetsRetentionCheckIntervalMs: settings.Long("offsets.retention.check.interval.ms"));
}
