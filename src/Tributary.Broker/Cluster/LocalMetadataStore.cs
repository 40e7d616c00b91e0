using System.Text.Json;

namespace Tributary.Broker.Cluster;

/// <summary>
/// The metadata of a broker that runs alone (no <c>metadata.store</c>): kept in <c>topics.json</c> in the metadata
/// directory (write temp, fsync, rename, so a crash never leaves a half-written file) and published as the same image a
/// cluster has: one broker, its controller, every partition on it. A cluster of one, not a second implementation.
/// Partition states are not stored: at start every partition is "this broker leads, alone in the ISR", and no
/// reassignment can be in progress here (the only registered broker is this one, so every valid target is the current
/// replica list), so there are no adding/removing replicas to keep. Dynamic broker configs are kept in
/// <c>broker-configs.json</c>, and ACLs in <c>acls.json</c>, written the same way.
/// </summary>
public sealed class LocalMetadataStore : IMetadataStore
{
    private readonly string _path;
    private readonly object _lock = new();
    private MetadataImage _image;

    public LocalMetadataStore(string dataDir, string clusterId, int nodeId)
    {
        _path = Path.Combine(dataDir, "topics.json");
        _brokerConfigsPath = Path.Combine(dataDir, "broker-configs.json");
        _scramPath = Path.Combine(dataDir, "scram-credentials.json");
        NodeId = nodeId;
        var topics = new List<TopicInfo>();
        if (File.Exists(_path))
        {
            var stored = JsonSerializer.Deserialize<List<StoredTopic>>(File.ReadAllText(_path)) ?? [];
            topics.AddRange(stored.Select(t => new TopicInfo(t.Name, t.Id, Partitions(t.Partitions, nodeId), t.Configs, t.Internal)));
        }
        var brokerConfigs = File.Exists(_brokerConfigsPath)
            ? JsonSerializer.Deserialize<Dictionary<string, Dictionary<string, string>>>(File.ReadAllText(_brokerConfigsPath)) ?? []
            : [];
        _aclsPath = Path.Combine(dataDir, "acls.json");
        var acls = File.Exists(_aclsPath) ? Security.AclJson.Read(File.ReadAllBytes(_aclsPath)) : [];
        _image = new MetadataImage(clusterId, nodeId, 0, [], topics,
            brokerConfigs.ToDictionary(kv => kv.Key, kv => (IReadOnlyDictionary<string, string>)kv.Value, StringComparer.Ordinal), acls);
        _quotasPath = Path.Combine(dataDir, "client-quotas.json");
        if (File.Exists(_quotasPath))
            _image = _image.With(clientQuotas: (JsonSerializer.Deserialize<Dictionary<string, Dictionary<string, double>>>(File.ReadAllText(_quotasPath)) ?? [])
                .ToDictionary(kv => kv.Key, kv => (IReadOnlyDictionary<string, double>)kv.Value, StringComparer.Ordinal));
        if (File.Exists(_scramPath))
            _image = _image.With(scramCredentials: JsonSerializer.Deserialize<Dictionary<string, Security.ScramCredential>>(File.ReadAllText(_scramPath)) ?? []);
    }

    private readonly string _aclsPath;

