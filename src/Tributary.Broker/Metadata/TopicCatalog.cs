using System.Collections.Concurrent;
using System.Text.Json;
using Tributary.Storage;

namespace Tributary.Broker.Metadata;

public sealed record TopicInfo(string Name, Guid Id, int PartitionCount, IReadOnlyDictionary<string, string> Configs, bool IsInternal = false);

/// <summary>
/// The broker's topics: names, ids, partition counts and config overrides, with their partition logs.
/// Reads are lock-free snapshots; changes are serialized and persisted to <c>topics.json</c> (write temp, fsync,
/// rename) before they are visible, so a crash never leaves a half-written catalog.
///
/// The catalog is the commit point of topic changes; the partition directories follow it and carry the topic id
/// (see <see cref="LogManager"/>). Creation opens fresh directories (deleting any stale one) and then saves; deletion
/// saves and then renames the directories away. At start every directory the saved catalog does not name with the
/// same id is deleted before any is opened, so a crash at any step never brings a deleted topic's records back.
/// </summary>
public sealed class TopicCatalog
{
    private readonly string _path;
    private readonly LogManager _logs;
    private readonly BrokerSettings _settings;
    private readonly object _writeLock = new();
    private readonly ConcurrentDictionary<(string, int), PartitionLog> _partitions = new();
    private volatile Dictionary<string, TopicInfo> _byName = new(StringComparer.Ordinal);
    private volatile Dictionary<Guid, TopicInfo> _byId = new();
    private volatile int _partitionTotal;
    private long _creations;

    public TopicCatalog(string dataDir, LogManager logs, BrokerSettings settings)
    {
        _path = Path.Combine(dataDir, "topics.json");
        _logs = logs;
        _settings = settings;
        if (File.Exists(_path))
        {
            var stored = JsonSerializer.Deserialize<List<StoredTopic>>(File.ReadAllText(_path)) ?? [];
            Publish(stored.Select(t => new TopicInfo(t.Name, t.Id, t.Partitions, t.Configs, t.Internal)));
        }
        _logs.RemoveStale(_byName.Values.ToDictionary(t => t.Name, t => (t.Id, t.PartitionCount), StringComparer.Ordinal));
        foreach (var topic in _byName.Values)
            for (var p = 0; p < topic.PartitionCount; p++)
            {
                try
                {
                    OpenPartition(topic, p, fresh: false);
                }
                catch (StorageException) when (_logs.IsOffline(topic.Name, p))
                {
                    // Its log directory is offline (could not be opened, or failed while recovering it): the partition
                    // answers KAFKA_STORAGE_ERROR (IsPartitionOffline) and the broker serves the rest, as Kafka.
                }
            }
    }

    /// <summary>
    /// True when the partition's log directory is offline (an I/O failure, or it could not be opened at start): Kafka's
    /// offline replica. Produce, Fetch, ListOffsets and DeleteRecords answer KAFKA_STORAGE_ERROR for it; Metadata lists it
    /// with no leader.
    /// </summary>
    public bool IsPartitionOffline(string topic, int partition) =>
        _partitions.TryGetValue((topic, partition), out var log) ? log.IsOffline
        : _byName.TryGetValue(topic, out var info) && partition >= 0 && partition < info.PartitionCount && _logs.IsOffline(topic, partition);

    /// <summary>The storage under the catalog (log directories, their health).</summary>
    public LogManager Logs => _logs;

    /// <summary>Partitions of all topics.</summary>
    public int PartitionTotal => _partitionTotal;

    public IReadOnlyCollection<TopicInfo> Topics => _byName.Values;

    /// <summary>
    /// Topics created since this catalog was opened: a version of the topic list for those who must notice new topics
    /// (the group coordinator's regex subscriptions). It moves on only after the new topic is visible in
    /// <see cref="Topics"/>, so whoever reads it before taking that snapshot sees a later value if the snapshot missed one.
    /// </summary>
    public long Creations => Interlocked.Read(ref _creations);

    public TopicInfo? Get(string name) => _byName.GetValueOrDefault(name);

    /// <summary>True when the topic exists and has the partition (what Kafka's metadata cache answers for a commit).</summary>
    public bool HasPartition(string topic, int partition) => Get(topic) is { } t && partition >= 0 && partition < t.PartitionCount;

    public TopicInfo? Get(Guid id) => _byId.GetValueOrDefault(id);

    public PartitionLog? GetPartition(string topic, int partition) => _partitions.GetValueOrDefault((topic, partition));

    /// <summary>
    /// A partition of an internal topic the broker writes (the coordinators' and the registry's), creating the topic
    /// with <paramref name="partitions"/> partitions and <paramref name="configs"/> on first use, as Kafka creates
    /// <c>__consumer_offsets</c> when it is first needed.
    /// </summary>
    public PartitionLog GetOrCreateInternalPartition(string topic, int partitions, IReadOnlyDictionary<string, string> configs, int partition)
    {
        if (Get(topic) is null) Create(topic, partitions, configs, isInternal: true);
        return GetPartition(topic, partition) ?? throw new InvalidOperationException($"{topic}-{partition} has no log");
    }

