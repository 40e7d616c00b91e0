using System.Collections.Concurrent;
using Tributary.Broker.Cluster;
using Tributary.Broker.Metadata;
using Tributary.Protocol.Messages;
using Tributary.Storage;

namespace Tributary.Broker.Replication;

/// <summary>
/// This broker's part in replication, as Kafka's ReplicaManager: after every metadata image it makes each local
/// replica a leader or a follower. As leader it tracks followers through their fetches, keeps the high watermark (the
/// smallest log end over the ISR), answers acks=all produces when it passes them, and shrinks or expands the ISR with
/// a compare-and-swap on the partition's state. As follower it hands the partition to the fetcher of its leader, which
/// truncates a divergent suffix (OffsetForLeaderEpoch) and then copies the leader's batches as they are.
/// </summary>
public sealed class ReplicaManager : IAsyncDisposable
{
    private readonly TopicCatalog _topics;
    private readonly BrokerSettings _settings;
    private readonly TimeProvider _time;
    private readonly BrokerLog _log;
    private readonly ConcurrentDictionary<(string, int), LeaderPartition> _leaders = new();
    private readonly ConcurrentDictionary<(string, int), long> _followerHighWatermarks = new();
    private readonly Dictionary<int, ReplicaFetcher> _fetchers = [];
    private readonly object _rolesLock = new();
    private readonly ITimer _isrTimer;
    private readonly long _lagMaxMs;
    private int _isrCheckRunning;

    public ReplicaManager(TopicCatalog topics, BrokerSettings settings, TimeProvider time, BrokerLog log)
    {
        _topics = topics;
        _settings = settings;
        _time = time;
        _log = log;
        _lagMaxMs = settings.Long("replica.lag.time.max.ms");
        Throttle = new ReplicationThrottle(topics.NodeId, settings, time);
        var interval = TimeSpan.FromMilliseconds(Math.Max(50, _lagMaxMs / 2));
        _isrTimer = time.CreateTimer(_ => _ = CheckIsrAsync(), null, interval, interval);
        topics.Store.Published += (_, image) => Reconcile(image);
        Reconcile(topics.Image);
    }

    /// <summary>
    /// Raised when a partition's high watermark moves past records a consumer could not read before: on a partition led
    /// here, and on one followed here when its leader reports a higher one (<see cref="CommittedOffset"/> moved).
    /// </summary>
    public event Action<PartitionLog>? HighWatermarkAdvanced;

    internal int NodeId => _topics.NodeId;

    internal MetadataImage Image => _topics.Image;

    /// <summary>The replication quotas (leader and follower) of this broker.</summary>
    public ReplicationThrottle Throttle { get; }

    /// <summary>
    /// The offset consumers may read up to: on a replicated partition this broker leads, its high watermark; else the
    /// log's durable end (a partition with one replica, or one this broker follows).
    /// </summary>
    public long HighWatermark(string topic, int partition, PartitionLog log) =>
        _leaders.TryGetValue((topic, partition), out var leader) ? Math.Min(leader.HighWatermark, log.HighWatermark) : log.HighWatermark;

    /// <summary>
    /// KIP-392: the offset a consumer fetching from this broker as a follower may read up to (<see cref="CommittedOffset"/>
    /// of a replica followed here); -1 when this broker does not follow the partition or has not heard from its leader.
    /// </summary>
    public long FollowerHighWatermark(string topic, int partition, PartitionLog log) =>
        _topics.Image.Partition(topic, partition) is { } state && state.Leader != NodeId && state.IsReplica(NodeId)
            && CommittedOffset(topic, partition, log) is { } committed ? committed : -1;

    /// <summary>Record bytes this broker served to consumers as a follower (KIP-392), for tests and metrics.</summary>
    public long FollowerFetchBytes => Interlocked.Read(ref _followerFetchBytes);

    private long _followerFetchBytes;

    internal void CountFollowerFetch(int bytes) => Interlocked.Add(ref _followerFetchBytes, bytes);

    /// <summary>
    /// The end of what is committed (on every in-sync replica) in this broker's replica, as far as this broker knows:
    /// on a partition led here, its high watermark; on one with a single replica here (or a broker alone), its durable
    /// end; on one followed here, the high watermark its leader last reported (bounded by the local log end), and null
    /// until a leader has reported one since this broker started. Records below it are never truncated (leaders come
    /// from the ISR), so a reader that applies only those never has to take anything back; an unclean election is the
    /// exception, which such a reader notices as a log end below what it applied.
    /// </summary>
    public long? CommittedOffset(string topic, int partition, PartitionLog log)
    {
        var key = (topic, partition);
        if (_leaders.TryGetValue(key, out var leader)) return Math.Min(leader.HighWatermark, log.HighWatermark);
        if (_topics.Image.Partition(topic, partition) is not { } state || (state.Leader == NodeId && state.Replicas.Length == 1))
            return log.HighWatermark;
        // Followed, or led here with followers before the leadership is set up: only what a leader said is committed.
        return _followerHighWatermarks.TryGetValue(key, out var known) ? Math.Min(known, log.HighWatermark) : null;
    }