    public Task ChangeAclsAsync(IReadOnlyCollection<Security.AclBinding> add, IReadOnlyCollection<Security.AclBinding> remove, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            var removed = remove.ToHashSet();
            var acls = _image.Acls.Where(a => !removed.Contains(a)).ToList();
            var present = acls.ToHashSet();
            foreach (var acl in add)
                if (present.Add(acl)) acls.Add(acl);
            if (acls.Count == _image.Acls.Count && acls.SequenceEqual(_image.Acls)) return Task.CompletedTask;
            WriteDurably(_aclsPath, Security.AclJson.Write(acls));
            Publish(_image.With(acls: acls), save: false);
        }
        return Task.CompletedTask;
    }

    private readonly string _scramPath;
    private readonly string _quotasPath;

    public Task UpdateClientQuotasAsync(IReadOnlyList<(string Entity, IReadOnlyDictionary<string, double> Quotas)> changes, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            var quotas = _image.ClientQuotas.ToDictionary(StringComparer.Ordinal);
            foreach (var (entity, values) in changes)
            {
                if (values.Count == 0) quotas.Remove(entity);
                else quotas[entity] = values;
            }
            WriteDurably(_quotasPath, JsonSerializer.SerializeToUtf8Bytes(quotas));
            Publish(_image.With(clientQuotas: quotas), save: false);
            return Task.CompletedTask;
        }
    }

    private readonly string _brokerConfigsPath;

    public int NodeId { get; }

    /// <summary>A broker alone is its own controller.</summary>
    public bool IsController => true;

    public MetadataImage Image => Volatile.Read(ref _image);

    public event Action<MetadataImage, MetadataImage>? Published;

    public Task RegisterAsync(BrokerRegistration registration, CancellationToken cancellationToken)
    {
        lock (_lock) Publish(_image.With(brokers: [registration]), save: false);
        return Task.CompletedTask;
    }

    public Task UpdateRegistrationAsync(Func<BrokerRegistration, BrokerRegistration> change, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (_image.Brokers.GetValueOrDefault(NodeId) is { } registered)
                Publish(_image.With(brokers: [change(registered) with { NodeId = NodeId, IncarnationId = registered.IncarnationId }]), save: false);
        }
        return Task.CompletedTask;
    }

    public Task BeginShutdownAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task<bool> CreateTopicAsync(TopicInfo topic, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (_image.TopicsByName.ContainsKey(topic.Name)) return Task.FromResult(false);
            Publish(_image.With(topics: _image.TopicsByName.Values.Append(topic)), save: true);
            return Task.FromResult(true);
        }
    }

    public Task<bool> DeleteTopicAsync(string name, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (!_image.TopicsByName.ContainsKey(name)) return Task.FromResult(false);
            Publish(_image.With(topics: _image.TopicsByName.Values.Where(t => t.Name != name)), save: true);
            return Task.FromResult(true);
        }
    }

    public Task<bool> UpdateTopicAsync(TopicInfo current, TopicInfo updated, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (!_image.TopicsByName.TryGetValue(current.Name, out var stored) || !ReferenceEquals(stored, current)) return Task.FromResult(false);
            Publish(_image.With(topics: _image.TopicsByName.Values.Select(t => t.Name == current.Name ? updated : t)), save: true);
            return Task.FromResult(true);
        }
    }

    public Task<bool> AlterPartitionAsync(string topic, Guid topicId, int partition, PartitionState current, PartitionState next, bool asController,
        CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (_image.TopicsByName.GetValueOrDefault(topic) is not { } t || t.Id != topicId || partition >= t.PartitionCount
                || !t.Partitions[partition].SameAs(current))
                return Task.FromResult(false);
            // One broker: the state is not persisted (it is always "this broker leads, alone in the ISR" at start).
            var partitions = t.Partitions.ToArray();
            partitions[partition] = next;
            Publish(_image.With(topics: _image.TopicsByName.Values.Select(x => x.Name == topic ? t with { Partitions = partitions } : x)), save: false);
            return Task.FromResult(true);
        }
    }

    public Task<bool> UpdateBrokerConfigsAsync(string resource, IReadOnlyDictionary<string, string>? current, IReadOnlyDictionary<string, string> updated,
        CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (!ReferenceEquals(_image.BrokerConfigs.GetValueOrDefault(resource), current)) return Task.FromResult(false);
            var configs = _image.BrokerConfigs.Where(kv => kv.Key != resource).ToDictionary(StringComparer.Ordinal);
            if (updated.Count > 0) configs[resource] = new Dictionary<string, string>(updated, StringComparer.Ordinal);
            WriteDurably(_brokerConfigsPath, JsonSerializer.SerializeToUtf8Bytes(configs, new JsonSerializerOptions { WriteIndented = true }));
            Publish(_image.With(brokerConfigs: configs), save: false);
            return Task.FromResult(true);
        }
    }

    public Task UpdateScramCredentialsAsync(IReadOnlyList<(string User, string Mechanism, Security.ScramCredential? Credential)> changes,
        CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            var credentials = _image.ScramCredentials.ToDictionary(StringComparer.Ordinal);
            foreach (var (user, mechanism, credential) in changes)
            {
                if (credential is null) credentials.Remove(mechanism + "/" + user);
                else credentials[mechanism + "/" + user] = credential;
            }
            WriteDurably(_scramPath, JsonSerializer.SerializeToUtf8Bytes(credentials));
            Publish(_image.With(scramCredentials: credentials), save: false);
            return Task.CompletedTask;
        }
    }

    public Task<long> AllocateProducerIdsAsync(int size, CancellationToken cancellationToken) =>
        throw new NotSupportedException("A single broker allocates producer ids from its own checkpoint file.");

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private static PartitionState[] Partitions(int count, int nodeId) =>
        [.. Enumerable.Range(0, count).Select(_ => PartitionState.Initial([nodeId]))];

    private void Publish(MetadataImage next, bool save)
    {
        next = next.With(revision: _image.Revision + 1);
        if (save) Save(next);
        var previous = _image;
        Volatile.Write(ref _image, next);
        Published?.Invoke(previous, next);
    }

    private void Save(MetadataImage image)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(
            image.TopicsByName.Values.OrderBy(t => t.Name, StringComparer.Ordinal)
                .Select(t => new StoredTopic(t.Name, t.Id, t.PartitionCount, new Dictionary<string, string>(t.Configs), t.IsInternal)).ToList(),
            new JsonSerializerOptions { WriteIndented = true });
        WriteDurably(_path, json);
    }

    /// <summary>Write temp, fsync, rename: a crash leaves the old file or the new one, never half of one.</summary>
    private static void WriteDurably(string path, byte[] content)
    {
        var temp = path + ".tmp";
        using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            file.Write(content);
            file.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
    }

    private sealed record StoredTopic(string Name, Guid Id, int Partitions, Dictionary<string, string> Configs, bool Internal);
}
