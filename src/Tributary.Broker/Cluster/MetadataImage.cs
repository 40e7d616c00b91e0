using System.Collections.Frozen;

namespace Tributary.Broker.Cluster;

/// <summary>
/// A registered broker: where clients and other brokers reach it, its rack, which start of it this is, whether it is
/// shutting down (controlled shutdown: the controller moves its leaderships away first), and the URL of its schema
/// registry (null when it serves none, or has not bound its listener yet): the other brokers forward registry writes
/// to the registry of the leader of <c>_schemas</c>.
/// </summary>
public sealed record BrokerRegistration(int NodeId, string Host, int Port, string? Rack, Guid IncarnationId, bool ShuttingDown = false,
    string? SchemaRegistryUrl = null);

/// <summary>
/// One partition's replica set and leadership, Kafka's PartitionRegistration: the replicas (the first is the preferred
/// leader), the in-sync replicas, the leader (-1 for none) and its epoch, and the partition epoch that every change
/// bumps, so a change is applied only over the state it was computed from (compare-and-swap).
/// </summary>
public sealed record PartitionState(int[] Replicas, int[] Isr, int Leader, int LeaderEpoch, int PartitionEpoch)
{
    /// <summary>A new partition: every replica in sync, the first one leads, epochs zero.</summary>
    public static PartitionState Initial(int[] replicas) => new(replicas, replicas, replicas.Length > 0 ? replicas[0] : -1, 0, 0);

    public bool IsReplica(int nodeId) => Array.IndexOf(Replicas, nodeId) >= 0;

    public bool InIsr(int nodeId) => Array.IndexOf(Isr, nodeId) >= 0;

    public bool SameAs(PartitionState other) =>
        Leader == other.Leader && LeaderEpoch == other.LeaderEpoch && PartitionEpoch == other.PartitionEpoch
        && Replicas.AsSpan().SequenceEqual(other.Replicas) && Isr.AsSpan().SequenceEqual(other.Isr);
}

/// <summary>A topic: its name, id, configuration overrides and partitions.</summary>
public sealed record TopicInfo(string Name, Guid Id, IReadOnlyList<PartitionState> Partitions, IReadOnlyDictionary<string, string> Configs, bool IsInternal = false)
{
    public int PartitionCount => Partitions.Count;
}

/// <summary>
/// What the cluster looks like, as Kafka's MetadataImage: brokers, the controller, topics with their partitions. It is
/// immutable; a store publishes a new image for every change it applies, so a handler answers from one consistent
/// snapshot. Both stores (local and etcd) produce it; every handler reads only this.
/// </summary>
public sealed class MetadataImage
{
    public static readonly MetadataImage Empty = new("", -1, 0, [], []);

    public MetadataImage(string clusterId, int controllerId, long revision, IEnumerable<BrokerRegistration> brokers, IEnumerable<TopicInfo> topics)
    {
        ClusterId = clusterId;
        ControllerId = controllerId;
        Revision = revision;
        Brokers = brokers.ToFrozenDictionary(b => b.NodeId);
        TopicsByName = topics.ToFrozenDictionary(t => t.Name, StringComparer.Ordinal);
        TopicsById = TopicsByName.Values.ToFrozenDictionary(t => t.Id);
        PartitionTotal = TopicsByName.Values.Sum(t => t.PartitionCount);
    }

    public string ClusterId { get; }

    /// <summary>The active controller's node id; -1 while there is none.</summary>
    public int ControllerId { get; }

    /// <summary>The store's position this image reflects (the etcd revision, or a local change counter).</summary>
    public long Revision { get; }

    /// <summary>The brokers alive now (registered, lease held).</summary>
    public FrozenDictionary<int, BrokerRegistration> Brokers { get; }

    public FrozenDictionary<string, TopicInfo> TopicsByName { get; }

    public FrozenDictionary<Guid, TopicInfo> TopicsById { get; }

    public int PartitionTotal { get; }

    /// <summary>
    /// The controller id clients are told (Metadata, DescribeCluster): the active controller when it is registered,
    /// otherwise the answering broker, as KRaft answers with any live broker, since every broker here takes admin
    /// requests itself. Never -1 or an unknown broker: librdkafka's admin client waits for the controller it was told,
    /// and does not ask again for minutes, so a moment without one (a cluster starting, a controller failing over)
    /// would stall its admin requests until they time out.
    /// </summary>
    public int ControllerFor(int answeringNodeId) => Brokers.ContainsKey(ControllerId) ? ControllerId : answeringNodeId;

    public PartitionState? Partition(string topic, int partition) =>
        TopicsByName.TryGetValue(topic, out var t) && partition >= 0 && partition < t.PartitionCount ? t.Partitions[partition] : null;

    public MetadataImage With(string? clusterId = null, int? controllerId = null, long? revision = null,
        IEnumerable<BrokerRegistration>? brokers = null, IEnumerable<TopicInfo>? topics = null) =>
        new(clusterId ?? ClusterId, controllerId ?? ControllerId, revision ?? Revision, brokers ?? Brokers.Values, topics ?? TopicsByName.Values);
}
