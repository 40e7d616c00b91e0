using System.Collections.Frozen;
using System.Text.Json;
using System.Text.Json.Serialization;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Mvccpb;

namespace Tributary.Broker.Cluster;

/// <summary>
/// Cluster metadata in etcd (v3 API over gRPC). Keys under <c>/tributary/&lt;cluster-id&gt;/</c>:
/// <list type="bullet">
/// <item><c>brokers/&lt;id&gt;</c>: a broker's registration, bound to its lease (gone when the broker stops renewing it);</item>
/// <item><c>controller</c>: the elected controller, bound to its lease; its create revision is the controller epoch;</item>
/// <item><c>topics/&lt;name&gt;</c>: id, configs and the replica assignment;</item>
/// <item><c>partitions/&lt;name&gt;/&lt;p&gt;</c>: replicas, leader, epochs and ISR once they changed from the initial state,
/// and the adding/removing replicas of a reassignment in progress (absent when none runs, so older values read as none);</item>
/// <item><c>configs/brokers/&lt;id&gt;</c> and <c>configs/brokers/&lt;default&gt;</c>: dynamic broker configs (a broker's own,
/// and the cluster-wide default);</item>
/// <item><c>producer-ids</c>: the end of the last producer id block handed out;</item>
/// <item><c>acls/&lt;type&gt;/&lt;pattern&gt;/&lt;name&gt;/&lt;principal&gt;/&lt;host&gt;/&lt;operation&gt;/&lt;permission&gt;</c> (names
/// URI-escaped): one ACL binding per key, its JSON the value, so adding one twice stores it once.</item>
/// </list>
/// The store mirrors the prefix (one range read, then a watch from the next revision) and publishes a new image for each
/// watch response, in revision order; a watch cut off by compaction reloads. Every write is a transaction conditioned
/// on what it read (creation revision, modification revision, the controller key), so a stale writer fails.
/// </summary>
public sealed class EtcdMetadataStore : IMetadataStore
{
    private const string Root = "/tributary/";
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly IReadOnlyList<string> _endpoints;
    private readonly BrokerLog _log;
    private readonly int _ttlSeconds;
    private readonly CancellationTokenSource _stop = new();
    private readonly object _lock = new();
    private readonly Dictionary<string, KeyValue> _mirror = new(StringComparer.Ordinal);
    private readonly List<(long Revision, TaskCompletionSource Done)> _waiters = [];
    private readonly SemaphoreSlim _publishLock = new(1, 1);
    private GrpcChannel _channel = null!;
    private int _endpoint;
    private string _prefix = "";
    private MetadataImage _image = MetadataImage.Empty;
    private long _leaseId;
    private BrokerRegistration? _registration;
    private long _controllerEpoch;
    private Task _watchLoop = Task.CompletedTask;
    private Task _leaseLoop = Task.CompletedTask;

    private EtcdMetadataStore(IReadOnlyList<string> endpoints, int nodeId, int sessionTimeoutMs, BrokerLog log)
    {
        _endpoints = endpoints;
        NodeId = nodeId;
        _log = log;
        _ttlSeconds = Math.Max(2, (sessionTimeoutMs + 999) / 1000);
        Connect(0);
    }

    public int NodeId { get; }

    public MetadataImage Image => Volatile.Read(ref _image);

    public event Action<MetadataImage, MetadataImage>? Published;

    public bool IsController => Volatile.Read(ref _controllerEpoch) != 0 && Image.ControllerId == NodeId;

