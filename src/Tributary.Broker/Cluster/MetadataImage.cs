using System.Collections.Frozen;

namespace Tributary.Broker.Cluster;

/// <summary>
/// A registered broker: where other brokers reach it (<see cref="Host"/>:<see cref="Port"/>, its inter-broker
/// listener's advertised address), where clients reach it through each listener (<see cref="Listeners"/>), its rack,
/// which start of it this is, whether it is shutting down (controlled shutdown: the controller moves its leaderships
/// away first), and the URL of its schema registry (null when it serves none, or has not bound its listener yet): the
/// other brokers forward registry writes to the registry of the leader of <c>_schemas</c>.
/// </summary>
public sealed record BrokerRegistration(int NodeId, string Host, int Port, string? Rack, Guid IncarnationId, bool ShuttingDown = false,
    string? SchemaRegistryUrl = null)
{
    /// <summary>The advertised address of every listener; empty in registrations that only know one address (Host:Port).</summary>
    public IReadOnlyList<ListenerAddress> Listeners { get; init; } = [];

    /// <summary>
    /// Where a client connected through <paramref name="listener"/> reaches this broker, or null when it has no such
    /// listener (Kafka then leaves the broker out of the answer).
    /// </summary>
    public (string Host, int Port)? EndpointFor(string listener)
    {
        if (Listeners.Count == 0) return (Host, Port);
        foreach (var l in Listeners)
            if (string.Equals(l.Name, listener, StringComparison.OrdinalIgnoreCase)) return (l.Host, l.Port);
        return null;
    }
}

/// <summary>
/// One partition's replica set and leadership, Kafka's PartitionRegistration: the replicas (the first is the preferred
/// leader), the in-sync replicas, the leader (-1 for none) and its epoch, and the partition epoch that every change
/// bumps, so a change is applied only over the state it was computed from (compare-and-swap). While a reassignment
/// (KIP-455) runs, <see cref="Replicas"/> is the target followed by the replicas being removed, and
/// <see cref="AddingReplicas"/> / <see cref="RemovingReplicas"/> say which is which (see <see cref="PartitionReassignment"/>).
/// </summary>
public sealed record PartitionState(int[] Replicas, int[] Isr, int Leader, int LeaderEpoch, int PartitionEpoch)
{
    /// <summary>Replicas a reassignment adds (not yet part of the original assignment); empty when none runs.</summary>
    public int[] AddingReplicas { get; init; } = [];

    /// <summary>Replicas a reassignment removes once every target replica is in sync; empty when none runs.</summary>
    public int[] RemovingReplicas { get; init; } = [];

    /// <summary>A new partition: every replica in sync, the first one leads, epochs zero.</summary>
    public static PartitionState Initial(int[] replicas) => new(replicas, replicas, replicas.Length > 0 ? replicas[0] : -1, 0, 0);

    public bool IsReplica(int nodeId) => Array.IndexOf(Replicas, nodeId) >= 0;

    public bool InIsr(int nodeId) => Array.IndexOf(Isr, nodeId) >= 0;

    /// <summary>True while a reassignment of this partition is in progress.</summary>
    public bool IsReassigning => AddingReplicas.Length > 0 || RemovingReplicas.Length > 0;

    public bool SameAs(PartitionState other) =>
        Leader == other.Leader && LeaderEpoch == other.LeaderEpoch && PartitionEpoch == other.PartitionEpoch
        && Replicas.AsSpan().SequenceEqual(other.Replicas) && Isr.AsSpan().SequenceEqual(other.Isr)
        && AddingReplicas.AsSpan().SequenceEqual(other.AddingReplicas) && RemovingReplicas.AsSpan().SequenceEqual(other.RemovingReplicas);
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

    private static readonly FrozenDictionary<string, IReadOnlyDictionary<string, string>> NoBrokerConfigs =
        FrozenDictionary<string, IReadOnlyDictionary<string, string>>.Empty;

    /// <param name="brokerConfigs">Dynamic broker configs by resource name: a node id, or "" for the cluster-wide default.</param>
    public MetadataImage(string clusterId, int controllerId, long revision, IEnumerable<BrokerRegistration> brokers, IEnumerable<TopicInfo> topics,
        IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>>? brokerConfigs = null, IReadOnlyList<Security.AclBinding>? acls = null)
    {
        // Not a static field: Empty is built before the fields declared after it are.
        Acls = acls ?? Array.Empty<Security.AclBinding>();
        ClusterId = clusterId;
        ControllerId = controllerId;
        Revision = revision;
        Brokers = brokers.ToFrozenDictionary(b => b.NodeId);
        TopicsByName = topics.ToFrozenDictionary(t => t.Name, StringComparer.Ordinal);
        TopicsById = TopicsByName.Values.ToFrozenDictionary(t => t.Id);
        PartitionTotal = TopicsByName.Values.Sum(t => t.PartitionCount);
        BrokerConfigs = brokerConfigs as FrozenDictionary<string, IReadOnlyDictionary<string, string>>
            ?? brokerConfigs?.ToFrozenDictionary(StringComparer.Ordinal) ?? NoBrokerConfigs;
    }

