using Tributary.Broker;
using Tributary.Broker.Cluster;
using Tributary.Coordination;
using Tributary.SchemaRegistry;
using Tributary.SchemaRegistry.Storage;
using Tributary.SchemaRegistry.Validation;

namespace Tributary.Server;

/// <summary>
/// The schema registry runs inside the broker process, on its own HTTP listener, storing its history in the
/// compacted internal topic <c>_schemas</c> (one partition, as Confluent's). Settings:
/// <c>schema.registry.enable</c> (default true), <c>schema.registry.listeners</c> (default http://0.0.0.0:8081;
/// ephemeral servers use a free loopback port), <c>schema.registry.advertised.listener</c>,
/// <c>schema.registry.topic.replication.factor</c> (alias <c>kafkastore.topic.replication.factor</c>) and
/// <c>schema.compatibility.level</c> (default BACKWARD).
/// <para>
/// Every broker runs a registry. Its state follows this broker's replica of <c>_schemas</c>-0, applying what is committed
/// there (<see cref="SchemaStore.OpenFollowing"/>), or, on a broker without a replica, what it fetches from the leader as a
/// consumer; its writer is loaded only while this broker leads the partition, and
/// appends complete once the ISR holds them. Every other broker forwards writes to the leader's registry, whose URL the
/// leader advertises in its broker registration. A broker alone creates <c>_schemas</c> at start, as before; in a cluster
/// the first write creates it, when the brokers that are to hold it have registered.
/// </para>
/// A registry that cannot bind its port, or whose log cannot be replayed, is logged and left off (Failed), so the broker
/// still serves Kafka and topics with schema validation refuse records.
/// </summary>
public sealed partial class TributaryServer
{
    public const string SchemaRegistryEnableSetting = "schema.registry.enable";
    public const string SchemaRegistryListenersSetting = "schema.registry.listeners";
    public const string SchemaRegistryAdvertisedListenerSetting = "schema.registry.advertised.listener";
    public const string SchemaCompatibilitySetting = "schema.compatibility.level";
    public const string SchemasTopic = Tributary.Broker.Metadata.InternalTopics.SchemasTopic;

    private SchemaRegistryServer? _schemaRegistry;
    private SchemaStore? _schemaStore;
    private IDisposable? _schemaWriterLeadership;
    private Action<MetadataImage, MetadataImage>? _schemasImageWatch;
    private Action<Tributary.Storage.PartitionLog>? _schemasHighWatermarkWatch;
    private Tributary.Broker.Replication.LeaderReader? _schemasLeaderReader;

    /// <summary>Base URL of the schema registry (http://host:port), or null when it is disabled.</summary>
    public string? SchemaRegistryUrl => _schemaRegistry?.Url;

    /// <summary>Every registry listener's URL (http:// and https://), in the order of <c>schema.registry.listeners</c>; empty when disabled.</summary>
    public IReadOnlyList<string> SchemaRegistryUrls => _schemaRegistry?.Urls ?? [];

    /// <summary>The URL the other brokers forward registry writes to (advertised in this broker's registration).</summary>
    public string? SchemaRegistryAdvertisedUrl { get; private set; }

    /// <summary>The registry's state; null when it is disabled.</summary>
    public SchemaStore? Schemas => _schemaRegistry?.Store;

