using Tributary.Coordination;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Groups;

/// <summary>A member of a KIP-848 consumer group.</summary>
internal sealed class ConsumerMember(string memberId)
{
    public string MemberId { get; } = memberId;
    public string? InstanceId { get; set; }
    public string? RackId { get; set; }
    public string ClientId { get; set; } = "";
    public string ClientHost { get; set; } = "";
    public int MemberEpoch { get; set; }
    public int RebalanceTimeoutMs { get; set; }
    public List<string> SubscribedTopicNames { get; set; } = [];
    public string? SubscribedTopicRegex { get; set; }

    /// <summary>The topic names and what the group last resolved the regex to (see <see cref="ConsumerGroup.ResolvedRegexes"/>).</summary>
    public List<string> SubscribedTopics { get; set; } = [];
    public int PreviousEpoch { get; set; } = -1;
    public string? ServerAssignor { get; set; }

    /// <summary>What the member owns now (it acknowledged it), by topic id.</summary>
    public Dictionary<Guid, SortedSet<int>> Assigned { get; set; } = [];

    /// <summary>What the group's target assignment gives it.</summary>
    public Dictionary<Guid, SortedSet<int>> Target { get; set; } = [];

    public CoordinatorTimer? SessionTimer { get; set; }
    public long SessionDeadline { get; set; }

    /// <summary>Runs while the member has partitions to revoke; fences it when its rebalance timeout passes first.</summary>
    public CoordinatorTimer? RebalanceTimer { get; set; }
}

/// <summary>
/// What a subscribed regular expression matched at the group's last refresh: the topics, the catalog version the
/// refresh saw (<see cref="Metadata.TopicCatalog.Creations"/>) and when it ran. <paramref name="Replayed"/>: read back
/// from the log, where the version counts another process's creations, so the resolution counts as stale.
/// </summary>
internal sealed record ResolvedRegex(IReadOnlySet<string> Topics, long Version, long TimestampMs, bool Replayed = false);

/// <summary>
/// State of a KIP-848 consumer group: the group epoch (bumped when membership or subscriptions change), the target
/// assignment computed by the server-side assignor for that epoch, and each member's current assignment and epoch.
/// </summary>
internal sealed class ConsumerGroup
{
    public int GroupEpoch { get; set; }
    public int AssignmentEpoch { get; set; }
    public string Assignor { get; set; } = "uniform";
    public Dictionary<string, ConsumerMember> Members { get; } = new(StringComparer.Ordinal);

    /// <summary>Topic id → partition → member that owns it now (a partition is given to a new owner only once released).</summary>
    public Dictionary<(Guid, int), string> Owners { get; } = [];

    /// <summary>Partitions a member was told to revoke and has not yet reported released → that member.</summary>
    public Dictionary<(Guid, int), string> PendingRelease { get; } = [];

    /// <summary>
    /// The regexes members subscribe to that have been resolved, with what they matched: a member's regex adds these
    /// topics to its subscription, and nothing until it is resolved. Written by the refresh (GroupShard.Regex.cs) only.
    /// </summary>
    public Dictionary<string, ResolvedRegex> ResolvedRegexes { get; } = new(StringComparer.Ordinal);

    /// <summary>True while a refresh of <see cref="ResolvedRegexes"/> runs off the loop (at most one per group).</summary>
    public bool RegexRefreshRunning { get; set; }

    /// <summary>When the last refresh that could not resolve every regex started; it spaces out the retries.</summary>
    public long RegexRefreshFailedAtMs { get; set; } = long.MinValue;

    /// <summary>Topic names and partition counts the last assignment was computed for; a change recomputes it.</summary>
    public Dictionary<string, int> TopicPartitionCounts { get; set; } = new(StringComparer.Ordinal);

    /// <summary>
    /// The group's records as last written to <c>__consumer_offsets</c> (or replayed), by record type and member id, so
    /// each change writes only the records whose value changed and tombstones those that no longer exist.
    /// </summary>
    public Dictionary<(short Type, string Member), (byte[] Key, byte[] Value)> Persisted { get; set; } = [];

    public string StateName
    {
        get
        {
            if (Members.Count == 0) return "Empty";
            if (AssignmentEpoch != GroupEpoch) return "Assigning";
            // A static member on a temporary leave (epoch -2) keeps its assignment and does not hold the group back.
            return Members.Values.All(m => m.MemberEpoch == -2 || m.MemberEpoch == AssignmentEpoch && SameAssignment(m.Assigned, m.Target))
                ? "Stable" : "Reconciling";
        }
    }

    public static bool SameAssignment(Dictionary<Guid, SortedSet<int>> a, Dictionary<Guid, SortedSet<int>> b) =>
        a.Where(kv => kv.Value.Count > 0).Count() == b.Where(kv => kv.Value.Count > 0).Count()
        && a.Where(kv => kv.Value.Count > 0).All(kv => b.TryGetValue(kv.Key, out var other) && kv.Value.SetEquals(other));

    public void CancelTimers()
    {
        foreach (var m in Members.Values)
        {
            m.SessionTimer?.Dispose();
            m.RebalanceTimer?.Dispose();
        }
    }

    /// <summary>OffsetCommit from a member of this group carries its member epoch (KIP-848).</summary>
    public ErrorCode ValidateCommit(string memberId, int memberEpoch)
    {
        if (memberId.Length == 0 && memberEpoch < 0) return ErrorCode.UnknownMemberId;
        if (!Members.TryGetValue(memberId, out var member)) return ErrorCode.UnknownMemberId;
        if (memberEpoch > member.MemberEpoch) return ErrorCode.FencedMemberEpoch;
        if (memberEpoch < member.MemberEpoch) return ErrorCode.StaleMemberEpoch;
        return ErrorCode.None;
    }
}
