using System.Collections.Concurrent;
using Tributary.Broker.Cluster;
using Tributary.Storage;

namespace Tributary.Broker.Metadata;

/// <summary>
/// The broker's topics as the metadata store publishes them, and the logs of the partitions it holds a replica of.
/// Reads come from the store's current <see cref="MetadataImage"/> (lock-free); changes go to the store, which is the
/// commit point, and this catalog follows every image it publishes: it opens the logs of replicas placed here and
/// deletes the logs of topics and replicas that went away. Partition directories carry their topic id (see
/// <see cref="LogManager"/>), so a deleted topic's records never come back under a new topic of the same name.
///
/// Creation opens this broker's replicas fresh (deleting any stale directory) before it commits, so a storage failure
/// leaves nothing behind; the other replicas' brokers open theirs when they see the new image. At start every directory
/// the image does not place here with the same id is deleted before any is opened.
/// </summary>
public sealed class TopicCatalog
{
    private readonly IMetadataStore _store;
    private readonly LogManager _logs;
    private readonly BrokerSettings _settings;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly object _applyLock = new();
    private readonly ConcurrentDictionary<(string, int), PartitionLog> _partitions = new();
    // The topic id each open replica was opened for: another broker may create the same name at the same moment, and
    // the image's topic (the one that won) must replace a replica opened for the one that lost.
    private readonly ConcurrentDictionary<(string, int), Guid> _openedFor = new();
    private volatile int _partitionTotal;
    private long _creations;

    public TopicCatalog(IMetadataStore store, LogManager logs, BrokerSettings settings)
    {
        _store = store;
        _logs = logs;
        _settings = settings;
        NodeId = store.NodeId;
        lock (_applyLock)
        {
            var image = store.Image;
            _logs.RemoveStale((topic, p) => image.TopicsByName.TryGetValue(topic, out var t) && p < t.PartitionCount && t.Partitions[p].IsReplica(NodeId) ? t.Id : null);
            foreach (var topic in image.TopicsByName.Values)
                for (var p = 0; p < topic.PartitionCount; p++)
                    if (topic.Partitions[p].IsReplica(NodeId)) OpenExisting(topic, p);
            _partitionTotal = CountLocal(image);
            store.Published += Apply;
        }
    }

    public int NodeId { get; }

    /// <summary>The metadata store behind the catalog.</summary>
    public IMetadataStore Store => _store;

    /// <summary>The cluster as of now.</summary>
    public MetadataImage Image => _store.Image;

    /// <summary>
    /// True when the partition's log directory is offline (an I/O failure, or it could not be opened at start): Kafka's
    /// offline replica. Produce, Fetch, ListOffsets and DeleteRecords answer KAFKA_STORAGE_ERROR for it; Metadata lists it
    /// with no leader.
    /// </summary>
    public bool IsPartitionOffline(string topic, int partition) =>
        _partitions.TryGetValue((topic, partition), out var log) ? log.IsOffline
        : Image.Partition(topic, partition) is { } state && state.IsReplica(NodeId) && _logs.IsOffline(topic, partition);

    /// <summary>
    /// Kafka's offline replicas of a partition (Metadata v5+, DescribeTopicPartitions): those whose broker is not
    /// registered in <paramref name="image"/>, and this broker's own replica when its log directory is offline (the
    /// other brokers' directories are not in the image).
    /// </summary>
    public List<int> OfflineReplicas(MetadataImage image, string topic, int partition, PartitionState state) =>
        [.. state.Replicas.Where(r => !image.Brokers.ContainsKey(r) || (r == NodeId && IsPartitionOffline(topic, partition)))];

    /// <summary>The storage under the catalog (log directories, their health).</summary>
    public LogManager Logs => _logs;

    /// <summary>Partitions with a replica on this broker.</summary>
    public int PartitionTotal => _partitionTotal;

    public IEnumerable<TopicInfo> Topics => Image.TopicsByName.Values;