    private static async Task<TributaryServer> WithSchemaRegistryAsync(Task<TributaryServer> starting, CancellationToken cancellationToken)
    {
        var server = await starting.ConfigureAwait(false);
        var settings = server.State.Settings;
        // The status is Starting from the broker's start (BrokerState), so no produce slips past validation meanwhile.
        if (server.State.SchemaRegistryStatus == SchemaRegistryStatus.Disabled)
            return server;
        var listeners = settings.Text(SchemaRegistryListenersSetting);
        // Checked against the settings table at start.
        CompatibilityLevels.TryParse(settings.Text(SchemaCompatibilitySetting), out var level);
        try
        {
            var store = server._schemaStore = await server.OpenSchemaStoreAsync(level).ConfigureAwait(false);
            var cluster = server.MetadataStore is LocalMetadataStore ? null : new SchemaRegistryCluster(server.State.Topics, store);
            var security = SchemaRegistrySecurity.Build(settings, listeners, server.Config, () => server.State.Topics.Image, server.State.Log);
            server._schemaRegistry = await SchemaRegistryServer.StartAsync(store, listeners, server.State.Identity.ClusterId, cancellationToken, cluster, security).ConfigureAwait(false);
            var advertised = server.SchemaRegistryAdvertisedUrl = AdvertisedRegistryUrl(settings.Get(SchemaRegistryAdvertisedListenerSetting), listeners,
                server._schemaRegistry.Urls, server.State.AdvertisedHost);
            await server.AdvertiseSchemaRegistryAsync(advertised, cancellationToken).ConfigureAwait(false);
            server.State.SchemaValidator = new SchemaRegistryRecordValidator(new RecordSchemaValidator(store), store, cluster);
            server.State.SchemaRegistryStatus = SchemaRegistryStatus.Running;
            server.State.Log.Info($"schema registry listening on {server._schemaRegistry.Url} (advertised as {advertised})");
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or System.Net.Sockets.SocketException or UriFormatException
            or ArgumentException or FormatException or System.Security.Cryptography.CryptographicException)
        {
            server.State.SchemaRegistryStatus = SchemaRegistryStatus.Failed;
            server.State.Log.Error($"schema registry not started on {listeners}: {e.Message}");
            await server.StopSchemaRegistryAsync().ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            await server.StopSchemaRegistryAsync().ConfigureAwait(false);
            throw;
        }
        return server;
    }

    /// <summary>
    /// The store over this broker's replica of <c>_schemas</c>-0: fed by what is committed there, its writer loaded while
    /// this broker leads the partition. A broker alone creates the topic now (one replica, led here), as it always did.
    /// </summary>
    private async Task<SchemaStore> OpenSchemaStoreAsync(CompatibilityLevel level)
    {
        var topics = State.Topics;
        if (MetadataStore is LocalMetadataStore)
            _ = topics.GetOrCreateInternalPartition(SchemasTopic, 1, SchemaRegistryCluster.TopicConfigs, 0)
                ?? throw new InvalidOperationException($"{SchemasTopic}-0 has no replica on broker {State.NodeId}; this broker cannot serve the registry.");
        var replicas = State.Replicas;
        // A broker without a replica (a cluster larger than the factor) reads the leader's committed records over Fetch.
        var reader = _schemasLeaderReader = MetadataStore is LocalMetadataStore ? null
            : new Tributary.Broker.Replication.LeaderReader(() => topics.Image, State.NodeId, SchemasTopic, 0, State.Settings.InterBroker);
        var source = new SchemaLogSource(
            () => topics.GetPartition(SchemasTopic, 0),
            log => replicas is null ? log.HighWatermark : replicas.CommittedOffset(SchemasTopic, 0, log),
            reader is null ? null : async (offset, ct) =>
                await reader.ReadAsync(offset, ct).ConfigureAwait(false) is { } read ? new LeaderFetch(read.Batches, read.HighWatermark, read.LogStartOffset) : null);
        // The writer appends only while the image says it leads (a deposed leader's late write would make its replica
        // diverge from the new leader's), and its append counts once the ISR holds it.
        var writes = new PartitionCoordinatorLog(() => null, () =>
            topics.Image.Partition(SchemasTopic, 0)?.Leader == State.NodeId && topics.GetPartition(SchemasTopic, 0) is { } replica
                ? replica
                : throw new InvalidOperationException($"broker {State.NodeId} no longer leads {SchemasTopic}-0"),
            offset => Tributary.Broker.Replication.CommittedWrites.WaitAsync(replicas, SchemasTopic, 0, offset));
        var store = SchemaStore.OpenFollowing(source, writes, level, report: State.Log.Coordinator, time: State.Time);
        _schemasImageWatch = (_, _) => store.LogChanged();
        topics.Store.Published += _schemasImageWatch;
        if (replicas is not null)
        {
            _schemasHighWatermarkWatch = log =>
            {
                if (ReferenceEquals(log, topics.GetPartition(SchemasTopic, 0))) store.LogChanged();
            };
            replicas.HighWatermarkAdvanced += _schemasHighWatermarkWatch;
        }
        // What moved before these subscriptions (a follower's first fetch answered meanwhile) is not announced again.
        store.LogChanged();
        _schemaWriterLeadership = CoordinatorLeadership.Follow(topics, SchemasTopic, store.Writer, State.Log);
        // Leading it already (a broker alone, a restart): the next image may be a while, and a broker alone takes
        // writes as soon as it has started.
        if (topics.Image.Partition(SchemasTopic, 0)?.Leader == State.NodeId && topics.GetPartition(SchemasTopic, 0) is not null
            && !topics.IsPartitionOffline(SchemasTopic, 0))
            await store.Writer.Load(0).ConfigureAwait(false);
        return store;
    }

