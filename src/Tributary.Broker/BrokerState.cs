using Tributary.Broker.Fetching;
using Tributary.Broker.Metadata;

namespace Tributary.Broker;

/// <summary>What the handlers share: settings, identity, the topic catalog and the fetch sessions.</summary>
public sealed class BrokerState(BrokerSettings settings, ClusterIdentity identity, TopicCatalog topics, TimeProvider time, BrokerLog log)
{
    public BrokerSettings Settings { get; } = settings;
    public ClusterIdentity Identity { get; } = identity;
    public TopicCatalog Topics { get; } = topics;
    public TimeProvider Time { get; } = time;
    public BrokerLog Log { get; } = log;
    internal FetchSessionCache FetchSessions { get; } = new(time);
    /// <summary>Partitions created and deleted per client (controller_mutation_rate quotas, else controller.mutation.rate).</summary>
    public ControllerMutationQuota MutationQuota { get; } = new(settings.TopicLimits, time, () => topics.Image);

    /// <summary>Replication: high watermarks of the partitions led here, followers, acks=all (set when the broker starts).</summary>
    public Replication.ReplicaManager? Replicas { get; internal set; }

    /// <summary>The offset consumers may read up to (the high watermark; a single replica's durable end).</summary>
    public long HighWatermark(string topic, int partition, Tributary.Storage.PartitionLog log) =>
        Replicas?.HighWatermark(topic, partition, log) ?? log.HighWatermark;

    /// <summary>The last stable offset, never past the high watermark.</summary>
    public long LastStableOffset(string topic, int partition, Tributary.Storage.PartitionLog log) =>
        Math.Min(log.LastStableOffset, HighWatermark(topic, partition, log));

    /// <summary>
    /// Kafka's check of a request's current_leader_epoch against the partition's: older is FENCED_LEADER_EPOCH, newer
    /// UNKNOWN_LEADER_EPOCH (this broker has not seen it yet), -1 skips the check.
    /// </summary>
    public Protocol.Messages.ErrorCode? CheckLeaderEpoch(string topic, int partition, int requested)
    {
        if (requested < 0 || Topics.Image.Partition(topic, partition) is not { } state) return null;
        if (requested < state.LeaderEpoch) return Protocol.Messages.ErrorCode.FencedLeaderEpoch;
        if (requested > state.LeaderEpoch) return Protocol.Messages.ErrorCode.UnknownLeaderEpoch;
        return null;
    }

    /// <summary>The ACL authorizer (authorizer.class.name); null when none is configured and everything is allowed.</summary>
    public Security.Authorizer? Authorizer { get; internal set; }

    /// <summary>Client quotas (producer_byte_rate, consumer_byte_rate, request_percentage) from the cluster metadata.</summary>
    public Quotas.ClientQuotaManager Quotas { get; } = new(() => topics.Image, time, settings.Int("quota.window.num"), settings.Int("quota.window.size.seconds"));

    /// <summary>This broker's instruments (System.Diagnostics.Metrics).</summary>
    public Diagnostics.BrokerMetrics Metrics { get; } = new();

    /// <summary>Host and port clients are told to connect to (Metadata, DescribeCluster).</summary>
    public string AdvertisedHost { get; internal set; } = "localhost";
    public int AdvertisedPort { get; internal set; }

    public int NodeId => Identity.NodeId;

    /// <summary>Record validation for topics that turn it on (the host's schema registry); null until it is running.</summary>
    public IRecordValidator? SchemaValidator { get; internal set; }

    /// <summary>Why <see cref="SchemaValidator"/> is null, so a topic that asks for validation is refused accordingly.</summary>
    public SchemaRegistryStatus SchemaRegistryStatus { get; internal set; } = SchemaRegistryStatus.Disabled;
}

/// <summary>The schema registry's state as far as produce validation is concerned.</summary>
public enum SchemaRegistryStatus
{
    /// <summary>schema.registry.enable=false.</summary>
    Disabled,

    /// <summary>Replaying _schemas and binding its listener: retriable.</summary>
    Starting,

    /// <summary>It could not start (the reason is logged).</summary>
    Failed,

    Running,
}
