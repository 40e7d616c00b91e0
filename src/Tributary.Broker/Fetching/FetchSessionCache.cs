namespace Tributary.Broker.Fetching;

/// <summary>
/// Incremental fetch sessions (KIP-227). A session remembers the partitions a consumer fetches and what it was last
/// told about each (offset, high watermark, log start), so an incremental fetch names only what changed and its
/// response carries only partitions with news. Sessions are evicted least-recently-used beyond the cache size
/// (Kafka's max.incremental.fetch.session.cache.slots).
/// </summary>
internal sealed class FetchSessionCache(TimeProvider time, int maxSessions = 1000)
{
    private readonly object _lock = new();
    private readonly Dictionary<int, FetchSession> _sessions = [];
    private int _nextId = Random.Shared.Next(1, int.MaxValue / 2);

    public int Count
    {
        get { lock (_lock) return _sessions.Count; }
    }

    public FetchSession Create()
    {
        lock (_lock)
        {
            if (_sessions.Count >= maxSessions)
            {
                var oldest = _sessions.Values.MinBy(s => s.LastUsedTicks)!;
                _sessions.Remove(oldest.Id);
            }
            int id;
            do id = _nextId++ & int.MaxValue; while (id == 0 || _sessions.ContainsKey(id));
            var session = new FetchSession(id) { LastUsedTicks = time.GetTimestamp() };
            _sessions[id] = session;
            return session;
        }
    }

    public FetchSession? Get(int id)
    {
        lock (_lock)
        {
            if (!_sessions.TryGetValue(id, out var session)) return null;
            session.LastUsedTicks = time.GetTimestamp();
            return session;
        }
    }

    public void Remove(int id)
    {
        lock (_lock) _sessions.Remove(id);
    }
}

/// <summary>One consumer's fetch session. Used by one fetch at a time (the client waits for each response).</summary>
internal sealed class FetchSession(int id)
{
    public int Id { get; } = id;

    /// <summary>The epoch the next incremental request must carry.</summary>
    public int NextEpoch { get; set; } = 1;

    public long LastUsedTicks { get; set; }

    public Dictionary<FetchPartitionKey, SessionPartition> Partitions { get; } = [];

    /// <summary>Serializes requests within a session (a confused client could send two at once).</summary>
    public SemaphoreSlim Gate { get; } = new(1, 1);
}

internal readonly record struct FetchPartitionKey(string Topic, int Partition);

internal sealed class SessionPartition(string topic, Guid topicId, int partition)
{
    public string Topic { get; } = topic;
    public Guid TopicId { get; } = topicId;
    public int Partition { get; } = partition;
    public long FetchOffset { get; set; }
    public int MaxBytes { get; set; }
    public long LogStartOffset { get; set; } = -1;

    /// <summary>The leader epoch the client believes current (KIP-320); -1 skips the check.</summary>
    public int CurrentLeaderEpoch { get; set; } = -1;

    /// <summary>What the client was last told; -1 forces the partition into the next response.</summary>
    public long LastHighWatermark { get; set; } = -1;
    public long LastLogStartOffset { get; set; } = -1;
}