    /// <summary>
    /// Dynamic broker configs (Kafka's <c>kafka-configs --entity-type brokers</c>): by node id, and under "" the
    /// cluster-wide default (<c>--entity-default</c>). Only settings marked dynamic in <see cref="BrokerSettingDefinitions"/>.
    /// </summary>
    public FrozenDictionary<string, IReadOnlyDictionary<string, string>> BrokerConfigs { get; }

    /// <summary>The dynamic value of <paramref name="name"/> for broker <paramref name="nodeId"/>: its own, else the cluster default; null if neither.</summary>
    public string? DynamicBrokerConfig(int nodeId, string name) =>
        BrokerConfigs.TryGetValue(nodeId.ToString(System.Globalization.CultureInfo.InvariantCulture), out var own) && own.TryGetValue(name, out var value) ? value
        : BrokerConfigs.TryGetValue("", out var defaults) && defaults.TryGetValue(name, out var fallback) ? fallback
        : null;

    /// <summary>SCRAM credentials (KIP-554) by "MECHANISM/user": salted and hashed keys, never a password.</summary>
    public FrozenDictionary<string, Security.ScramCredential> ScramCredentials { get; init; } = FrozenDictionary<string, Security.ScramCredential>.Empty;

    public Security.ScramCredential? ScramCredential(string user, string mechanism) => ScramCredentials.GetValueOrDefault(mechanism + "/" + user);

    /// <summary>Client quotas (AlterClientQuotas) by entity key (<see cref="Quotas.QuotaEntity.Key"/>): quota name → value.</summary>
    public FrozenDictionary<string, IReadOnlyDictionary<string, double>> ClientQuotas { get; init; } = FrozenDictionary<string, IReadOnlyDictionary<string, double>>.Empty;

    /// <summary>
    /// The ACLs (Kafka's AclBindings, each once). An image that did not change them shares the previous image's list, so
    /// the authorizer rebuilds its index only when they changed (reference inequality).
    /// </summary>
    public IReadOnlyList<Security.AclBinding> Acls { get; }

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
    /// otherwise the answering broker, otherwise any registered broker, as KRaft answers with any live broker, since
    /// every broker here takes admin requests itself. Always one of the brokers listed beside it, or -1 when none is:
    /// librdkafka's admin client looks the named controller up among the brokers it was told and, when it is not
    /// there, waits without asking again (it asks again only for -1), so its admin requests would time out.
    /// </summary>
    public int ControllerFor(int answeringNodeId) =>
        Brokers.ContainsKey(ControllerId) ? ControllerId
        : Brokers.ContainsKey(answeringNodeId) ? answeringNodeId
        : Brokers.Count > 0 ? Brokers.Keys.Min() : -1;

    public PartitionState? Partition(string topic, int partition) =>
        TopicsByName.TryGetValue(topic, out var t) && partition >= 0 && partition < t.PartitionCount ? t.Partitions[partition] : null;

    public MetadataImage With(string? clusterId = null, int? controllerId = null, long? revision = null,
        IEnumerable<BrokerRegistration>? brokers = null, IEnumerable<TopicInfo>? topics = null,
        IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>>? brokerConfigs = null, IReadOnlyList<Security.AclBinding>? acls = null,
        IReadOnlyDictionary<string, Security.ScramCredential>? scramCredentials = null,
        IReadOnlyDictionary<string, IReadOnlyDictionary<string, double>>? clientQuotas = null) =>
        new(clusterId ?? ClusterId, controllerId ?? ControllerId, revision ?? Revision, brokers ?? Brokers.Values, topics ?? TopicsByName.Values,
            brokerConfigs ?? BrokerConfigs, acls ?? Acls)
        {
            ScramCredentials = scramCredentials is null ? ScramCredentials : scramCredentials.ToFrozenDictionary(StringComparer.Ordinal),
            ClientQuotas = clientQuotas is null ? ClientQuotas : clientQuotas.ToFrozenDictionary(StringComparer.Ordinal),
        };
}