    /// <summary>
    /// acks=all: waits until the high watermark reaches <paramref name="offsetExclusive"/>. NONE, NOT_LEADER_OR_FOLLOWER
    /// (leadership moved), REQUEST_TIMED_OUT, or NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR shrank below
    /// <paramref name="minInSync"/> meanwhile, as Kafka's delayed produce answers.
    /// </summary>
    public async Task<ErrorCode> WaitForReplicationAsync(string topic, int partition, long offsetExclusive, int minInSync, int timeoutMs, CancellationToken cancellationToken)
    {
        if (!_leaders.TryGetValue((topic, partition), out var leader))
        {
            // Not replicated (one replica, led here): durable is enough. Otherwise this broker lost the leadership
            // between the produce's leader check and now (a paused leader resuming with produces queued on its sockets
            // appends them before it sees the new image): its append will be truncated, so it must not be acknowledged.
            return _topics.Image.Partition(topic, partition) is { } state && (state.Leader != NodeId || state.Replicas.Length > 1)
                ? ErrorCode.NotLeaderOrFollower : ErrorCode.None;
        }
        var wait = leader.WaitForAsync(offsetExclusive);
        try
        {
            if (!await wait.WaitAsync(TimeSpan.FromMilliseconds(Math.Max(0, timeoutMs)), _time, cancellationToken).ConfigureAwait(false))
                return ErrorCode.NotLeaderOrFollower;
        }
        catch (TimeoutException)
        {
            return ErrorCode.RequestTimedOut;
        }
        return leader.State.Isr.Length < minInSync ? ErrorCode.NotEnoughReplicasAfterAppend : ErrorCode.None;
    }

    /// <summary>The ISR size of a partition this broker leads (for min.insync.replicas); the replica count otherwise.</summary>
    public int InSyncReplicas(string topic, int partition) =>
        _topics.Image.Partition(topic, partition) is { } state ? state.Isr.Length : 0;

    /// <summary>A follower's fetch reached the leader: its log end is the fetch offset.</summary>
    public void OnFollowerFetch(string topic, int partition, int replicaId, long fetchOffset)
    {
        if (!_leaders.TryGetValue((topic, partition), out var leader)) return;
        if (leader.OnFollowerFetch(replicaId, fetchOffset, _time.GetUtcNow().ToUnixTimeMilliseconds())) HighWatermarkAdvanced?.Invoke(leader.Log);
        // A follower that just caught up joins the ISR now rather than at the next periodic check.
        if (!leader.State.InIsr(replicaId)) _ = CheckIsrAsync();
    }

    /// <summary>True when this broker leads the partition and it has followers.</summary>
    public bool IsReplicatedLeader(string topic, int partition) => _leaders.ContainsKey((topic, partition));

    /// <summary>The leader epoch of a partition led here; -1 otherwise.</summary>
    public int LeaderEpoch(string topic, int partition) => _leaders.TryGetValue((topic, partition), out var l) ? l.State.LeaderEpoch : -1;

    /// <summary>The high watermark a follower last heard from its leader (it becomes leader from there).</summary>
    internal void RecordFollowerHighWatermark(string topic, int partition, PartitionLog log, long highWatermark)
    {
        var key = (topic, partition);
        var previous = _followerHighWatermarks.GetValueOrDefault(key, -1);
        _followerHighWatermarks[key] = highWatermark;
        // Consumers fetching from this follower (KIP-392) and the registry's tail wait for it.
        if (highWatermark > previous) HighWatermarkAdvanced?.Invoke(log);
    }

