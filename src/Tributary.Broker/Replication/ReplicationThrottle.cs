using System.Collections.Frozen;
using System.Globalization;
using Tributary.Broker.Cluster;

namespace Tributary.Broker.Replication;

/// <summary>
/// Kafka's replication quotas (KIP-73), as a reassignment uses them to keep catching-up replicas from starving clients:
/// <list type="bullet">
/// <item>as leader, this broker serves the replicas its topics list in <c>leader.replication.throttled.replicas</c>
/// (<c>partition:thisBroker</c> entries, or <c>*</c>) to followers outside the ISR at most
/// <c>leader.replication.throttled.rate</c> bytes a second; a throttled partition is answered without records while
/// the quota is used up;</item>
/// <item>as follower, it fetches the partitions listed in <c>follower.replication.throttled.replicas</c> for this broker,
/// while it is outside their ISR, at most <c>follower.replication.throttled.rate</c> bytes a second, leaving them out
/// of its fetches while the quota is used up.</item>
/// </list>
/// An in-sync replica is never throttled (it must keep up, or it would slow acks=all and leave the ISR). The rates are
/// dynamic broker configs (this broker's own, else the cluster default, else the setting given at start, else
/// unlimited) and the replica lists topic configs; both follow every metadata image. The fetch paths ask
/// <see cref="CountsAsLeader"/> / <see cref="CountsAsFollower"/>, which cost a flag read when nothing is throttled and
/// a set lookup otherwise, and allocate nothing.
/// </summary>
public sealed class ReplicationThrottle
{
    public const string LeaderRate = "leader.replication.throttled.rate";
    public const string FollowerRate = "follower.replication.throttled.rate";
    public const string LeaderReplicas = "leader.replication.throttled.replicas";
    public const string FollowerReplicas = "follower.replication.throttled.replicas";

    private readonly int _nodeId;
    private readonly BrokerSettings _settings;
    private volatile Lists _lists = Lists.None;

    public ReplicationThrottle(int nodeId, BrokerSettings settings, TimeProvider time)
    {
        _nodeId = nodeId;
        _settings = settings;
        Leader = new TokenBucket(time);
        Follower = new TokenBucket(time);
    }

    /// <summary>Bytes this broker sends, as leader, to out-of-sync followers of throttled partitions.</summary>
    public TokenBucket Leader { get; }

    /// <summary>Bytes this broker fetches, as an out-of-sync follower, for throttled partitions.</summary>
    public TokenBucket Follower { get; }

    /// <summary>The partitions throttled on this broker: a set per side, and the topics throttled whole (<c>*</c>).</summary>
    private sealed record Lists(FrozenSet<(string, int)> Leader, FrozenSet<string> LeaderTopics, FrozenSet<(string, int)> Follower, FrozenSet<string> FollowerTopics)
    {
        public static readonly Lists None = new([], [], [], []);

        public bool AnyLeader { get; } = Leader.Count > 0 || LeaderTopics.Count > 0;

        public bool AnyFollower { get; } = Follower.Count > 0 || FollowerTopics.Count > 0;
    }

    /// <summary>Follows a new image: the rates in effect for this broker and the replicas its topics throttle here.</summary>
    public void Apply(MetadataImage image)
    {
        Leader.Rate = Rate(image, LeaderRate);
        Follower.Rate = Rate(image, FollowerRate);
        HashSet<(string, int)>? leader = null, follower = null;
        HashSet<string>? leaderTopics = null, followerTopics = null;
        foreach (var topic in image.TopicsByName.Values)
        {
            if (topic.Configs.TryGetValue(LeaderReplicas, out var l)) Parse(topic.Name, l, ref leader, ref leaderTopics);
            if (topic.Configs.TryGetValue(FollowerReplicas, out var f)) Parse(topic.Name, f, ref follower, ref followerTopics);
        }
        _lists = leader is null && follower is null && leaderTopics is null && followerTopics is null ? Lists.None
            : new Lists((leader ?? []).ToFrozenSet(), (leaderTopics ?? []).ToFrozenSet(StringComparer.Ordinal),
                (follower ?? []).ToFrozenSet(), (followerTopics ?? []).ToFrozenSet(StringComparer.Ordinal));
    }

    /// <summary>True when some partition is follower-throttled on this broker (the fetcher then looks per partition).</summary>
    public bool HasFollowerThrottles => _lists.AnyFollower;

    /// <summary>True when a fetch by <paramref name="replicaId"/> of this partition, led here, counts against the leader quota.</summary>
    public bool CountsAsLeader(string topic, int partition, int replicaId, MetadataImage image)
    {
        var lists = _lists;
        if (!lists.AnyLeader || (!lists.LeaderTopics.Contains(topic) && !lists.Leader.Contains((topic, partition)))) return false;
        return image.Partition(topic, partition) is { } state && !state.InIsr(replicaId);
    }

    /// <summary>True when this broker's fetches of the partition (as follower) count against the follower quota.</summary>
    public bool CountsAsFollower(string topic, int partition, MetadataImage image)
    {
        var lists = _lists;
        if (!lists.AnyFollower || (!lists.FollowerTopics.Contains(topic) && !lists.Follower.Contains((topic, partition)))) return false;
        return image.Partition(topic, partition) is { } state && !state.InIsr(_nodeId);
    }

    private long Rate(MetadataImage image, string name)
    {
        var value = image.DynamicBrokerConfig(_nodeId, name) ?? _settings.Get(name);
        return value is not null && long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var rate) && rate >= 0 ? rate : TokenBucket.Unlimited;
    }

    /// <summary>Adds the entries of one topic's replica list that name this broker (or <c>*</c>: the whole topic).</summary>
    private void Parse(string topic, string value, ref HashSet<(string, int)>? partitions, ref HashSet<string>? topics)
    {
        if (value.Trim() == "*")
        {
            (topics ??= new(StringComparer.Ordinal)).Add(topic);
            return;
        }
        foreach (var entry in value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            if (entry.Split(':', StringSplitOptions.TrimEntries) is [var p, var b]
                && int.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out var partition)
                && int.TryParse(b, NumberStyles.Integer, CultureInfo.InvariantCulture, out var broker) && broker == _nodeId)
                (partitions ??= []).Add((topic, partition));
    }
}