    /// <summary>
    /// Topics that appeared (created here or by another broker) since this catalog was opened: a version of the topic
    /// list for those who must notice new topics (the group coordinator's regex subscriptions). It moves on only after
    /// the image with the new topic is published, so whoever reads it before taking that snapshot sees a later value if
    /// the snapshot missed one.
    /// </summary>
    public long Creations => Interlocked.Read(ref _creations);

    public TopicInfo? Get(string name) => Image.TopicsByName.GetValueOrDefault(name);

    /// <summary>True when the topic exists and has the partition (what Kafka's metadata cache answers for a commit).</summary>
    public bool HasPartition(string topic, int partition) => Image.Partition(topic, partition) is not null;

    public TopicInfo? Get(Guid id) => Image.TopicsById.GetValueOrDefault(id);

    /// <summary>
    /// True when the partition exists and another broker leads it (or none does): clients are told NOT_LEADER_OR_FOLLOWER
    /// and refresh their metadata; only the leader takes produce, consumer fetches and offset lookups.
    /// </summary>
    public bool IsLedElsewhere(string topic, int partition) => Image.Partition(topic, partition) is { } state && state.Leader != NodeId;

    /// <summary>This broker's replica of the partition; null when it holds none (or the topic does not exist).</summary>
    public PartitionLog? GetPartition(string topic, int partition) => _partitions.GetValueOrDefault((topic, partition));

    /// <summary>
    /// A partition of an internal topic the broker writes (the coordinators' and the registry's), creating the topic
    /// with <paramref name="partitions"/> partitions and <paramref name="configs"/> on first use, as Kafka creates
    /// <c>__consumer_offsets</c> when it is first needed. Null when this broker holds no replica of it.
    /// </summary>
    public PartitionLog? GetOrCreateInternalPartition(string topic, int partitions, IReadOnlyDictionary<string, string> configs, int partition)
    {
        // Off the request path (a coordinator's first write): waiting for the store here is what Kafka's auto-creation
        // of __consumer_offsets does too.
        if (Get(topic) is null) EnsureInternalTopicAsync(topic, partitions, configs).GetAwaiter().GetResult();
        return GetPartition(topic, partition);
    }

    /// <summary>
    /// Creates an internal topic unless it exists, its replicas placed over the registered brokers (FindCoordinator
    /// creates <c>__consumer_offsets</c> and <c>__transaction_state</c> this way before naming a coordinator).
    /// </summary>
    public async Task EnsureInternalTopicAsync(string topic, int partitions, IReadOnlyDictionary<string, string> configs)
    {
        if (Get(topic) is not null) return;
        // Before this broker registered (a coordinator writing during start) it is the only broker it knows.
        IEnumerable<BrokerRegistration> brokers = Image.Brokers.Count > 0 ? Image.Brokers.Values : [new BrokerRegistration(NodeId, "", 0, null, Guid.Empty)];
        var assignment = ReplicaPlacement.Assign(brokers, partitions, InternalReplicationFactor(topic));
        await CreateAsync(topic, assignment, configs, isInternal: true).ConfigureAwait(false);
    }

    private int InternalReplicationFactor(string topic)
    {
        var name = topic switch
        {
            "__consumer_offsets" => "offsets.topic.replication.factor",
            "__transaction_state" => "transaction.state.log.replication.factor",
            // Confluent's kafkastore.topic.replication.factor is an alias; the Tributary name wins when both are set.
            InternalTopics.SchemasTopic when _settings.Get("schema.registry.topic.replication.factor") is null
                && _settings.Get("kafkastore.topic.replication.factor") is not null => "kafkastore.topic.replication.factor",
            InternalTopics.SchemasTopic => "schema.registry.topic.replication.factor",
            _ => "default.replication.factor",
        };
        var wanted = _settings.Get(name) is { } v && int.TryParse(v, out var n) ? n : 3;
        return Math.Max(1, Math.Min(wanted, Math.Max(1, Image.Brokers.Count)));
    }

    public LogConfig LogConfigFor(TopicInfo topic) => TopicConfigDefinitions.ToLogConfig(topic.Configs, _settings);

