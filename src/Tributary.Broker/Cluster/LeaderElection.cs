using Tributary.Protocol.Messages;

namespace Tributary.Broker.Cluster;

/// <summary>Kafka's <c>ElectionType</c>, as ElectLeaders v1+ carries it.</summary>
public enum ElectionType : sbyte
{
    Preferred = 0,
    Unclean = 1,
}

/// <summary>One partition's election: the error Kafka answers, and the state to write when it is NONE.</summary>
public readonly record struct ElectionDecision(ErrorCode Error, PartitionState? Next, string? Message = null);

/// <summary>
/// Elections asked for by an operator (ElectLeaders) or by the controller's preferred-leader rebalance, with the rules of
/// Kafka's controller (ReplicationControlManager.electLeader and PartitionChangeBuilder):
/// <list type="bullet">
/// <item>A candidate is valid when it is in the ISR and its broker is eligible: registered and not in controlled
/// shutdown (Kafka's unfenced broker).</item>
/// <item>PREFERRED: nothing to do (ELECTION_NOT_NEEDED) when the first replica leads. Else the preferred replica takes
/// over when valid; when it is not and the current leader is valid, nothing changes (PREFERRED_LEADER_NOT_AVAILABLE);
/// a partition without a valid leader gets the first valid replica after it.</item>
/// <item>UNCLEAN: ELECTION_NOT_NEEDED when the partition has a leader. Else the first valid replica leads (clean); with
/// none, the first eligible replica out of the ISR leads and the ISR becomes just it (its log is the truth now, what the
/// others had beyond it is lost); with no eligible replica at all, ELIGIBLE_LEADERS_NOT_AVAILABLE.</item>
/// <item>Any change bumps the leader epoch and the partition epoch; the ISR is kept except after an unclean election.</item>
/// </list>
/// Everything here but <see cref="ElectAsync"/> is a pure function of the state given, so tests drive it directly.
/// </summary>
public static class LeaderElection
{
    /// <summary>How often an election is decided again when its compare-and-swap lost to another change of the partition.</summary>
    public const int MaxAttempts = 5;

    /// <summary>Kafka's default texts for the election errors (ApiError without a message uses them).</summary>
    public const string NotNeededMessage = "Leader election not needed for topic partition.";
    public const string PreferredNotAvailableMessage = "The preferred leader was not available.";
    public const string EligibleNotAvailableMessage = "Eligible topic partition leaders are not available.";

    /// <summary>Brokers that may lead: registered (lease held) and not shutting down, as the controller counts them.</summary>
    public static IReadOnlySet<int> EligibleBrokers(MetadataImage image) =>
        image.Brokers.Values.Where(b => !b.ShuttingDown).Select(b => b.NodeId).ToHashSet();

    /// <summary>The election of one partition in state <paramref name="state"/>, with <paramref name="eligible"/> the brokers that may lead.</summary>
    public static ElectionDecision Decide(PartitionState state, ElectionType type, IReadOnlySet<int> eligible)
    {
        var preferred = state.Replicas.Length > 0 ? state.Replicas[0] : -1;
        if (type == ElectionType.Preferred ? state.Leader == preferred && preferred >= 0 : state.Leader >= 0)
            return new(ErrorCode.ElectionNotNeeded, null, NotNeededMessage);
        bool Valid(int replica) => replica >= 0 && state.InIsr(replica) && eligible.Contains(replica);
        if (type == ElectionType.Preferred)
        {
            if (Valid(preferred)) return Elected(state, preferred, state.Isr);
            // The current leader stays when it can (Kafka does not move away from a valid leader to a non-preferred one).
            var other = Valid(state.Leader) ? -1 : state.Replicas.Skip(1).FirstOrDefault(Valid, -1);
            return other >= 0 ? Elected(state, other, state.Isr) : new(ErrorCode.PreferredLeaderNotAvailable, null, PreferredNotAvailableMessage);
        }
        var clean = state.Replicas.FirstOrDefault(Valid, -1);
        if (clean >= 0) return Elected(state, clean, state.Isr);
        var unclean = state.Replicas.FirstOrDefault(eligible.Contains, -1);
        return unclean >= 0 ? Elected(state, unclean, [unclean]) : new(ErrorCode.EligibleLeadersNotAvailable, null, EligibleNotAvailableMessage);
    }

