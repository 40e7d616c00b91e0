namespace Tributary.Broker.Tests.Faults;

/// <summary>
/// Judges one run's history, as Jepsen's Kafka workload does for the parts that apply to idempotent producers:
/// <list type="bullet">
/// <item>lost: an acknowledged value absent from the final read;</item>
/// <item>duplicated: a value read more than once (idempotence promises each write lands at most once);</item>
/// <item>moved: an acknowledged value read at another partition or offset than its acknowledgement named, one value
/// acknowledged at two places, or two values acknowledged at the same place;</item>
/// <item>nonmonotonic: a partition whose offsets, in read order, do not strictly increase;</item>
/// <item>phantom: a value read that no producer ever attempted.</item>
/// </list>
/// A failed write is indeterminate: reading it is allowed (it is counted as recovered), missing it too. An
/// acknowledgement may come without an offset (librdkafka reports -1001 when a retried batch was answered as a
/// duplicate, DUPLICATE_SEQUENCE_NUMBER); such a value must still be read, anywhere in its partition.
/// Replica divergence (the bytes of each partition on each node) is checked apart, by the test.
/// </summary>
internal static class FaultChecker
{
    public sealed record Result(int Acknowledged, int Failed, int Read, int Recovered, List<string> Lost, List<string> Duplicated,
        List<string> Moved, List<string> Nonmonotonic, List<string> Phantom, List<string> Other)
    {
        public int Anomalies => Lost.Count + Duplicated.Count + Moved.Count + Nonmonotonic.Count + Phantom.Count + Other.Count;

        public string Summary =>
            $"acknowledged {Acknowledged}, failed {Failed}, read {Read} (of which {Recovered} failed writes), " +
            $"lost {Lost.Count}, duplicated {Duplicated.Count}, moved {Moved.Count}, nonmonotonic {Nonmonotonic.Count}, phantom {Phantom.Count}, " +
            $"transaction and group anomalies {Other.Count}";

        /// <summary>The first few examples of each anomaly, for the failure message.</summary>
        public string Examples(int each = 10) => string.Join("\n", new[]
        {
            ("lost", Lost), ("duplicated", Duplicated), ("moved", Moved), ("nonmonotonic", Nonmonotonic), ("phantom", Phantom),
            ("transactions and group", Other),
        }.Where(k => k.Item2.Count > 0).Select(k => $"{k.Item1}: {string.Join("; ", k.Item2.Take(each))}"));
    }

    /// <param name="transactionsAndGroup">What the transactional and group checks found (<see cref="FaultTransactions"/>,
    /// <see cref="FaultGroupCommits"/>).</param>
    public static Result Check(FaultHistory history, List<string> transactionsAndGroup)
    {
        List<string> lost = [], duplicated = [], moved = [], nonmonotonic = [], phantom = [];

        var acked = new Dictionary<string, FaultHistory.Ack>();
        var ackedAt = new Dictionary<FaultHistory.Ack, string>();
        foreach (var (value, ack) in history.Acks)
        {
            if (acked.TryGetValue(value, out var earlier) && earlier != ack)
                moved.Add($"{value} acknowledged at both {earlier.Partition}@{earlier.Offset} and {ack.Partition}@{ack.Offset}");
            acked[value] = ack;
            if (ack.Offset < 0) continue;
            if (ackedAt.TryGetValue(ack, out var other) && other != value)
                moved.Add($"{other} and {value} both acknowledged at {ack.Partition}@{ack.Offset}");
            ackedAt[ack] = value;
        }

        var readAt = new Dictionary<string, List<FaultHistory.Ack>>();
        var readValue = new Dictionary<FaultHistory.Ack, string>();
        var read = 0;
        foreach (var (partition, records) in history.Reads.OrderBy(r => r.Key))
        {
            var previous = -1L;
            foreach (var record in records)
            {
                read++;
                if (record.Offset <= previous) nonmonotonic.Add($"partition {partition}: offset {record.Offset} after {previous}");
                previous = record.Offset;
                readValue[new FaultHistory.Ack(partition, record.Offset)] = record.Value;
                if (!readAt.TryGetValue(record.Value, out var places)) readAt[record.Value] = places = [];
                places.Add(new FaultHistory.Ack(partition, record.Offset));
            }
        }

        var recovered = 0;
        foreach (var (value, places) in readAt)
        {
            if (places.Count > 1) duplicated.Add($"{value} at {string.Join(", ", places.Select(p => $"{p.Partition}@{p.Offset}"))}");
            if (!history.Attempts.ContainsKey(value)) phantom.Add($"{value} at {places[0].Partition}@{places[0].Offset}");
            if (!acked.ContainsKey(value) && history.Failures.ContainsKey(value)) recovered++;
        }
        foreach (var (value, ack) in acked)
        {
            if (!readAt.TryGetValue(value, out var places))
                lost.Add($"{value} acknowledged at {ack.Partition}@{ack.Offset}" + (readValue.TryGetValue(ack, out var there) ? $" (read there: {there})" : ""));
            else if (ack.Offset < 0 ? !places.Any(p => p.Partition == ack.Partition) : !places.Contains(ack)) moved.Add($"{value} acknowledged at {ack.Partition}@{ack.Offset}, read at {places[0].Partition}@{places[0].Offset}");
        }
        lost.Sort(StringComparer.Ordinal);
        return new Result(acked.Count, history.Failures.Count, read, recovered, lost, duplicated, moved, nonmonotonic, phantom, transactionsAndGroup);
    }
}
