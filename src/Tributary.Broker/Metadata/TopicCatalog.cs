using System.Collections.Concurrent;
using System.Text.Json;
using Tributary.Storage;

namespace Tributary.Broker.Metadata;

public sealed record TopicInfo(string Name, Guid Id, int PartitionCount, IReadOnlyDictionary<string, string> Configs, bool IsInternal = false);

/// <summary>
/// The broker's topics: names, ids, partition counts and config overrides, with their partition logs.
/// Reads are lock-free snapshots; changes are serialized and persisted to <c>topics.json</c> (write temp, fsync,
/// rename) before they are visible, so a crash never leaves a half-written catalog.
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
        foreach (var topic in _byName.Values)
            for (var p = 0; p < topic.PartitionCount; p++)
                OpenPartition(topic, p);
    }

    public IReadOnlyCollection<TopicInfo> Topics => _byName.Values;

    public TopicInfo? Get(string name) => _byName.GetValueOrDefault(name);

    public TopicInfo? Get(Guid id) => _byId.GetValueOrDefault(id);

    public PartitionLog? GetPartition(string topic, int partition) => _partitions.GetValueOrDefault((topic, partition));

    public LogConfig LogConfigFor(TopicInfo topic) => TopicConfigDefinitions.ToLogConfig(topic.Configs, _settings);

    /// <summary>Creates a topic; returns null when it already exists.</summary>
    public TopicInfo? Create(string name, int partitions, IReadOnlyDictionary<string, string> configs, bool isInternal = false)
    {
        lock (_writeLock)
        {
            if (_byName.ContainsKey(name)) return null;
            var topic = new TopicInfo(name, NewTopicId(), partitions, new Dictionary<string, string>(configs, StringComparer.Ordinal), isInternal);
            for (var p = 0; p < partitions; p++) OpenPartition(topic, p);
            Save(_byName.Values.Append(topic));
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
            _logs.DeleteTopic(name);
            return true;
        }
    }

    public TopicInfo AddPartitions(TopicInfo topic, int newCount)
    {
        lock (_writeLock)
        {
            var current = _byName[topic.Name];
            var updated = current with { PartitionCount = newCount };
            for (var p = current.PartitionCount; p < newCount; p++) OpenPartition(updated, p);
            Save(_byName.Values.Select(t => t.Name == topic.Name ? updated : t));
            return updated;
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

    private void OpenPartition(TopicInfo topic, int partition) =>
        _partitions[(topic.Name, partition)] = _logs.GetOrCreate(topic.Name, partition, LogConfigFor(topic));

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
    }

    private sealed record StoredTopic(string Name, Guid Id, int Partitions, Dictionary<string, string> Configs, bool Internal);
}