    private static ElectionDecision Elected(PartitionState state, int leader, int[] isr) =>
        new(ErrorCode.None, state with { Leader = leader, Isr = isr, LeaderEpoch = state.LeaderEpoch + 1, PartitionEpoch = state.PartitionEpoch + 1 });

    /// <summary>
    /// The partitions the preferred-leader rebalance moves, by the rule of Kafka's controller
    /// (<c>checkAndTriggerAutoLeaderRebalance</c>): partitions are grouped by their preferred replica; a broker's imbalance
    /// ratio is the share of its group not led by it (leaderless ones included); when that ratio exceeds
    /// <paramref name="imbalancePercentage"/> / 100, each partition of the group whose preferred replica is eligible and
    /// in the ISR is moved back to it. (KRaft controllers ignore the percentage and move every such partition; 0 does that.)
    /// </summary>
    public static IReadOnlyList<(TopicInfo Topic, int Partition)> RebalanceCandidates(MetadataImage image, IReadOnlySet<int> eligible, int imbalancePercentage)
    {
        var byPreferred = new Dictionary<int, (int Total, List<(TopicInfo, int)> NotLed)>();
        foreach (var topic in image.TopicsByName.Values.OrderBy(t => t.Name, StringComparer.Ordinal))
            for (var p = 0; p < topic.PartitionCount; p++)
            {
                var state = topic.Partitions[p];
                if (state.Replicas.Length == 0) continue;
                var preferred = state.Replicas[0];
                var group = byPreferred.TryGetValue(preferred, out var g) ? g : (0, []);
                if (state.Leader != preferred) group.NotLed.Add((topic, p));
                byPreferred[preferred] = (group.Total + 1, group.NotLed);
            }
        var moves = new List<(TopicInfo, int)>();
        foreach (var (preferred, (total, notLed)) in byPreferred.OrderBy(kv => kv.Key))
        {
            if ((double)notLed.Count / total <= imbalancePercentage / 100.0) continue;
            moves.AddRange(notLed.Where(x => eligible.Contains(preferred) && x.Item1.Partitions[x.Item2].InIsr(preferred)));
        }
        return moves;
    }

    /// <summary>
    /// Runs one partition's election against <paramref name="store"/>: decides from the current image and writes the
    /// change with compare-and-swap on the partition's state; when another change won meanwhile, decides again from the
    /// newer image, at most <see cref="MaxAttempts"/> times (then REQUEST_TIMED_OUT, which a client may retry).
    /// </summary>
    /// <param name="asController">The controller's own election (fenced on the controller key), not an operator's.</param>
    public static async Task<ElectionDecision> ElectAsync(IMetadataStore store, string topic, int partition, ElectionType type, bool asController,
        CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            var image = store.Image;
            if (!image.TopicsByName.TryGetValue(topic, out var info))
                return new(ErrorCode.UnknownTopicOrPartition, null, $"No such topic as {topic}");
            if (partition < 0 || partition >= info.PartitionCount)
                return new(ErrorCode.UnknownTopicOrPartition, null, $"No such partition as {topic}-{partition}");
            var state = info.Partitions[partition];
            var decision = Decide(state, type, EligibleBrokers(image));
            if (decision.Next is not { } next) return decision;
            if (await store.AlterPartitionAsync(topic, info.Id, partition, state, next, asController, cancellationToken).ConfigureAwait(false))
                return decision;
            if (attempt == MaxAttempts)
                return new(ErrorCode.RequestTimedOut, null, $"The state of {topic}-{partition} kept changing during the election; try again.");
            // The write lost to a change this broker's image may not hold yet: decide again once it does.
            await NewerImageAsync(store, image.Revision, TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Returns once the store publishes an image newer than <paramref name="revision"/>, or after <paramref name="atMost"/>.</summary>
    private static async Task NewerImageAsync(IMetadataStore store, long revision, TimeSpan atMost, CancellationToken cancellationToken)
    {
        var newer = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnPublished(MetadataImage previous, MetadataImage image)
        {
            if (image.Revision > revision) newer.TrySetResult();
        }
        store.Published += OnPublished;
        try
        {
            if (store.Image.Revision > revision) return;
            await Task.WhenAny(newer.Task, Task.Delay(atMost, cancellationToken)).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
        }
        finally
        {
            store.Published -= OnPublished;
        }
    }
}
