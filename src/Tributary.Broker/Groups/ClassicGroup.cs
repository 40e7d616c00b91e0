using Tributary.Coordination;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Groups;

/// <summary>Kafka's classic group states, named as DescribeGroups and ListGroups report them.</summary>
public enum GroupState { Empty, PreparingRebalance, CompletingRebalance, Stable, Dead }

/// <summary>One member of a classic group. Owned by the coordinator loop; never touched from other threads.</summary>
internal sealed class ClassicMember(string memberId, string? instanceId, string clientId, string clientHost)
{
    public string MemberId { get; } = memberId;
    public string? InstanceId { get; } = instanceId;
    public string ClientId { get; } = clientId;
    public string ClientHost { get; } = clientHost;
    public int SessionTimeoutMs { get; set; }
    public int RebalanceTimeoutMs { get; set; }
    public List<(string Name, byte[] Metadata)> Protocols { get; set; } = [];
    public byte[] Assignment { get; set; } = [];

    /// <summary>Set while a JoinGroup of this member waits for the rebalance to finish its join phase.</summary>
    public TaskCompletionSource<JoinGroupResponse>? JoinWaiter { get; set; }

    /// <summary>Set while a SyncGroup of this member waits for the leader's assignment.</summary>
    public TaskCompletionSource<SyncGroupResponse>? SyncWaiter { get; set; }

    public CoordinatorTimer? SessionTimer { get; set; }
    public long SessionDeadline { get; set; }

    public byte[]? MetadataFor(string? protocol) => Protocols.FirstOrDefault(p => p.Name == protocol).Metadata;
}

/// <summary>
/// A group as the coordinator keeps it: its committed offsets (which every group has, including groups of
/// assign()-only consumers that never join) and, for groups of the classic protocol, the membership state machine
/// Empty → PreparingRebalance → CompletingRebalance → Stable (Dead once deleted). A group of the KIP-848 consumer
/// protocol carries its state in <see cref="Consumer"/> instead.
/// </summary>
internal sealed class Group(string id)
{
    public string Id { get; } = id;
    public GroupState State { get; set; } = GroupState.Empty;
    public string? ProtocolType { get; set; }
    public string? ProtocolName { get; set; }
    public int Generation { get; set; }
    public string? Leader { get; set; }
    public long StateTimestamp { get; set; }
    public Dictionary<string, ClassicMember> Members { get; } = new(StringComparer.Ordinal);

    /// <summary>group.instance.id → current member id of each static member.</summary>
    public Dictionary<string, string> StaticMembers { get; } = new(StringComparer.Ordinal);

    /// <summary>Member ids handed out with MEMBER_ID_REQUIRED (KIP-394) that have not joined with them yet.</summary>
    public HashSet<string> PendingMembers { get; } = new(StringComparer.Ordinal);

    public Dictionary<(string Topic, int Partition), CommittedOffset> Offsets { get; } = [];

    /// <summary>
    /// Where in <c>__consumer_offsets</c> each of <see cref="Offsets"/> was written (Kafka's record offset): a commit
    /// replaces an offset only when written after it, so a transaction committed late never undoes a newer plain commit,
    /// live as in replay. An entry may outlive its offset; it is consulted only while the offset exists.
    /// </summary>
    public Dictionary<(string Topic, int Partition), long> OffsetPositions { get; } = [];

    /// <summary>Installs <paramref name="value"/>, written at <paramref name="position"/>, unless the offset there was written later.</summary>
    public bool SetOffset((string Topic, int Partition) key, CommittedOffset value, long position)
    {
        if (Offsets.ContainsKey(key) && OffsetPositions.TryGetValue(key, out var current) && current > position) return false;
        Offsets[key] = value;
        OffsetPositions[key] = position;
        return true;
    }

    public bool RemoveOffset((string Topic, int Partition) key)
    {
        OffsetPositions.Remove(key);
        return Offsets.Remove(key);
    }

    /// <summary>Commits appended but not yet applied; offset expiry does not remove a group while any are in flight.</summary>
    public int PendingCommits { get; set; }

    // The join phase timer (initial delay or rebalance timeout). The token makes a stale timer callback a no-op.
    public CoordinatorTimer? JoinTimer { get; set; }
    public int JoinTimerToken { get; set; }
    public bool InInitialDelay { get; set; }
    public long InitialDelayRemainingMs { get; set; }
    public bool NewMemberAdded { get; set; }

    /// <summary>State of the KIP-848 consumer protocol, when the group uses it.</summary>
    public ConsumerGroup? Consumer { get; set; }

    public bool IsClassicEmpty => Members.Count == 0;

    public bool IsEmpty => Members.Count == 0 && (Consumer is null || Consumer.Members.Count == 0);

    public string StateName => Consumer is { } c ? c.StateName : State.ToString();

    public string TypeName => Consumer is not null ? "consumer" : "classic";

    public int MaxRebalanceTimeoutMs => Members.Count == 0 ? 0 : Members.Values.Max(m => m.RebalanceTimeoutMs);

    /// <summary>Whether a joining member's protocols fit the group (Kafka's supportsProtocols).</summary>
    public bool SupportsProtocols(string protocolType, IReadOnlyCollection<string> names)
    {
        if (Members.Count == 0) return protocolType.Length > 0 && names.Count > 0;
        return protocolType == ProtocolType && CandidateProtocols().Overlaps(names);
    }

    /// <summary>The protocols every member supports.</summary>
    public HashSet<string> CandidateProtocols()
    {
        HashSet<string>? candidates = null;
        foreach (var m in Members.Values)
        {
            var names = m.Protocols.Select(p => p.Name);
            if (candidates is null) candidates = new HashSet<string>(names, StringComparer.Ordinal);
            else candidates.IntersectWith(names);
        }
        return candidates ?? [];
    }

    /// <summary>Kafka's vote: each member votes for its most preferred candidate; the most votes wins.</summary>
    public string SelectProtocol()
    {
        var candidates = CandidateProtocols();
        return Members.Values
            .Select(m => m.Protocols.First(p => candidates.Contains(p.Name)).Name)
            .GroupBy(n => n, StringComparer.Ordinal)
            .OrderByDescending(g => g.Count())
            .First().Key;
    }

    /// <summary>Topics the members subscribe to, from the consumer protocol's subscription (used by OffsetDelete).</summary>
    public HashSet<string> SubscribedTopics()
    {
        var topics = new HashSet<string>(StringComparer.Ordinal);
        if (ProtocolType == "consumer")
            foreach (var m in Members.Values)
                if (m.MetadataFor(ProtocolName) is { } metadata) topics.UnionWith(ConsumerProtocol.SubscribedTopics(metadata));
        if (Consumer is not null)
            foreach (var m in Consumer.Members.Values) topics.UnionWith(m.SubscribedTopics);
        return topics;
    }
}

/// <summary>Reads the topic list of a ConsumerProtocolSubscription (int16 version, int32 count, int16-length strings, ...).</summary>
internal static class ConsumerProtocol
{
    public static IEnumerable<string> SubscribedTopics(byte[] metadata)
    {
        var topics = new List<string>();
        try
        {
            var span = metadata.AsSpan();
            var count = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(span[2..]);
            var position = 6;
            for (var i = 0; i < count; i++)
            {
                var length = System.Buffers.Binary.BinaryPrimitives.ReadInt16BigEndian(span[position..]);
                position += 2;
                topics.Add(System.Text.Encoding.UTF8.GetString(span.Slice(position, length)));
                position += length;
            }
        }
        catch (ArgumentOutOfRangeException)
        {
            // Not a consumer subscription after all: no topics.
        }
        return topics;
    }
}