    private void Reconcile(MetadataImage image)
    {
        lock (_rolesLock)
        {
            Throttle.Apply(image);
            var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
            var follow = new Dictionary<int, List<FollowedPartition>>();
            foreach (var topic in image.TopicsByName.Values)
                for (var p = 0; p < topic.PartitionCount; p++)
                {
                    var state = topic.Partitions[p];
                    if (!state.IsReplica(NodeId) || _topics.GetPartition(topic.Name, p) is not { } log) continue;
                    var key = (topic.Name, p);
                    if (state.Leader == NodeId)
                    {
                        // Batches appended from now on carry this epoch; the epoch cache marks where it starts.
                        log.LeaderEpoch = state.LeaderEpoch;
                        log.Following = false;
                        if (state.Replicas.Length == 1)
                        {
                            // One replica: its durable end is the high watermark, and produce pays nothing for replication.
                            if (_leaders.TryRemove(key, out var single)) Resign(single);
                            continue;
                        }
                        if (_leaders.TryGetValue(key, out var existing) && existing.Log == log && existing.State.LeaderEpoch == state.LeaderEpoch)
                        {
                            if (existing.Update(state, now)) HighWatermarkAdvanced?.Invoke(log);
                            continue;
                        }
                        if (existing is not null) Resign(existing);
                        var initial = _followerHighWatermarks.GetValueOrDefault(key, 0);
                        var leader = new LeaderPartition(topic.Name, p, log, state, NodeId, initial);
                        leader.Update(state, now);
                        log.HighWatermarkAdvanced += OnLocalAdvance;
                        _leaders[key] = leader;
                    }
                    else
                    {
                        // Fenced before the fetcher truncates and appends: a leader append racing this change fails, and so
                        // does a fetch from a previous leader still in flight.
                        log.Follow(state.LeaderEpoch);
                        if (_leaders.TryRemove(key, out var old)) Resign(old);
                        if (state.Leader >= 0 && image.Brokers.ContainsKey(state.Leader))
                        {
                            if (!follow.TryGetValue(state.Leader, out var list)) follow[state.Leader] = list = [];
                            list.Add(new FollowedPartition(topic.Name, topic.Id, p, log, state.LeaderEpoch));
                        }
                    }
                }
            // Leaderships of partitions gone from the image (deleted topics, moved replicas).
            foreach (var (key, leader) in _leaders)
                if (image.Partition(key.Item1, key.Item2) is not { } s || s.Leader != NodeId || _topics.GetPartition(key.Item1, key.Item2) != leader.Log)
                    if (_leaders.TryRemove(key, out var old)) Resign(old);
            foreach (var (leaderId, fetcher) in _fetchers.ToList())
                if (!follow.ContainsKey(leaderId))
                {
                    fetcher.SetPartitions([]);
                }
            foreach (var (leaderId, partitions) in follow)
            {
                var endpoint = image.Brokers[leaderId];
                if (!_fetchers.TryGetValue(leaderId, out var fetcher))
                    _fetchers[leaderId] = fetcher = new ReplicaFetcher(this, leaderId, _settings, _log);
                fetcher.SetEndpoint(endpoint.Host, endpoint.Port);
                fetcher.SetPartitions(partitions);
            }
        }
    }

    private void Resign(LeaderPartition leader)
    {
        leader.Log.HighWatermarkAdvanced -= OnLocalAdvance;
        _followerHighWatermarks[(leader.Topic, leader.Partition)] = leader.HighWatermark;
        leader.Resign();
    }

    private void OnLocalAdvance(PartitionLog log)
    {
        foreach (var leader in _leaders.Values)
            if (ReferenceEquals(leader.Log, log) && leader.OnLocalAdvance()) HighWatermarkAdvanced?.Invoke(log);
    }

    /// <summary>Kafka's periodic ISR check on every partition led here, written as AlterPartition (compare-and-swap).</summary>
    private async Task CheckIsrAsync()
    {
        if (Interlocked.Exchange(ref _isrCheckRunning, 1) == 1) return;
        try
        {
            var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
            var brokers = _topics.Image.Brokers;
            bool Eligible(int replica) => brokers.TryGetValue(replica, out var b) && !b.ShuttingDown;
            foreach (var leader in _leaders.Values)
            {
                if (!leader.IsActive || leader.State.Replicas.Length == 1 || leader.WantedIsr(now, _lagMaxMs, Eligible) is not { } isr) continue;
                var current = leader.State;
                var topic = _topics.Image.TopicsByName.GetValueOrDefault(leader.Topic);
                if (topic is null) continue;
                var next = current with { Isr = isr, PartitionEpoch = current.PartitionEpoch + 1 };
                leader.ProposeIsr(isr);
                try
                {
                    if (await _topics.Store.AlterPartitionAsync(leader.Topic, topic.Id, leader.Partition, current, next, asController: false, CancellationToken.None).ConfigureAwait(false))
                        _log.Info($"replication: {leader.Topic}-{leader.Partition} ISR [{string.Join(",", current.Isr)}] -> [{string.Join(",", isr)}].");
                }
                finally
                {
                    if (leader.IsrWritten()) HighWatermarkAdvanced?.Invoke(leader.Log);
                }
            }
        }
        catch (Exception e)
        {
            _log.Warn($"replication: the ISR check failed: {e.Message}");
        }
        finally
        {
            Volatile.Write(ref _isrCheckRunning, 0);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _isrTimer.Dispose();
        List<ReplicaFetcher> fetchers;
        lock (_rolesLock)
        {
            fetchers = [.. _fetchers.Values];
            _fetchers.Clear();
        }
        foreach (var fetcher in fetchers) await fetcher.DisposeAsync().ConfigureAwait(false);
        foreach (var leader in _leaders.Values) Resign(leader);
        _leaders.Clear();
    }
}

/// <summary>A partition this broker follows: where its log is and the leader epoch it follows under.</summary>
internal sealed record FollowedPartition(string Topic, Guid TopicId, int Partition, PartitionLog Log, int LeaderEpoch);
