using Tributary.Broker.Cluster;
using Tributary.Storage;

namespace Tributary.Broker.Replication;

/// <summary>
/// A partition this broker leads, as Kafka's Partition on its leader: each follower's log end (from its fetch offsets)
/// and when it was last caught up, the high watermark (the smallest log end over the in-sync replicas, never past this
/// broker's own durable end), and the produce requests with acks=all waiting for it. Thread-safe: fetches, produces
/// and metadata changes arrive on any thread.
/// <para>
/// While an ISR expansion is being written the high watermark already counts the joining replicas (Kafka's "maximal
/// ISR", KIP-497): once the write commits, the controller may act on the larger ISR (complete a reassignment, elect the
/// new member) before this leader's image shows it, so nothing may be acknowledged meanwhile that the new member lacks.
/// </para>
/// </summary>
internal sealed class LeaderPartition
{
    private readonly object _lock = new();
    private readonly Dictionary<int, Follower> _followers = [];
    private readonly List<(long Offset, TaskCompletionSource<bool> Done)> _waiters = [];
    private long _highWatermark;
    private int[]? _proposedIsr;

    public LeaderPartition(string topic, int partition, PartitionLog log, PartitionState state, int nodeId, long initialHighWatermark)
    {
        Topic = topic;
        Partition = partition;
        Log = log;
        State = state;
        NodeId = nodeId;
        _highWatermark = Math.Min(initialHighWatermark, log.HighWatermark);
    }

    public string Topic { get; }

    public int Partition { get; }

    public PartitionLog Log { get; }

    public int NodeId { get; }

    /// <summary>The partition's state as of the last image (leader epoch, ISR).</summary>
    public PartitionState State { get; private set; }

    /// <summary>False once leadership moved away; waiters were answered then.</summary>
    public bool IsActive { get; private set; } = true;

    public long HighWatermark => Interlocked.Read(ref _highWatermark);

    private sealed class Follower
    {
        public long LogEnd = -1;
        public long LastCaughtUpMs;
        public long LastFetchLeaderEnd;
        public long LastFetchMs;
    }

    /// <summary>A newer image: the ISR may have changed (which moves the high watermark).</summary>
    public bool Update(PartitionState state, long nowMs)
    {
        lock (_lock)
        {
            foreach (var replica in state.Replicas)
                if (replica != NodeId && !_followers.ContainsKey(replica)) _followers[replica] = new Follower { LastCaughtUpMs = nowMs };
            State = state;
            return AdvanceLocked(out _);
        }
    }

    /// <summary>A follower fetched from <paramref name="fetchOffset"/>: everything below it is on its log.</summary>
    public bool OnFollowerFetch(int replicaId, long fetchOffset, long nowMs)
    {
        lock (_lock)
        {
            if (!_followers.TryGetValue(replicaId, out var f)) return false;
            var leaderEnd = Log.LogEndOffset;
            // Kafka's rule: caught up when it fetched the whole log now, or everything the log held at its previous fetch.
            if (fetchOffset >= leaderEnd) f.LastCaughtUpMs = nowMs;
            else if (fetchOffset >= f.LastFetchLeaderEnd) f.LastCaughtUpMs = Math.Max(f.LastCaughtUpMs, f.LastFetchMs);
            f.LastFetchLeaderEnd = leaderEnd;
            f.LastFetchMs = nowMs;
            f.LogEnd = fetchOffset;
            return AdvanceLocked(out _);
        }
    }

    /// <summary>This broker's durable end moved (its own appends were flushed).</summary>
    public bool OnLocalAdvance()
    {
        lock (_lock) return AdvanceLocked(out _);
    }

    /// <summary>
    /// The ISR this leader wants now (Kafka's maybeShrinkIsr / maybeExpandIsr): in-sync followers that have not been
    /// caught up for <paramref name="lagMaxMs"/> leave; out-of-sync followers whose log reaches the high watermark
    /// join, if <paramref name="eligible"/> (registered and not shutting down, KIP-841). Null when it is already right.
    /// </summary>
    /// <remarks>
    /// Without the eligibility rule a follower killed a moment ago still looks caught up here for up to
    /// <paramref name="lagMaxMs"/>, so when the controller drops it from the ISR (its lease ended) this leader adds it
    /// back, and the two rewrite the partition in turn until the lag runs out; meanwhile acks=all waits for a dead
    /// replica.
    /// </remarks>
    public int[]? WantedIsr(long nowMs, long lagMaxMs, Func<int, bool> eligible)
    {
        lock (_lock)
        {
            var isr = new List<int>();
            foreach (var replica in State.Replicas)
            {
                if (replica == NodeId)
                {
                    isr.Add(replica);
                    continue;
                }
                var f = _followers[replica];
                var inSync = State.InIsr(replica);
                if (inSync && nowMs - f.LastCaughtUpMs <= lagMaxMs) isr.Add(replica);
                else if (!inSync && f.LogEnd >= _highWatermark && f.LogEnd >= 0 && nowMs - f.LastCaughtUpMs <= lagMaxMs && eligible(replica)) isr.Add(replica);
            }
            var wanted = isr.ToArray();
            return wanted.AsSpan().SequenceEqual(State.Isr.Where(r => State.IsReplica(r)).OrderBy(r => Array.IndexOf(State.Replicas, r)).ToArray())
                ? null : wanted;
        }
    }

    /// <summary>
    /// An ISR change is being written: until <see cref="IsrWritten"/>, the high watermark waits for the union of the
    /// current ISR and <paramref name="isr"/> (a shrink takes effect only once written, an expansion at once).
    /// </summary>
    public void ProposeIsr(int[] isr)
    {
        lock (_lock) _proposedIsr = [.. State.Isr.Union(isr)];
    }

    /// <summary>The ISR write ended: committed (the image already holds it) or refused (the committed ISR stands).</summary>
    public bool IsrWritten()
    {
        lock (_lock)
        {
            _proposedIsr = null;
            return AdvanceLocked(out _);
        }
    }

    /// <summary>Completes when the high watermark reaches <paramref name="offset"/> (true) or leadership is lost (false).</summary>
    public Task<bool> WaitForAsync(long offset)
    {
        lock (_lock)
        {
            if (!IsActive) return Task.FromResult(false);
            if (_highWatermark >= offset) return Task.FromResult(true);
            var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((offset, done));
            return done.Task;
        }
    }

    /// <summary>Leadership moved away: every waiting produce is answered NOT_LEADER_OR_FOLLOWER.</summary>
    public void Resign()
    {
        List<(long, TaskCompletionSource<bool> Done)> waiting;
        lock (_lock)
        {
            IsActive = false;
            waiting = [.. _waiters];
            _waiters.Clear();
        }
        foreach (var w in waiting) w.Done.TrySetResult(false);
    }

    private bool AdvanceLocked(out List<TaskCompletionSource<bool>>? completed)
    {
        completed = null;
        var hw = Log.HighWatermark; // this broker's durable end
        foreach (var replica in _proposedIsr ?? State.Isr)
        {
            if (replica == NodeId) continue;
            hw = Math.Min(hw, _followers.TryGetValue(replica, out var f) ? Math.Max(f.LogEnd, 0) : 0);
        }
        if (hw <= _highWatermark) return false;
        Interlocked.Exchange(ref _highWatermark, hw);
        for (var i = _waiters.Count - 1; i >= 0; i--)
        {
            if (_waiters[i].Offset > hw) continue;
            _waiters[i].Done.TrySetResult(true);
            _waiters.RemoveAt(i);
        }
        return true;
    }
}
