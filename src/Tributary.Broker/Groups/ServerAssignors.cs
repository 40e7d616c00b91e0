namespace Tributary.Broker.Groups;

/// <summary>
/// The server-side assignors of the KIP-848 consumer protocol.
/// <list type="bullet">
/// <item><b>uniform</b> (the default): spreads all subscribed partitions so member counts differ by at most one
/// (per topic when subscriptions differ), and is sticky — a member keeps the partitions of its previous target up to
/// its quota, so a membership change moves as few partitions as possible.</item>
/// <item><b>range</b>: per topic, members subscribed to it (sorted by id) get contiguous ranges; the first
/// (partitions mod members) get one extra. Co-partitioned topics line up, as with the client-side range assignor.</item>
/// </list>
/// </summary>
public static class ServerAssignors
{
    public static bool Supports(string name) => name is "uniform" or "range";

    /// <param name="subscriptions">member id → subscribed topic names.</param>
    /// <param name="partitionCounts">topic name → partition count, for the topics that exist.</param>
    /// <param name="previous">member id → partitions of its previous target (stickiness).</param>
    public static Dictionary<string, HashSet<(Guid TopicId, int Partition)>> Assign(
        string assignor,
        IReadOnlyDictionary<string, IReadOnlyCollection<string>> subscriptions,
        IReadOnlyDictionary<string, int> partitionCounts,
        IReadOnlyDictionary<string, Guid> topicIds,
        IReadOnlyDictionary<string, HashSet<(Guid, int)>> previous)
    {
        var result = subscriptions.Keys.ToDictionary(m => m, _ => new HashSet<(Guid, int)>(), StringComparer.Ordinal);
        if (assignor == "range") Range(subscriptions, partitionCounts, topicIds, result);
        else Uniform(subscriptions, partitionCounts, topicIds, previous, result);
        return result;
    }

    private static void Range(IReadOnlyDictionary<string, IReadOnlyCollection<string>> subscriptions, IReadOnlyDictionary<string, int> partitionCounts,
        IReadOnlyDictionary<string, Guid> topicIds, Dictionary<string, HashSet<(Guid, int)>> result)
    {
        foreach (var (topic, count) in partitionCounts.OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            var members = subscriptions.Where(s => s.Value.Contains(topic)).Select(s => s.Key).Order(StringComparer.Ordinal).ToList();
            if (members.Count == 0) continue;
            var per = count / members.Count;
            var extra = count % members.Count;
            var next = 0;
            for (var i = 0; i < members.Count; i++)
            {
                var n = per + (i < extra ? 1 : 0);
                for (var p = next; p < next + n; p++) result[members[i]].Add((topicIds[topic], p));
                next += n;
            }
        }
    }

    private static void Uniform(IReadOnlyDictionary<string, IReadOnlyCollection<string>> subscriptions, IReadOnlyDictionary<string, int> partitionCounts,
        IReadOnlyDictionary<string, Guid> topicIds, IReadOnlyDictionary<string, HashSet<(Guid, int)>> previous,
        Dictionary<string, HashSet<(Guid, int)>> result)
    {
        // Group topics by the exact set of members subscribing to them, so each such set is balanced on its own.
        var bySubscribers = partitionCounts.Keys
            .GroupBy(t => string.Join('\n', subscriptions.Where(s => s.Value.Contains(t)).Select(s => s.Key).Order(StringComparer.Ordinal)))
            .Where(g => g.Key.Length > 0);
        foreach (var topics in bySubscribers)
        {
            var members = topics.Key.Split('\n');
            var partitions = topics.OrderBy(t => t, StringComparer.Ordinal)
                .SelectMany(t => Enumerable.Range(0, partitionCounts[t]).Select(p => (topicIds[t], p))).ToList();
            var quota = partitions.Count / members.Length;
            var extra = partitions.Count % members.Length;
            var counts = members.ToDictionary(m => m, _ => 0, StringComparer.Ordinal);
            var unassigned = new List<(Guid, int)>();
            var keptExtra = 0;
            foreach (var partition in partitions)
            {
                var owner = members.FirstOrDefault(m => previous.TryGetValue(m, out var prev) && prev.Contains(partition));
                if (owner is not null && (counts[owner] < quota || (counts[owner] == quota && keptExtra < extra)))
                {
                    if (counts[owner] == quota) keptExtra++;
                    counts[owner]++;
                    result[owner].Add(partition);
                }
                else
                {
                    unassigned.Add(partition);
                }
            }
            foreach (var partition in unassigned)
            {
                var target = members.OrderBy(m => counts[m]).ThenBy(m => m, StringComparer.Ordinal).First();
                counts[target]++;
                result[target].Add(partition);
            }
        }
    }
}
