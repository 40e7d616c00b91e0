using Tributary.Broker.Cluster;

namespace Tributary.Broker.Replication;

/// <summary>
/// KIP-392's <c>RackAwareReplicaSelector</c>, chosen with <c>replica.selector.class</c>: a consumer that names its rack
/// (<c>client.rack</c>, Fetch v11+) is sent to an in-sync replica in that rack, so its reads stay in its zone. The leader
/// serves when it is in the consumer's rack itself, when no in-sync replica is, or when the consumer names no rack.
/// </summary>
public static class RackAwareReplicaSelector
{
    /// <summary>The Java class name Kafka's configs use; the only selector there is besides the leader itself.</summary>
    public const string ClassName = "org.apache.kafka.common.replica.RackAwareReplicaSelector";

    /// <summary>The replica a consumer in <paramref name="clientRack"/> should read from; -1 for the leader.</summary>
    public static int Select(PartitionState state, string? clientRack, MetadataImage image)
    {
        if (string.IsNullOrEmpty(clientRack) || state.Leader < 0) return -1;
        if (image.Brokers.TryGetValue(state.Leader, out var leader) && leader.Rack == clientRack) return -1;
        // Replica order is the assignment's, the same on every broker: consumers of one rack agree on their replica.
        foreach (var replica in state.Replicas)
            if (replica != state.Leader && state.InIsr(replica) && image.Brokers.TryGetValue(replica, out var broker)
                && !broker.ShuttingDown && broker.Rack == clientRack)
                return replica;
        return -1;
    }
}
