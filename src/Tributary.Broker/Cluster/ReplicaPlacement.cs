namespace Tributary.Broker.Cluster;

/// <summary>
/// Places a new topic's replicas on the live brokers as Kafka's assignReplicasToBrokers does: leaders round-robin from
/// a random start, followers at a shifting distance from their leader so one broker's loss spreads over the others;
/// with racks, brokers are taken alternately from each rack and a partition's replicas cover as many racks as they can.
/// </summary>
public static class ReplicaPlacement
{

    /// <param name="startIndex">Index of the broker that leads partition 0; -1 for a random one (Kafka's default).</param>
    /// <param name="shift">Follower shift; -1 for a random one.</param>
    public static IReadOnlyList<int[]> Assign(IEnumerable<BrokerRegistration> brokers, int partitions, int replicationFactor, int startIndex = -1, int shift = -1)
    {
        var list = RackAlternated(brokers);
        var n = list.Count;
        if (replicationFactor <= 0) throw new ArgumentOutOfRangeException(nameof(replicationFactor));
        if (replicationFactor > n)
            throw new InvalidReplicationFactorException($"Unable to replicate the partition {replicationFactor} time(s): The target replication factor of {replicationFactor} cannot be reached because only {n} broker(s) are registered.");
        var start = startIndex >= 0 ? startIndex % n : Random.Shared.Next(n);
        var nextShift = shift >= 0 ? shift : Random.Shared.Next(n);
        var result = new int[partitions][];
        for (var p = 0; p < partitions; p++)
        {
            if (p > 0 && p % n == 0) nextShift++;
            var first = (p + start) % n;
            var replicas = new List<int>(replicationFactor) { list[first].NodeId };
            var usedRacks = new HashSet<string?> { list[first].Rack };
            // Candidates in Kafka's order: the shifted distance from the leader, then every other broker in turn.
            var order = new List<int>();
            for (var j = 0; j < n - 1; j++) order.Add(n == 1 ? first : (first + 1 + ((nextShift + j) % (n - 1))) % n);
            while (replicas.Count < replicationFactor)
            {
                // A broker of a rack the partition does not use yet, while there is one; then any broker not chosen.
                var pick = order.FirstOrDefault(i => !replicas.Contains(list[i].NodeId) && !usedRacks.Contains(list[i].Rack), -1);
                if (pick < 0) pick = order.First(i => !replicas.Contains(list[i].NodeId));
                replicas.Add(list[pick].NodeId);
                usedRacks.Add(list[pick].Rack);
            }
            result[p] = [.. replicas];
        }
        return result;
    }

    /// <summary>Brokers ordered by id, interleaved by rack (rack a's first, rack b's first, ..., rack a's second, ...).</summary>
    private static List<BrokerRegistration> RackAlternated(IEnumerable<BrokerRegistration> brokers)
    {
        var byRack = brokers.OrderBy(b => b.NodeId).GroupBy(b => b.Rack ?? "").OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => new Queue<BrokerRegistration>(g)).ToList();
        var result = new List<BrokerRegistration>();
        while (byRack.Any(q => q.Count > 0))
            foreach (var q in byRack)
                if (q.Count > 0) result.Add(q.Dequeue());
        return result;
    }
}

/// <summary>The replication factor cannot be met with the brokers registered (INVALID_REPLICATION_FACTOR).</summary>
public sealed class InvalidReplicationFactorException(string message) : Exception(message);