    /// <summary>The etcd endpoints of a <c>metadata.store=etcd://host:port[,host:port...]</c> value.</summary>
    public static IReadOnlyList<string> ParseEndpoints(string value)
    {
        if (!value.StartsWith("etcd://", StringComparison.Ordinal))
            throw new FormatException($"metadata.store: expected etcd://host:port[,host:port...], got '{value}'");
        var list = value["etcd://".Length..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(e => e.Contains("://", StringComparison.Ordinal) ? e : "http://" + e).ToList();
        return list.Count > 0 ? list : throw new FormatException($"metadata.store: no endpoint in '{value}'");
    }

    /// <summary>
    /// Connects, agrees on the cluster id (the first broker of a new cluster creates it from <paramref name="localClusterId"/>
    /// or a new one; a broker whose data directory holds another cluster's id is refused) and loads the image.
    /// </summary>
    public static async Task<EtcdMetadataStore> OpenAsync(string storeSetting, int nodeId, string? localClusterId, string newClusterId,
        int sessionTimeoutMs, BrokerLog log, CancellationToken cancellationToken)
    {
        var store = new EtcdMetadataStore(ParseEndpoints(storeSetting), nodeId, sessionTimeoutMs, log);
        try
        {
            var clusterId = await store.CallAsync(c => store.AgreeClusterIdAsync(c, localClusterId ?? newClusterId, cancellationToken), cancellationToken).ConfigureAwait(false);
            if (localClusterId is not null && localClusterId != clusterId)
                throw new InvalidOperationException($"The data directory belongs to cluster {localClusterId}, but the metadata store at {storeSetting} holds cluster {clusterId}; refusing to start (meta.properties).");
            store._prefix = Root + clusterId + "/";
            var revision = await store.LoadAsync(clusterId, cancellationToken).ConfigureAwait(false);
            store._watchLoop = Task.Run(() => store.WatchLoopAsync(clusterId, revision + 1));
            return store;
        }
        catch
        {
            await store.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async Task RegisterAsync(BrokerRegistration registration, CancellationToken cancellationToken)
    {
        _registration = registration;
        await GrantAndRegisterAsync(cancellationToken).ConfigureAwait(false);
        _leaseLoop = Task.Run(LeaseLoopAsync);
    }

    public Task BeginShutdownAsync(CancellationToken cancellationToken) =>
        PutRegistrationAsync(registration => registration with { ShuttingDown = true }, cancellationToken);

    public Task UpdateRegistrationAsync(Func<BrokerRegistration, BrokerRegistration> change, CancellationToken cancellationToken) =>
        PutRegistrationAsync(registration => change(registration) with { NodeId = registration.NodeId, IncarnationId = registration.IncarnationId }, cancellationToken);

    /// <summary>
    /// Rewrites this broker's registration under its lease. The changed registration is kept first, so a registration
    /// written again after a lost lease carries the change too.
    /// </summary>
    private async Task PutRegistrationAsync(Func<BrokerRegistration, BrokerRegistration> change, CancellationToken cancellationToken)
    {
        if (_registration is not { } registration || Interlocked.Read(ref _leaseId) == 0) return;
        var changed = _registration = change(registration);
        var key = _prefix + "brokers/" + NodeId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var put = new PutRequest { Key = Bytes(key), Value = Serialize(StoredBroker.From(changed)), Lease = _leaseId };
        var response = await CallAsync(c => new KV.KVClient(c).PutAsync(put, cancellationToken: cancellationToken).ResponseAsync, cancellationToken).ConfigureAwait(false);
        await WaitForAsync(response.Header.Revision, cancellationToken).ConfigureAwait(false);
    }

    public async Task<bool> CreateTopicAsync(TopicInfo topic, CancellationToken cancellationToken)
    {
        var key = TopicKey(topic.Name);
        var value = Serialize(new StoredTopic(topic.Id, new Dictionary<string, string>(topic.Configs), topic.IsInternal, [.. topic.Partitions.Select(p => p.Replicas)]));
        var txn = new TxnRequest();
        txn.Compare.Add(new Compare { Key = Bytes(key), Target = Compare.Types.CompareTarget.Create, Result = Compare.Types.CompareResult.Equal, CreateRevision = 0 });
        txn.Success.Add(Put(key, value));
        // Leftovers of an earlier topic of the same name (its partition keys) go with it.
        txn.Success.Add(new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = Bytes(PartitionPrefix(topic.Name)), RangeEnd = Bytes(RangeEnd(PartitionPrefix(topic.Name))) } });
        return await CommitAsync(txn, cancellationToken).ConfigureAwait(false);
    }

    public async Task<bool> DeleteTopicAsync(string name, CancellationToken cancellationToken)
    {
        var key = TopicKey(name);
        var txn = new TxnRequest();
        txn.Compare.Add(new Compare { Key = Bytes(key), Target = Compare.Types.CompareTarget.Create, Result = Compare.Types.CompareResult.Greater, CreateRevision = 0 });
        txn.Success.Add(new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = Bytes(key) } });
        txn.Success.Add(new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = Bytes(PartitionPrefix(name)), RangeEnd = Bytes(RangeEnd(PartitionPrefix(name))) } });
        return await CommitAsync(txn, cancellationToken).ConfigureAwait(false);
    }

    public async Task<bool> UpdateTopicAsync(TopicInfo current, TopicInfo updated, CancellationToken cancellationToken)
    {
        var key = TopicKey(current.Name);
        KeyValue? stored;
        lock (_lock) stored = _mirror.GetValueOrDefault(key);
        if (stored is null || !ReferenceEquals(Image.TopicsByName.GetValueOrDefault(current.Name), current)) return false;
        var value = Serialize(new StoredTopic(updated.Id, new Dictionary<string, string>(updated.Configs), updated.IsInternal, [.. updated.Partitions.Select(p => p.Replicas)]));
        var txn = new TxnRequest();
        txn.Compare.Add(new Compare { Key = Bytes(key), Target = Compare.Types.CompareTarget.Mod, Result = Compare.Types.CompareResult.Equal, ModRevision = stored.ModRevision });
        txn.Success.Add(Put(key, value));
        return await CommitAsync(txn, cancellationToken).ConfigureAwait(false);
    }

    public async Task<bool> AlterPartitionAsync(string topic, Guid topicId, int partition, PartitionState current, PartitionState next, bool asController,
        CancellationToken cancellationToken)
    {
        if (Image.TopicsByName.GetValueOrDefault(topic) is not { } t || t.Id != topicId || partition >= t.PartitionCount || !t.Partitions[partition].SameAs(current))
            return false;
        var key = PartitionKey(topic, partition);
        KeyValue? stored;
        lock (_lock) stored = _mirror.GetValueOrDefault(key);
        var txn = new TxnRequest();
        txn.Compare.Add(stored is null
            ? new Compare { Key = Bytes(key), Target = Compare.Types.CompareTarget.Create, Result = Compare.Types.CompareResult.Equal, CreateRevision = 0 }
            : new Compare { Key = Bytes(key), Target = Compare.Types.CompareTarget.Mod, Result = Compare.Types.CompareResult.Equal, ModRevision = stored.ModRevision });
        // The topic must still be the same one (not deleted and created again meanwhile).
        KeyValue? topicKv;
        lock (_lock) topicKv = _mirror.GetValueOrDefault(TopicKey(topic));
        if (topicKv is null) return false;
        txn.Compare.Add(new Compare { Key = Bytes(TopicKey(topic)), Target = Compare.Types.CompareTarget.Create, Result = Compare.Types.CompareResult.Equal, CreateRevision = topicKv.CreateRevision });
        if (asController)
        {
            var epoch = Volatile.Read(ref _controllerEpoch);
            if (epoch == 0) return false;
            txn.Compare.Add(new Compare { Key = Bytes(_prefix + "controller"), Target = Compare.Types.CompareTarget.Create, Result = Compare.Types.CompareResult.Equal, CreateRevision = epoch });
        }
        txn.Success.Add(Put(key, ByteString.CopyFrom(EncodePartition(next))));
        return await CommitAsync(txn, cancellationToken).ConfigureAwait(false);
    }

    public async Task<bool> UpdateBrokerConfigsAsync(string resource, IReadOnlyDictionary<string, string>? current, IReadOnlyDictionary<string, string> updated,
        CancellationToken cancellationToken)
    {
        if (!ReferenceEquals(Image.BrokerConfigs.GetValueOrDefault(resource), current)) return false;
        var key = BrokerConfigKey(resource);
        KeyValue? stored;
        lock (_lock) stored = _mirror.GetValueOrDefault(key);
        var txn = new TxnRequest();
        txn.Compare.Add(stored is null
            ? new Compare { Key = Bytes(key), Target = Compare.Types.CompareTarget.Create, Result = Compare.Types.CompareResult.Equal, CreateRevision = 0 }
            : new Compare { Key = Bytes(key), Target = Compare.Types.CompareTarget.Mod, Result = Compare.Types.CompareResult.Equal, ModRevision = stored.ModRevision });
        txn.Success.Add(updated.Count == 0
            ? new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = Bytes(key) } }
            : Put(key, Serialize(new Dictionary<string, string>(updated, StringComparer.Ordinal))));
        return await CommitAsync(txn, cancellationToken).ConfigureAwait(false);
    }

    public async Task ChangeAclsAsync(IReadOnlyCollection<Security.AclBinding> add, IReadOnlyCollection<Security.AclBinding> remove,
        CancellationToken cancellationToken)
    {
        var adding = add.ToHashSet();
        var ops = new List<RequestOp>();
        ops.AddRange(adding.Select(a => Put(AclKey(a), ByteString.CopyFrom(Security.AclJson.WriteOne(a)))));
        ops.AddRange(remove.Where(r => !adding.Contains(r)).Distinct()
            .Select(r => new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = Bytes(AclKey(r)) } }));
        // etcd limits a transaction's operations (128 by default): large changes go in several.
        foreach (var chunk in ops.Chunk(100))
        {
            var txn = new TxnRequest();
            txn.Success.Add(chunk);
            await CommitAsync(txn, cancellationToken).ConfigureAwait(false);
        }
    }

    private const string AclsPrefix = "acls/";

    private string AclKey(Security.AclBinding a) => _prefix + AclsPrefix + string.Join('/',
        (sbyte)a.ResourceType, (sbyte)a.PatternType, Uri.EscapeDataString(a.ResourceName), Uri.EscapeDataString(a.Principal), Uri.EscapeDataString(a.Host),
        (sbyte)a.Operation, (sbyte)a.Permission);

    /// <summary>A partition's stored form: JSON; the reassignment sets only while one runs.</summary>
    internal static byte[] EncodePartition(PartitionState state) => JsonSerializer.SerializeToUtf8Bytes(
        new StoredPartition(state.Replicas, state.Isr, state.Leader, state.LeaderEpoch, state.PartitionEpoch,
            state.AddingReplicas.Length > 0 ? state.AddingReplicas : null, state.RemovingReplicas.Length > 0 ? state.RemovingReplicas : null), Json);

    /// <summary>Reads what <see cref="EncodePartition"/> wrote, or a value from before reassignments (no adding/removing: none runs).</summary>
    /// <exception cref="JsonException">Not a stored partition.</exception>
    internal static PartitionState? DecodePartition(ReadOnlySpan<byte> json) =>
        JsonSerializer.Deserialize<StoredPartition>(json, Json) is { } s
            ? new PartitionState(s.Replicas, s.Isr, s.Leader, s.LeaderEpoch, s.PartitionEpoch) { AddingReplicas = s.AddingReplicas ?? [], RemovingReplicas = s.RemovingReplicas ?? [] }
            : null;

    public async Task UpdateScramCredentialsAsync(IReadOnlyList<(string User, string Mechanism, Security.ScramCredential? Credential)> changes,
        CancellationToken cancellationToken)
    {
        var txn = new TxnRequest();
        foreach (var (user, mechanism, credential) in changes)
        {
            var key = _prefix + ScramPrefix + mechanism + "/" + Uri.EscapeDataString(user);
            txn.Success.Add(credential is null
                ? new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = Bytes(key) } }
                : Put(key, Serialize(credential)));
        }
        await CommitAsync(txn, cancellationToken).ConfigureAwait(false);
    }

    public async Task UpdateClientQuotasAsync(IReadOnlyList<(string Entity, IReadOnlyDictionary<string, double> Quotas)> changes, CancellationToken cancellationToken)
    {
        var txn = new TxnRequest();
        foreach (var (entity, values) in changes)
        {
            var key = _prefix + QuotasPrefix + Uri.EscapeDataString(entity);
            txn.Success.Add(values.Count == 0
                ? new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = Bytes(key) } }
                : Put(key, Serialize(new Dictionary<string, double>(values, StringComparer.Ordinal))));
        }
        await CommitAsync(txn, cancellationToken).ConfigureAwait(false);
    }

    public async Task<long> AllocateProducerIdsAsync(int size, CancellationToken cancellationToken)
    {
        var key = _prefix + "producer-ids";
        while (true)
        {
            var range = await CallAsync(c => new KV.KVClient(c).RangeAsync(new RangeRequest { Key = Bytes(key) }, cancellationToken: cancellationToken).ResponseAsync, cancellationToken).ConfigureAwait(false);
            var kv = range.Kvs.FirstOrDefault();
            var start = kv is null ? 0 : long.Parse(kv.Value.ToStringUtf8(), System.Globalization.CultureInfo.InvariantCulture);
            var txn = new TxnRequest();
            txn.Compare.Add(kv is null
                ? new Compare { Key = Bytes(key), Target = Compare.Types.CompareTarget.Create, Result = Compare.Types.CompareResult.Equal, CreateRevision = 0 }
                : new Compare { Key = Bytes(key), Target = Compare.Types.CompareTarget.Mod, Result = Compare.Types.CompareResult.Equal, ModRevision = kv.ModRevision });
            txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = Bytes(key), Value = ByteString.CopyFromUtf8((start + size).ToString(System.Globalization.CultureInfo.InvariantCulture)) } });
            var response = await CallAsync(c => new KV.KVClient(c).TxnAsync(txn, cancellationToken: cancellationToken).ResponseAsync, cancellationToken).ConfigureAwait(false);
            if (response.Succeeded) return start;
        }
    }

    /// <summary>Gives up leadership of the controller (a stopping broker), so another broker takes over at once.</summary>
    public async Task ResignAsync(CancellationToken cancellationToken)
    {
        var epoch = Interlocked.Exchange(ref _controllerEpoch, 0);
        if (epoch == 0) return;
        var txn = new TxnRequest();
        txn.Compare.Add(new Compare { Key = Bytes(_prefix + "controller"), Target = Compare.Types.CompareTarget.Create, Result = Compare.Types.CompareResult.Equal, CreateRevision = epoch });
        txn.Success.Add(new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = Bytes(_prefix + "controller") } });
        await CallAsync(c => new KV.KVClient(c).TxnAsync(txn, cancellationToken: cancellationToken).ResponseAsync, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        try
        {
            if (_leaseId != 0)
            {
                // Revoking the lease removes the registration (and a controller key) now instead of after the TTL.
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await new Lease.LeaseClient(_channel).LeaseRevokeAsync(new LeaseRevokeRequest { ID = _leaseId }, cancellationToken: timeout.Token).ResponseAsync.ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is RpcException or OperationCanceledException)
        {
            // The lease expires on its own.
        }
        try
        {
            await Task.WhenAll(_watchLoop, _leaseLoop).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RpcException or OperationCanceledException)
        {
        }
        lock (_lock)
            foreach (var (_, done) in _waiters) done.TrySetCanceled();
        _channel.Dispose();
    }

    private async Task<string> AgreeClusterIdAsync(GrpcChannel channel, string proposed, CancellationToken cancellationToken)
    {
        var key = Root + "cluster.id";
        var txn = new TxnRequest();
        txn.Compare.Add(new Compare { Key = Bytes(key), Target = Compare.Types.CompareTarget.Create, Result = Compare.Types.CompareResult.Equal, CreateRevision = 0 });
        txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = Bytes(key), Value = ByteString.CopyFromUtf8(proposed) } });
        txn.Failure.Add(new RequestOp { RequestRange = new RangeRequest { Key = Bytes(key) } });
        var response = await new KV.KVClient(channel).TxnAsync(txn, cancellationToken: cancellationToken).ResponseAsync.ConfigureAwait(false);
        return response.Succeeded ? proposed : response.Responses[0].ResponseRange.Kvs[0].Value.ToStringUtf8();
    }

    private async Task<long> LoadAsync(string clusterId, CancellationToken cancellationToken)
    {
        var range = await CallAsync(c => new KV.KVClient(c).RangeAsync(new RangeRequest { Key = Bytes(_prefix), RangeEnd = Bytes(RangeEnd(_prefix)) }, cancellationToken: cancellationToken).ResponseAsync,
            cancellationToken).ConfigureAwait(false);
        lock (_lock)
        {
            _mirror.Clear();
            foreach (var kv in range.Kvs) _mirror[kv.Key.ToStringUtf8()] = kv;
        }
        await PublishAsync(clusterId, range.Header.Revision).ConfigureAwait(false);
        return range.Header.Revision;
    }

    private async Task WatchLoopAsync(string clusterId, long fromRevision)
    {
        var next = fromRevision;
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                using var call = new Watch.WatchClient(_channel).Watch(cancellationToken: _stop.Token);
                await call.RequestStream.WriteAsync(new WatchRequest
                {
                    CreateRequest = new WatchCreateRequest { Key = Bytes(_prefix), RangeEnd = Bytes(RangeEnd(_prefix)), StartRevision = next, ProgressNotify = true },
                }).ConfigureAwait(false);
                await foreach (var response in call.ResponseStream.ReadAllAsync(_stop.Token).ConfigureAwait(false))
                {
                    if (response.CompactRevision > 0 || response.Canceled)
                    {
                        // Revisions we missed were compacted away: read everything again.
                        _log.Warn($"metadata: the etcd watch was cut off ({response.CancelReason}, compacted at {response.CompactRevision}); reloading.");
                        next = await LoadAsync(clusterId, _stop.Token).ConfigureAwait(false) + 1;
                        break;
                    }
                    if (response.Events.Count > 0)
                    {
                        lock (_lock)
                            foreach (var e in response.Events)
                            {
                                var key = e.Kv.Key.ToStringUtf8();
                                if (e.Type == Event.Types.EventType.Delete) _mirror.Remove(key);
                                else _mirror[key] = e.Kv;
                            }
                    }
                    next = response.Header.Revision + 1;
                    await PublishAsync(clusterId, response.Header.Revision).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (RpcException e) when (!_stop.IsCancellationRequested)
            {
                _log.Warn($"metadata: the etcd watch failed ({e.StatusCode}: {e.Status.Detail}); reconnecting.");
                Connect(_endpoint + 1);
                await DelayAsync(TimeSpan.FromMilliseconds(200)).ConfigureAwait(false);
            }
            catch (RpcException)
            {
                return;
            }
            catch (Exception e) when (!_stop.IsCancellationRequested)
            {
                // Whatever went wrong, the image must not freeze: say it, read everything again, and watch on.
                _log.Error($"metadata: the etcd watch loop failed ({e.GetType().Name}: {e.Message}); reloading.");
                await DelayAsync(TimeSpan.FromMilliseconds(200)).ConfigureAwait(false);
                try
                {
                    next = await LoadAsync(clusterId, _stop.Token).ConfigureAwait(false) + 1;
                }
                catch (Exception reload) when (reload is RpcException or OperationCanceledException)
                {
                    // The next round of the loop tries again.
                }
            }
        }
    }

    private async Task PublishAsync(string clusterId, long revision)
    {
        await _publishLock.WaitAsync().ConfigureAwait(false);
        try
        {
            MetadataImage next;
            lock (_lock) next = Build(clusterId, revision);
            var previous = _image;
            if (revision < previous.Revision) return;
            Volatile.Write(ref _image, next);
            try
            {
                Published?.Invoke(previous, next);
            }
            catch (Exception e)
            {
                _log.Error($"metadata: applying revision {revision} failed: {e}");
            }
            lock (_lock)
            {
                foreach (var (_, done) in _waiters.Where(w => w.Revision <= revision)) done.TrySetResult();
                _waiters.RemoveAll(w => w.Revision <= revision);
            }
            // Only a registered broker campaigns, so the controller key is always bound to a live lease.
            if (Interlocked.Read(ref _leaseId) != 0 && next.ControllerId < 0 && !_stop.IsCancellationRequested) _ = Task.Run(CampaignAsync);
        }
        finally
        {
            _publishLock.Release();
        }
    }

    private MetadataImage Build(string clusterId, long revision)
    {
        var brokers = new List<BrokerRegistration>();
        var topics = new List<TopicInfo>();
        var controller = -1;
        var partitionStates = new Dictionary<(string, int), PartitionState>();
        var brokerConfigs = new Dictionary<string, IReadOnlyDictionary<string, string>>(StringComparer.Ordinal);
        var scram = new Dictionary<string, Security.ScramCredential>(StringComparer.Ordinal);
        var quotas = new Dictionary<string, IReadOnlyDictionary<string, double>>(StringComparer.Ordinal);
        var acls = new SortedList<string, Security.AclBinding>(StringComparer.Ordinal);
        foreach (var (key, kv) in _mirror)
        {
            var rest = key[_prefix.Length..];
            if (rest.StartsWith(AclsPrefix, StringComparison.Ordinal))
            {
                if (Decode(kv, Security.AclJson.ReadOne) is { } acl) acls[rest] = acl;
            }
            else if (rest.StartsWith("partitions/", StringComparison.Ordinal))
            {
                var slash = rest.LastIndexOf('/');
                if (slash > "partitions/".Length && int.TryParse(rest[(slash + 1)..], out var p) && Decode(kv, DecodePartition) is { } sp)
                    partitionStates[(rest["partitions/".Length..slash], p)] = sp;
            }
            else if (rest.StartsWith(BrokerConfigsPrefix, StringComparison.Ordinal) && Deserialize<Dictionary<string, string>>(kv) is { } configs)
            {
                var name = rest[BrokerConfigsPrefix.Length..];
                brokerConfigs[name == DefaultBrokerResource ? "" : name] = configs;
            }
            else if (rest.StartsWith(QuotasPrefix, StringComparison.Ordinal) && Deserialize<Dictionary<string, double>>(kv) is { } values)
                quotas[Uri.UnescapeDataString(rest[QuotasPrefix.Length..])] = values;
            else if (rest.StartsWith(ScramPrefix, StringComparison.Ordinal) && Deserialize<Security.ScramCredential>(kv) is { } credential)
            {
                var slash = rest.IndexOf('/', ScramPrefix.Length);
                if (slash > 0) scram[rest[ScramPrefix.Length..slash] + "/" + Uri.UnescapeDataString(rest[(slash + 1)..])] = credential;
            }
        }
        var controllerEpoch = 0L;
        foreach (var (key, kv) in _mirror)
        {
            var rest = key[_prefix.Length..];
            if (rest.StartsWith("brokers/", StringComparison.Ordinal) && Deserialize<StoredBroker>(kv) is { } b && int.TryParse(rest["brokers/".Length..], out var id))
                brokers.Add(new BrokerRegistration(id, b.Host, b.Port, b.Rack, b.Incarnation, b.ShuttingDown, b.SchemaRegistry)
                {
                    Listeners = b.Listeners is null ? [] : [.. b.Listeners.Select(l => new ListenerAddress(l.Name, l.Host, l.Port))],
                });
            else if (rest == "controller" && int.TryParse(kv.Value.ToStringUtf8(), out var c))
            {
                controller = c;
                controllerEpoch = kv.CreateRevision;
            }
            else if (rest.StartsWith("topics/", StringComparison.Ordinal) && Deserialize<StoredTopic>(kv) is { } t)
            {
                var name = rest["topics/".Length..];
                var partitions = new PartitionState[t.Replicas.Length];
                for (var p = 0; p < partitions.Length; p++)
                    partitions[p] = partitionStates.TryGetValue((name, p), out var s) ? s : PartitionState.Initial(t.Replicas[p]);
                topics.Add(new TopicInfo(name, t.Id, partitions, t.Configs, t.Internal));
            }
        }
        if (controller != NodeId) Volatile.Write(ref _controllerEpoch, 0);
        else if (Volatile.Read(ref _controllerEpoch) != controllerEpoch) Volatile.Write(ref _controllerEpoch, controllerEpoch);
        // The same ACLs keep the same list, so the authorizer rebuilds only on a change.
        var previousAcls = _image.Acls;
        IReadOnlyList<Security.AclBinding> aclList = acls.Values.SequenceEqual(previousAcls) ? previousAcls : [.. acls.Values];
        return new MetadataImage(clusterId, controller, revision, brokers, topics, brokerConfigs, aclList) { ScramCredentials = scram.ToFrozenDictionary(StringComparer.Ordinal), ClientQuotas = QuotasLike(quotas) };
    }

    private T? Deserialize<T>(KeyValue kv) where T : class => Decode(kv, json => JsonSerializer.Deserialize<T>(json, Json));

    private delegate T? Decoder<T>(ReadOnlySpan<byte> json);

    private T? Decode<T>(KeyValue kv, Decoder<T> decode) where T : class
    {
        try
        {
            return decode(kv.Value.Span);
        }
        catch (JsonException e)
        {
            // One bad value must not take the cluster's metadata down: it is skipped and said.
            _log.Error($"metadata: the etcd key {kv.Key.ToStringUtf8()} does not hold a valid {typeof(T).Name}: {e.Message}");
            return null;
        }
    }

    /// <summary>Runs for the controller key while there is no controller; the first broker to create it leads.</summary>
    private async Task CampaignAsync()
    {
        if (Interlocked.Exchange(ref _campaigning, 1) == 1) return;
        try
        {
            // Until some broker holds the key: a failed attempt (etcd away a moment) is tried again.
            while (!_stop.IsCancellationRequested && Image.ControllerId < 0 && !await TryCampaignAsync().ConfigureAwait(false))
                await DelayAsync(TimeSpan.FromMilliseconds(250)).ConfigureAwait(false);
        }
        finally
        {
            Volatile.Write(ref _campaigning, 0);
        }
    }

    private int _campaigning;

    /// <summary>One attempt to create the controller key; true when it was decided (won, or another broker holds it).</summary>
    private async Task<bool> TryCampaignAsync()
    {
        try
        {
            var leaseId = Interlocked.Read(ref _leaseId);
            var key = _prefix + "controller";
            var txn = new TxnRequest();
            txn.Compare.Add(new Compare { Key = Bytes(key), Target = Compare.Types.CompareTarget.Create, Result = Compare.Types.CompareResult.Equal, CreateRevision = 0 });
            txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = Bytes(key), Value = ByteString.CopyFromUtf8(NodeId.ToString(System.Globalization.CultureInfo.InvariantCulture)), Lease = leaseId } });
            var response = await new KV.KVClient(_channel).TxnAsync(txn, cancellationToken: _stop.Token).ResponseAsync.ConfigureAwait(false);
            if (response.Succeeded) _log.Info($"metadata: broker {NodeId} is the controller (epoch {response.Header.Revision}).");
            return true;
        }
        catch (Exception e) when (e is RpcException or OperationCanceledException)
        {
            return false;
        }
    }

    private async Task GrantAndRegisterAsync(CancellationToken cancellationToken)
    {
        var registration = _registration!;
        var lease = await CallAsync(c => new Lease.LeaseClient(c).LeaseGrantAsync(new LeaseGrantRequest { TTL = _ttlSeconds }, cancellationToken: cancellationToken).ResponseAsync,
            cancellationToken).ConfigureAwait(false);
        Interlocked.Exchange(ref _leaseId, lease.ID);
        var key = _prefix + "brokers/" + NodeId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        // A broker id is registered once: another live broker with the same node.id is refused, as Kafka refuses it.
        // The other registration may be this broker's own previous incarnation, killed less than a session timeout
        // ago, whose lease etcd has not expired yet; so, as a KRaft broker retries a duplicate registration, keep
        // trying until a lease that nobody renews must have expired (two TTLs), and refuse only after that.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(2 * _ttlSeconds + 1);
        for (var attempt = 0; ; attempt++)
        {
            var (registered, holder) = await TryRegisterAsync(key, registration, cancellationToken).ConfigureAwait(false);
            if (registered) return;
            if (DateTime.UtcNow >= deadline)
                throw new InvalidOperationException($"Another broker is registered with node.id {NodeId} ({holder?.Host}:{holder?.Port}); node ids must be unique in a cluster.");
            if (attempt == 0)
                _log.Info($"metadata: node.id {NodeId} is still registered by another incarnation ({holder?.Host}:{holder?.Port}); waiting for its lease to expire.");
            await Task.Delay(TimeSpan.FromMilliseconds(250), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Writes this broker's registration unless another incarnation holds the key; returns that holder if so.</summary>
    private async Task<(bool Registered, StoredBroker? Holder)> TryRegisterAsync(string key, BrokerRegistration registration, CancellationToken cancellationToken)
    {
        var txn = new TxnRequest();
        txn.Compare.Add(new Compare { Key = Bytes(key), Target = Compare.Types.CompareTarget.Create, Result = Compare.Types.CompareResult.Equal, CreateRevision = 0 });
        txn.Success.Add(new RequestOp
        {
            RequestPut = new PutRequest { Key = Bytes(key), Value = Serialize(StoredBroker.From(registration)), Lease = _leaseId },
        });
        txn.Failure.Add(new RequestOp { RequestRange = new RangeRequest { Key = Bytes(key) } });
        var response = await CallAsync(c => new KV.KVClient(c).TxnAsync(txn, cancellationToken: cancellationToken).ResponseAsync, cancellationToken).ConfigureAwait(false);
        if (!response.Succeeded)
        {
            var holder = response.Responses[0].ResponseRange.Kvs.FirstOrDefault();
            var stored = holder is null ? null : Deserialize<StoredBroker>(holder);
            if (stored?.Incarnation != registration.IncarnationId) return (false, stored);
        }
        await WaitForAsync(response.Header.Revision, cancellationToken).ConfigureAwait(false);
        return (true, null);
    }

    private async Task LeaseLoopAsync()
    {
        var interval = TimeSpan.FromMilliseconds(_ttlSeconds * 1000 / 3.0);
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                using var call = new Lease.LeaseClient(_channel).LeaseKeepAlive(cancellationToken: _stop.Token);
                while (!_stop.IsCancellationRequested)
                {
                    await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = _leaseId }).ConfigureAwait(false);
                    if (!await call.ResponseStream.MoveNext(_stop.Token).ConfigureAwait(false)) break;
                    if (call.ResponseStream.Current.TTL <= 0)
                    {
                        // The lease expired (this broker was cut off or paused for longer than the session timeout): the
                        // cluster has moved on without it; register again as a returning broker.
                        _log.Warn($"metadata: broker {NodeId}'s etcd lease expired; registering again.");
                        Volatile.Write(ref _controllerEpoch, 0);
                        await GrantAndRegisterAsync(_stop.Token).ConfigureAwait(false);
                        break;
                    }
                    // A cluster without a controller is noticed here too, not only when an image arrives.
                    if (Image.ControllerId < 0 || !Image.Brokers.ContainsKey(Image.ControllerId)) _ = Task.Run(CampaignAsync);
                    await DelayAsync(interval).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is RpcException or InvalidOperationException && !_stop.IsCancellationRequested)
            {
                _log.Warn($"metadata: renewing the etcd lease failed ({e.Message}); retrying.");
                Connect(_endpoint + 1);
                await DelayAsync(TimeSpan.FromMilliseconds(200)).ConfigureAwait(false);
            }
            catch (RpcException)
            {
                return;
            }
        }
    }

    private async Task<bool> CommitAsync(TxnRequest txn, CancellationToken cancellationToken)
    {
        var response = await CallAsync(c => new KV.KVClient(c).TxnAsync(txn, cancellationToken: cancellationToken).ResponseAsync, cancellationToken).ConfigureAwait(false);
        if (!response.Succeeded) return false;
        await WaitForAsync(response.Header.Revision, cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>Returns once the image reflects <paramref name="revision"/>, so a caller reads its own write.</summary>
    private Task WaitForAsync(long revision, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (_image.Revision >= revision) return Task.CompletedTask;
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((revision, done));
            return done.Task.WaitAsync(cancellationToken);
        }
    }

    /// <summary>One call, moving to the next endpoint when etcd is unreachable (each endpoint tried once).</summary>
    private async Task<T> CallAsync<T>(Func<GrpcChannel, Task<T>> call, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return await call(_channel).ConfigureAwait(false);
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded && attempt < _endpoints.Count && !cancellationToken.IsCancellationRequested)
            {
                Connect(_endpoint + 1);
            }
        }
    }

    private void Connect(int index)
    {
        lock (_lock)
        {
            _endpoint = index % _endpoints.Count;
            var old = _channel;
            _channel = GrpcChannel.ForAddress(_endpoints[_endpoint]);
            old?.Dispose();
        }
    }

    private async Task DelayAsync(TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, _stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private const string BrokerConfigsPrefix = "configs/brokers/";

    /// <summary>Client quotas: quotas/ENTITY (the entity key escaped).</summary>
    private const string QuotasPrefix = "quotas/";

    /// <summary>The previous image's quotas when unchanged, so the quota manager keeps its resolved levels.</summary>
    private FrozenDictionary<string, IReadOnlyDictionary<string, double>> QuotasLike(Dictionary<string, IReadOnlyDictionary<string, double>> quotas)
    {
        var previous = _image.ClientQuotas;
        if (previous.Count == quotas.Count && quotas.All(kv => previous.TryGetValue(kv.Key, out var p) && p.Count == kv.Value.Count
            && kv.Value.All(v => p.TryGetValue(v.Key, out var pv) && pv.Equals(v.Value))))
            return previous;
        return quotas.ToFrozenDictionary(StringComparer.Ordinal);
    }

    /// <summary>SCRAM credentials: scram/MECHANISM/user (the user name escaped).</summary>
    private const string ScramPrefix = "scram/";

    /// <summary>The resource name of the cluster-wide default in etcd (Kafka's ZooKeeper path used the same).</summary>
    private const string DefaultBrokerResource = "<default>";

    private string BrokerConfigKey(string resource) => _prefix + BrokerConfigsPrefix + (resource.Length == 0 ? DefaultBrokerResource : resource);

    private string TopicKey(string name) => _prefix + "topics/" + name;

    private string PartitionPrefix(string name) => _prefix + "partitions/" + name + "/";

    private string PartitionKey(string name, int partition) => PartitionPrefix(name) + partition.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static RequestOp Put(string key, ByteString value) => new() { RequestPut = new PutRequest { Key = Bytes(key), Value = value } };

    private static ByteString Serialize<T>(T value) => ByteString.CopyFrom(JsonSerializer.SerializeToUtf8Bytes(value, Json));

    private static ByteString Bytes(string key) => ByteString.CopyFromUtf8(key);

    /// <summary>The end of etcd's range for a prefix: the prefix with its last byte incremented.</summary>
    private static string RangeEnd(string prefix) => prefix[..^1] + (char)(prefix[^1] + 1);

    /// <summary>A registration as stored. Later fields are optional, so registrations written by older brokers still read.</summary>
    private sealed record StoredBroker(string Host, int Port, string? Rack, Guid Incarnation, bool ShuttingDown = false, string? SchemaRegistry = null,
        StoredListener[]? Listeners = null)
    {
        public static StoredBroker From(BrokerRegistration r) => new(r.Host, r.Port, r.Rack, r.IncarnationId, r.ShuttingDown, r.SchemaRegistryUrl,
            r.Listeners.Count == 0 ? null : [.. r.Listeners.Select(l => new StoredListener(l.Name, l.Host, l.Port))]);
    }

    private sealed record StoredListener(string Name, string Host, int Port);

    private sealed record StoredTopic(Guid Id, Dictionary<string, string> Configs, bool Internal, int[][] Replicas);

    private sealed record StoredPartition(int[] Replicas, int[] Isr, int Leader, int LeaderEpoch, int PartitionEpoch,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int[]? AddingReplicas = null,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int[]? RemovingReplicas = null);
}
