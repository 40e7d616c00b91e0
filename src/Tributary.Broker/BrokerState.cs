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
    public FetchSessionCache FetchSessions { get; } = new(time);
    /// <summary>Partitions created and deleted per client id (controller.mutation.rate).</summary>
    public ControllerMutationQuota MutationQuota { get; } = new(settings.TopicLimits, time);

    /// <summary>Host and port clients are told to connect to (Metadata, DescribeCluster).</summary>
    public string AdvertisedHost { get; set; } = "localhost";
    public int AdvertisedPort { get; set; }

    public int NodeId => Identity.NodeId;

    /// <summary>Broker-side schema validation for topics that turn it on; null when the schema registry is off.</summary>
    public SchemaRegistry.Validation.RecordSchemaValidator? SchemaValidator { get; set; }
}
