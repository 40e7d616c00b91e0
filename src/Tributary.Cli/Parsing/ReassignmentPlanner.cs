using Tributary.Broker.Cluster;
using Tributary.Cli.Output;

namespace Tributary.Cli.Parsing;

/// <summary>A broker as the plans see it: its id and rack.</summary>
public readonly record struct BrokerSlot(int Id, string? Rack);

/// <summary>
/// Reassignment plans, pure functions of the current assignment: <c>--generate</c> (Kafka's: every partition of the
/// topics placed afresh over the given brokers, rack-aware, keeping each topic's replication factor) and
/// <c>broker drain</c> (each replica on the drained broker replaced by one on another broker).
/// </summary>
public static class ReassignmentPlanner
{
    /// <summary>Kafka's generate: the topics' partitions spread over <paramref name="brokers"/> as a new topic's would be.</summary>
    public static IReadOnlyList<PartitionMove> Generate(IReadOnlyDictionary<(string Topic, int Partition), int[]> current, IReadOnlyList<string> topics,
        IReadOnlyList<BrokerSlot> brokers)
    {
        var moves = new List<PartitionMove>();
        foreach (var topic in topics)
        {
            var partitions = current.Where(kv => kv.Key.Topic == topic).OrderBy(kv => kv.Key.Partition).ToList();
            if (partitions.Count == 0) throw new CliException($"Topic {topic} not found");
            var factor = partitions[0].Value.Length;
            IReadOnlyList<int[]> placed;
            try
            {
                placed = ReplicaPlacement.Assign(brokers.Select(b => new BrokerRegistration(b.Id, "", 0, b.Rack, Guid.Empty)), partitions.Count, factor);
            }
            catch (InvalidReplicationFactorException e)
            {
                throw new CliException($"{topic}: {e.Message}");
            }
            for (var i = 0; i < partitions.Count; i++) moves.Add(new PartitionMove(topic, partitions[i].Key.Partition, placed[i]));
        }
        return moves;
    }

    /// <summary>
    /// Moves every replica off <paramref name="node"/>: its place in each partition goes to another broker that does not
    /// hold the partition yet, chosen in its rack first, then in a rack the partition does not use, then the least
    /// loaded (replicas held, counting this plan's), then the lowest id. The replacement goes last, so a replica that is
    /// already in sync becomes the preferred leader when the drained broker was it. A partition no broker can take is
    /// a problem (named), not silently shrunk.
    /// </summary>
    /// <param name="current">Each partition's replicas (a reassignment in progress: its target).</param>
    public static (IReadOnlyList<PartitionMove> Moves, IReadOnlyList<string> Problems) Drain(IReadOnlyDictionary<(string Topic, int Partition), int[]> current,
        IReadOnlyList<BrokerSlot> brokers, int node)
    {
        var others = brokers.Where(b => b.Id != node).ToList();
        var racks = brokers.ToDictionary(b => b.Id, b => b.Rack);
        var rack = racks.GetValueOrDefault(node);
        var load = others.ToDictionary(b => b.Id, b => current.Values.Count(r => r.Contains(b.Id)));
        var moves = new List<PartitionMove>();
        var problems = new List<string>();
        foreach (var ((topic, partition), replicas) in current.OrderBy(kv => kv.Key.Topic, StringComparer.Ordinal).ThenBy(kv => kv.Key.Partition))
        {
            if (!replicas.Contains(node)) continue;
            var kept = replicas.Where(r => r != node).ToArray();
            var usedRacks = kept.Select(r => racks.GetValueOrDefault(r)).ToHashSet();
            var candidates = others.Where(b => !replicas.Contains(b.Id))
                .OrderBy(b => rack is not null && b.Rack == rack ? 0 : !usedRacks.Contains(b.Rack) ? 1 : 2)
                .ThenBy(b => load[b.Id]).ThenBy(b => b.Id).ToList();
            if (candidates.Count == 0)
            {
                problems.Add($"{topic}-{partition} has replicas [{string.Join(",", replicas)}] and no other broker to take broker {node}'s place");
                continue;
            }
            var pick = candidates[0].Id;
            load[pick]++;
            moves.Add(new PartitionMove(topic, partition, [.. kept, pick]));
        }
        return (moves, problems);
    }
}