    public LogConfig LogConfigFor(TopicInfo topic) => TopicConfigDefinitions.ToLogConfig(topic.Configs, _settings);

    /// <summary>
    /// Creates a topic; returns null when it already exists. Throws <see cref="PartitionLimitException"/> when the
    /// broker would then hold more than <paramref name="partitionLimit"/> partitions, and a storage error (after undoing
    /// what it opened) when the partitions cannot be created.
    /// </summary>
    public TopicInfo? Create(string name, int partitions, IReadOnlyDictionary<string, string> configs, bool isInternal = false, int partitionLimit = int.MaxValue)
    {
        lock (_writeLock)
        {
            if (_byName.ContainsKey(name)) return null;
            if ((long)_partitionTotal + partitions > partitionLimit) throw new PartitionLimitException(_partitionTotal, partitions, partitionLimit);
            var topic = new TopicInfo(name, NewTopicId(), partitions, new Dictionary<string, string>(configs, StringComparer.Ordinal), isInternal);
            OpenNewPartitions(topic, 0, () => Save(_byName.Values.Append(topic)));
            Interlocked.Increment(ref _creations);
            return topic;
        }
    }

    public bool Delete(string name)
    {
        lock (_writeLock)
        {
            if (!_byName.TryGetValue(name, out var topic)) return false;
            Save(_byName.Values.Where(t => t.Name != name));
            for (var p = 0; p < topic.PartitionCount; p++) _partitions.TryRemove((name, p), out _);
            try
            {
                _logs.DeleteTopic(name);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or StorageException)
            {
                // Deleted from the catalog, which is what counts: the directories no longer belong to any topic and
                // are removed at the next start (or when the name is created again).
            }
            return true;
        }
    }

    /// <summary>Grows a topic; limits and failures as <see cref="Create"/>.</summary>
    public TopicInfo AddPartitions(TopicInfo topic, int newCount, int partitionLimit = int.MaxValue)
    {
        lock (_writeLock)
        {
            var current = _byName[topic.Name];
            var added = newCount - current.PartitionCount;
            if ((long)_partitionTotal + added > partitionLimit) throw new PartitionLimitException(_partitionTotal, added, partitionLimit);
            var updated = current with { PartitionCount = newCount };
            OpenNewPartitions(updated, current.PartitionCount, () => Save(_byName.Values.Select(t => t.Name == topic.Name ? updated : t)));
            return updated;
        }
    }

    /// <summary>Opens fresh logs for partitions <paramref name="from"/>.. of <paramref name="topic"/>, then commits; on failure closes what it opened.</summary>
    private void OpenNewPartitions(TopicInfo topic, int from, Action commit)
    {
        try
        {
            for (var p = from; p < topic.PartitionCount; p++) OpenPartition(topic, p, fresh: true);
            commit();
        }
        catch
        {
            for (var p = from; p < topic.PartitionCount; p++)
                if (_partitions.TryRemove((topic.Name, p), out _)) _logs.Discard(topic.Name, p);
            throw;
        }
    }

    public TopicInfo ReplaceConfigs(string name, IReadOnlyDictionary<string, string> configs)
    {
        lock (_writeLock)
        {
            var updated = _byName[name] with { Configs = new Dictionary<string, string>(configs, StringComparer.Ordinal) };
            Save(_byName.Values.Select(t => t.Name == name ? updated : t));
            var logConfig = LogConfigFor(updated);
            for (var p = 0; p < updated.PartitionCount; p++)
                if (_partitions.TryGetValue((name, p), out var log)) log.Config = logConfig;
            return updated;
        }
    }

    private void OpenPartition(TopicInfo topic, int partition, bool fresh) =>
        _partitions[(topic.Name, partition)] = _logs.GetOrCreate(topic.Name, partition, LogConfigFor(topic), topic.Id, fresh);

    private Guid NewTopicId()
    {
        // Kafka reserves the all-zero id (and the id whose most significant bits are 0, "metadata topic") as sentinels.
        while (true)
        {
            var id = Guid.NewGuid();
            if (!_byId.ContainsKey(id) && id != Guid.Empty) return id;
        }
    }

    private void Save(IEnumerable<TopicInfo> topics)
    {
        var list = topics.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        var json = JsonSerializer.SerializeToUtf8Bytes(
            list.Select(t => new StoredTopic(t.Name, t.Id, t.PartitionCount, new Dictionary<string, string>(t.Configs), t.IsInternal)).ToList(),
            new JsonSerializerOptions { WriteIndented = true });
        var temp = _path + ".tmp";
        using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            file.Write(json);
            file.Flush(flushToDisk: true);
        }
        File.Move(temp, _path, overwrite: true);
        Publish(list);
    }

    private void Publish(IEnumerable<TopicInfo> topics)
    {
        var byName = topics.ToDictionary(t => t.Name, StringComparer.Ordinal);
        _byName = byName;
        _byId = byName.Values.ToDictionary(t => t.Id);
        _partitionTotal = byName.Values.Sum(t => t.PartitionCount);
    }

    private sealed record StoredTopic(string Name, Guid Id, int Partitions, Dictionary<string, string> Configs, bool Internal);
}