    /// <summary>
    /// Puts the registry's URL in this broker's registration. A failure is logged, not fatal: this registry still answers,
    /// and the others answer writes with 50004 while it leads (until a restart advertises it).
    /// </summary>
    private async Task AdvertiseSchemaRegistryAsync(string url, CancellationToken cancellationToken)
    {
        try
        {
            await MetadataStore.UpdateRegistrationAsync(r => r with { SchemaRegistryUrl = url }, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            State.Log.Error($"schema registry: advertising {url} in broker {State.NodeId}'s registration failed; other brokers cannot forward writes here: {e.Message}");
        }
    }

    /// <summary>
    /// The registry URL other brokers forward to: <c>schema.registry.advertised.listener</c> when set; else the bound URL,
    /// with a wildcard listener's host replaced by the broker's advertised host (another machine cannot reach "localhost").
    /// With http and https listeners both, the https one is advertised: forwarded requests carry the client's credentials.
    /// </summary>
    internal static string AdvertisedRegistryUrl(string? advertised, string listeners, IReadOnlyList<string> boundUrls, string brokerHost)
    {
        if (advertised is { Length: > 0 }) return advertised.Contains("://", StringComparison.Ordinal) ? advertised.TrimEnd('/') : "http://" + advertised.TrimEnd('/');
        var parsed = SchemaRegistryServer.ParseListeners(listeners);
        var index = Math.Max(0, parsed.ToList().FindIndex(l => l.Https));
        var (host, boundUrl) = (parsed[index].Host, boundUrls[index]);
        if (!System.Net.IPAddress.Any.Equals(host) && !System.Net.IPAddress.IPv6Any.Equals(host)) return boundUrl;
        var bound = new Uri(boundUrl);
        return $"{bound.Scheme}://{(brokerHost.Contains(':', StringComparison.Ordinal) ? $"[{brokerHost}]" : brokerHost)}:{bound.Port}";
    }

    /// <summary>The HTTP server first (no new writes), then the store's writer and tail, before the partitions close.</summary>
    private async Task StopSchemaRegistryAsync()
    {
        _schemaWriterLeadership?.Dispose();
        _schemaWriterLeadership = null;
        if (_schemasImageWatch is { } imageWatch) State.Topics.Store.Published -= imageWatch;
        if (_schemasHighWatermarkWatch is { } watch && State.Replicas is { } replicas) replicas.HighWatermarkAdvanced -= watch;
        if (_schemaRegistry is { } registry)
        {
            _schemaRegistry = null;
            await registry.DisposeAsync().ConfigureAwait(false);
        }
        if (_schemaStore is { } store)
        {
            _schemaStore = null;
            await store.DisposeAsync().ConfigureAwait(false);
        }
        if (_schemasLeaderReader is { } reader)
        {
            _schemasLeaderReader = null;
            await reader.DisposeAsync().ConfigureAwait(false);
        }
    }
}

/// <summary>
/// The schema registry's validator behind the broker's validation seam. It is catching up while its state lags the
/// replica it follows, or may lag what is committed (in a cluster: a replica out of the ISR, or one not current).
/// </summary>
internal sealed class SchemaRegistryRecordValidator(RecordSchemaValidator validator, SchemaStore store, IRegistryCluster? cluster) : IRecordValidator
{
    public string? Validate(string topic, ValidatedParts parts, ReadOnlyMemory<byte> batches) =>
        validator.Validate(topic, parts.Keys, parts.Values, batches);

    public bool IsCatchingUp => store.IsCatchingUp || cluster is { ServesReads: false };
}