    /// <summary>
    /// Creates a topic with the given replica assignment (one replica list per partition); returns null when it already
    /// exists. Throws <see cref="PartitionLimitException"/> when this broker would then hold more than
    /// <paramref name="partitionLimit"/> partitions, and a storage error (after undoing what it opened) when this
    /// broker's replicas cannot be created.
    /// </summary>
    public async Task<TopicInfo?> CreateAsync(string name, IReadOnlyList<int[]> assignment, IReadOnlyDictionary<string, string> configs,
        bool isInternal = false, int partitionLimit = int.MaxValue, CancellationToken cancellationToken = default)
    {
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Get(name) is not null) return null;
            var local = assignment.Count(r => Array.IndexOf(r, NodeId) >= 0);
            if ((long)_partitionTotal + local > partitionLimit) throw new PartitionLimitException(_partitionTotal, local, partitionLimit);
            var topic = new TopicInfo(name, NewTopicId(), [.. assignment.Select(PartitionState.Initial)],
                new Dictionary<string, string>(configs, StringComparer.Ordinal), isInternal);
            return await OpenNewPartitionsAsync(topic, 0, () => _store.CreateTopicAsync(topic, cancellationToken)).ConfigureAwait(false) ? topic : null;
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public async Task<bool> DeleteAsync(string name, CancellationToken cancellationToken = default)
    {
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // The logs go when the image without the topic is published (Apply), here and on every other replica.
            return await _store.DeleteTopicAsync(name, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Grows a topic with replicas for the new partitions; limits and failures as <see cref="CreateAsync"/>.</summary>
    public async Task<TopicInfo> AddPartitionsAsync(TopicInfo topic, IReadOnlyList<int[]> newAssignment, int partitionLimit = int.MaxValue,
        CancellationToken cancellationToken = default)
    {
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var current = Get(topic.Name) ?? throw new InvalidOperationException($"Topic '{topic.Name}' does not exist.");
            var local = newAssignment.Count(r => Array.IndexOf(r, NodeId) >= 0);
            if ((long)_partitionTotal + local > partitionLimit) throw new PartitionLimitException(_partitionTotal, local, partitionLimit);
            var updated = current with { Partitions = [.. current.Partitions, .. newAssignment.Select(PartitionState.Initial)] };
            if (!await OpenNewPartitionsAsync(updated, current.PartitionCount, () => _store.UpdateTopicAsync(current, updated, cancellationToken)).ConfigureAwait(false))
                throw new InvalidOperationException($"Topic '{topic.Name}' changed while its partitions were being added; retry.");
            return updated;
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public async Task<TopicInfo> ReplaceConfigsAsync(string name, IReadOnlyDictionary<string, string> configs, CancellationToken cancellationToken = default)
    {
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            while (true)
            {
                var current = Get(name) ?? throw new InvalidOperationException($"Topic '{name}' does not exist.");
                var updated = current with { Configs = new Dictionary<string, string>(configs, StringComparer.Ordinal) };
                // A leadership change of one of its partitions may land in between: read again and retry.
                if (await _store.UpdateTopicAsync(current, updated, cancellationToken).ConfigureAwait(false)) return updated;
            }
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Opens this broker's replicas of partitions <paramref name="from"/>.. fresh, then commits; on failure (or a lost race) closes what it opened.</summary>
    private async Task<bool> OpenNewPartitionsAsync(TopicInfo topic, int from, Func<Task<bool>> commit)
    {
        var opened = new List<(int Partition, PartitionLog Log)>();
        var committed = false;
        try
        {
            // Under the apply lock, so an image holding this name (created by another broker meanwhile) is either seen
            // here (and nothing is opened) or applied after (and its replicas replace these).
            lock (_applyLock)
            {
                if (Image.TopicsByName.TryGetValue(topic.Name, out var existing) && existing.Id != topic.Id) return false;
                for (var p = from; p < topic.PartitionCount; p++)
                {
                    if (!topic.Partitions[p].IsReplica(NodeId)) continue;
                    var log = _logs.GetOrCreate(topic.Name, p, LogConfigFor(topic), topic.Id, fresh: true);
                    _partitions[(topic.Name, p)] = log;
                    _openedFor[(topic.Name, p)] = topic.Id;
                    opened.Add((p, log));
                }
            }
            committed = await commit().ConfigureAwait(false);
            return committed;
        }
        finally
        {
            if (!committed)
                lock (_applyLock)
                    foreach (var (p, log) in opened)
                        // Only what is still ours: an image may already have replaced it with the winner's replica.
                        if (_partitions.TryGetValue((topic.Name, p), out var current) && ReferenceEquals(current, log))
                        {
                            _partitions.TryRemove((topic.Name, p), out _);
                            _openedFor.TryRemove((topic.Name, p), out _);
                            _logs.Discard(topic.Name, p);
                        }
        }
    }

    /// <summary>Follows a new image: opens replicas placed here, drops those of deleted topics and moved replicas, applies configs.</summary>
    private void Apply(MetadataImage previous, MetadataImage next)
    {
        lock (_applyLock)
        {
            foreach (var old in previous.TopicsByName.Values)
            {
                if (next.TopicsById.ContainsKey(old.Id)) continue;
                for (var p = 0; p < old.PartitionCount; p++)
                {
                    _partitions.TryRemove((old.Name, p), out _);
                    _openedFor.TryRemove((old.Name, p), out _);
                }
                DeleteLogs(old.Name);
            }
            foreach (var topic in next.TopicsByName.Values)
            {
                var before = previous.TopicsById.GetValueOrDefault(topic.Id);
                if (ReferenceEquals(before, topic)) continue;
                if (before is null) Interlocked.Increment(ref _creations);
                var configChanged = before is not null && !SameConfigs(before.Configs, topic.Configs);
                var config = LogConfigFor(topic);
                for (var p = 0; p < topic.PartitionCount; p++)
                {
                    var here = topic.Partitions[p].IsReplica(NodeId);
                    if (here && _openedFor.TryGetValue((topic.Name, p), out var openedFor) && openedFor != topic.Id)
                    {
                        // Opened for a creation of the same name that lost the race: the winner's replica replaces it.
                        _partitions.TryRemove((topic.Name, p), out _);
                        _logs.Discard(topic.Name, p);
                    }
                    if (here && !_partitions.ContainsKey((topic.Name, p))) OpenExisting(topic, p);
                    else if (!here && _partitions.TryRemove((topic.Name, p), out _))
                    {
                        _openedFor.TryRemove((topic.Name, p), out _);
                        _logs.Discard(topic.Name, p);
                    }
                    else if (here && configChanged && _partitions.TryGetValue((topic.Name, p), out var log)) log.Config = config;
                }
            }
            _partitionTotal = CountLocal(next);
        }
    }

    private void DeleteLogs(string topic)
    {
        try
        {
            _logs.DeleteTopic(topic);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or StorageException)
        {
            // Gone from the metadata, which is what counts: the directories no longer belong to any topic and are
            // removed at the next start (or when the name is created again).
        }
    }

    private void OpenExisting(TopicInfo topic, int partition)
    {
        try
        {
            _partitions[(topic.Name, partition)] = _logs.GetOrCreate(topic.Name, partition, LogConfigFor(topic), topic.Id, fresh: false);
            _openedFor[(topic.Name, partition)] = topic.Id;
        }
        catch (StorageException) when (_logs.IsOffline(topic.Name, partition))
        {
            // Its log directory is offline (could not be opened, or failed while recovering it): the partition
            // answers KAFKA_STORAGE_ERROR (IsPartitionOffline) and the broker serves the rest, as Kafka.
        }
    }

    private int CountLocal(MetadataImage image) =>
        image.TopicsByName.Values.Sum(t => t.Partitions.Count(s => s.IsReplica(NodeId)));

    private static bool SameConfigs(IReadOnlyDictionary<string, string> a, IReadOnlyDictionary<string, string> b) =>
        a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var v) && v == kv.Value);

    private Guid NewTopicId()
    {
        // Kafka reserves the all-zero id (and the id whose most significant bits are 0, "metadata topic") as sentinels.
        while (true)
        {
            var id = Guid.NewGuid();
            if (Get(id) is null && id != Guid.Empty) return id;
        }
    }
}
