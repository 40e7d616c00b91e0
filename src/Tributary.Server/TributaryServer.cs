using System.Net;
using Tributary.Broker;
using Tributary.Broker.Cluster;
using Tributary.Broker.Groups;
using Tributary.Broker.Handlers;
using Tributary.Broker.Metadata;
using Tributary.Broker.Network;
using Tributary.Broker.Transactions;
using Tributary.Storage;
using Tributary.Storage.Cleaning;

namespace Tributary.Server;

/// <summary>
/// A complete Tributary broker that runs inside the calling process: the `serve` command uses it, and so do tests
/// that need a real Kafka-compatible broker without Docker.
/// <code>
/// await using var broker = await TributaryServer.StartEphemeralAsync();
/// var producer = new ProducerBuilder&lt;string, string&gt;(new ProducerConfig { BootstrapServers = broker.BootstrapServers }).Build();
/// </code>
/// </summary>
public sealed partial class TributaryServer : IAsyncDisposable
{
    private readonly LogManager _logs;
    private readonly IReadOnlyList<KafkaListener> _listeners;
    private readonly string? _ownedTempDir;
    private int _stopped;
    private readonly ClusterController _controller;
    private readonly LeaderRebalancer? _rebalancer;

    private TributaryServer(BrokerConfig config, BrokerState state, LogManager logs, IReadOnlyList<KafkaListener> listeners, string? ownedTempDir, GroupCoordinator groups,
        TransactionCoordinator transactions, IMetadataStore store, ClusterController controller, LeaderRebalancer? rebalancer)
    {
        _controller = controller;
        _rebalancer = rebalancer;
        MetadataStore = store;
        Transactions = transactions;
        Groups = groups;
        Config = config;
        State = state;
        _logs = logs;
        _listeners = listeners;
        _ownedTempDir = ownedTempDir;
    }

    public BrokerConfig Config { get; }

    /// <summary>Where the cluster metadata lives (local files, or etcd); for embedding and tests.</summary>
    public IMetadataStore MetadataStore { get; }

    /// <summary>The preferred-leader rebalance (null when auto.leader.rebalance.enable is false); for tests.</summary>
    public LeaderRebalancer? LeaderRebalancer => _rebalancer;

    /// <summary>The broker's shared state (topics, settings); for embedding and tests.</summary>
    public BrokerState State { get; }

    /// <summary>The storage layer's instruments (flushes, log sizes); the broker's are <see cref="BrokerState.Metrics"/>.</summary>
    public StorageMetrics StorageMetrics => _logs.Metrics;

    /// <summary>The consumer-group coordinator; for embedding and tests.</summary>
    public GroupCoordinator Groups { get; }

    /// <summary>The transaction coordinator; for embedding and tests.</summary>
    public TransactionCoordinator Transactions { get; }

    /// <summary>"host:port" a client should bootstrap from.</summary>
    public string BootstrapServers => $"{State.AdvertisedHost}:{State.AdvertisedPort}";

    /// <summary>The port the first listener is bound to (useful after asking for port 0).</summary>
    public int Port => _listeners[0].LocalEndPoint.Port;

    /// <summary>The port the listener named <paramref name="listener"/> is bound to.</summary>
    public int PortOf(string listener) => ListenerNamed(listener).LocalEndPoint.Port;

    /// <summary>"host:port" a client should bootstrap from through the listener named <paramref name="listener"/>.</summary>
    public string BootstrapServersFor(string listener)
    {
        var named = ListenerNamed(listener);
        return State.Topics.Image.Brokers.TryGetValue(State.NodeId, out var self) && self.EndpointFor(named.Name) is var (host, port)
            ? $"{host}:{port}"
            : $"{State.AdvertisedHost}:{named.LocalEndPoint.Port}";
    }

    private KafkaListener ListenerNamed(string name) =>
        _listeners.FirstOrDefault(l => string.Equals(l.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"no listener is named {name}");

    public string DataDir => Path.GetFullPath(Config.DataDir);

    public static Task<TributaryServer> StartAsync(BrokerConfig config, CancellationToken cancellationToken = default) =>
        WithConsoleAsync(WithSchemaRegistryAsync(StartAsync(config, null, LogLevel.Info, cancellationToken), cancellationToken), cancellationToken);

    /// <summary>Starts a broker on 127.0.0.1 with an OS-chosen port; data in <paramref name="dataDir"/> or a fresh temp dir (deleted at stop).</summary>
    /// <param name="time">The broker's clock (default the system's); a fake one lets a test drive timeouts.</param>
    public static Task<TributaryServer> StartEphemeralAsync(string? dataDir = null, IReadOnlyDictionary<string, string>? settings = null,
        TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        string? owned = null;
        if (dataDir is null)
        {
            owned = Path.Combine(Path.GetTempPath(), "tributary-" + Guid.NewGuid().ToString("N"));
            dataDir = owned;
        }
        var config = new BrokerConfig { DataDir = dataDir, ListenHost = "127.0.0.1", ListenPort = 0, Time = time ?? TimeProvider.System };
        // Through Apply, so listeners and advertised.listeners may be given here too.
        if (settings is not null)
            foreach (var (name, value) in settings) config.Apply(name, value);
        config.Settings.TryAdd(SchemaRegistryListenersSetting, "http://127.0.0.1:0");
        // Off unless a test asks for it (http://127.0.0.1:0): never the shared 8080, and no Kestrel for every test broker.
        config.Settings.TryAdd(ConsoleListenersSetting, "");
        return WithConsoleAsync(WithSchemaRegistryAsync(StartAsync(config, owned, LogLevel.Warn, cancellationToken), cancellationToken), cancellationToken);
    }

    private static async Task<TributaryServer> StartAsync(BrokerConfig config, string? ownedTempDir, LogLevel logLevel, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var settings = new BrokerSettings(config.Settings);
        var log = new BrokerLog(settings.Get("log.level") is { } level ? Enum.Parse<LogLevel>(level, ignoreCase: true) : logLevel);
        foreach (var name in settings.UnknownNames)
            log.Warn($"The setting {name} was supplied but isn't a known config (tributary serve --help-config lists them).");
        var dataDir = Path.GetFullPath(config.DataDir);
        Directory.CreateDirectory(dataDir);
        var dataDirs = config.DataDirs.Select(Path.GetFullPath).ToList();
        var time = config.Time;
        var logs = config.StorageFileSystem is { } fs
            ? new LogManager(dataDirs, time, fs)
            : new LogManager(dataDirs, time, settings.TopicLimits.MaxOpenFiles);
        var storageProblems = new RateLimitedLog(log, LogLevel.Error, 10, TimeSpan.FromSeconds(10), time);
        logs.Diagnostics.Problem += p => storageProblems.Write($"storage: {p.Operation} failed in {p.Where}: {p.Error.GetType().Name}: {p.Error.Message}");
        GroupCoordinator? groups = null;
        TransactionCoordinator? transactions = null;
        var listeners = new List<KafkaListener>();
        Tributary.Broker.Diagnostics.BrokerMetrics? metrics = null;
        IMetadataStore? store = null;
        ClusterController? controller = null;
        LeaderRebalancer? rebalancer = null;
        Tributary.Broker.Replication.ReplicaManager? replicas = null;
        try
        {
            // Listener settings are checked before anything is opened: a wrong one stops start-up naming it.
            var interBrokerListener = ListenerSecurity.InterBrokerListener(settings, config.Listeners);
            CheckListeners(config, settings);
            // Only a cluster's brokers connect to each other: a broker alone needs no credentials for it.
            if (settings.Get("metadata.store") is { Length: > 0 }) settings.InterBroker = InterBrokerSecurity.Resolve(settings, interBrokerListener, log);
            ClusterIdentity identity;
            if (settings.Get("metadata.store") is { Length: > 0 } storeSetting)
            {
                var etcd = await EtcdMetadataStore.OpenAsync(storeSetting, settings.NodeId, ClusterIdentity.StoredClusterId(dataDir), ClusterIdentity.NewClusterId(),
                    settings.Int("broker.session.timeout.ms"), log, cancellationToken).ConfigureAwait(false);
                store = etcd;
                identity = ClusterIdentity.LoadOrCreate(dataDir, settings.NodeId, etcd.Image.ClusterId);
            }
            else
            {
                identity = ClusterIdentity.LoadOrCreate(dataDir, settings.NodeId);
                store = new LocalMetadataStore(dataDir, identity.ClusterId, settings.NodeId);
            }
            foreach (var dir in logs.Directories.Skip(1).Where(d => !d.IsOffline))
                identity.EnsureIn(dir.Path);
            foreach (var dir in logs.Directories.Where(d => d.IsOffline))
                log.Error($"storage: the log directory {dir.Path} cannot be opened and is offline: {dir.Failure?.Message}");
            var topics = new TopicCatalog(store, logs, settings);
            controller = new ClusterController(store, settings.Bool("unclean.leader.election.enable"), log);
            if (settings.Bool("auto.leader.rebalance.enable"))
                rebalancer = new LeaderRebalancer(store, time, TimeSpan.FromSeconds(settings.Long("leader.imbalance.check.interval.seconds")),
                    settings.Int("leader.imbalance.per.broker.percentage"), log);
            replicas = new Tributary.Broker.Replication.ReplicaManager(topics, settings, time, log);
            OpenFileLimitCheck.Run(dataDir, logs, topics.PartitionTotal, settings.TopicLimits.MaxBrokerPartitions, log);
            var state = new BrokerState(settings, identity, topics, time, log)
            {
                Replicas = replicas,
                Authorizer = Tributary.Broker.Security.Authorizer.Create(settings, store),
                SchemaRegistryStatus = settings.Bool(SchemaRegistryEnableSetting) ? SchemaRegistryStatus.Starting : SchemaRegistryStatus.Disabled,
            };
            metrics = state.Metrics;
            if (state.Authorizer is { } denying)
            {
                var refusals = new RateLimitedLog(log, LogLevel.Info, 20, TimeSpan.FromSeconds(10), time);
                denying.Denied = line => refusals.Write("authorizer: " + line);
            }
            if (state.Authorizer is { } authorizer && store is not LocalMetadataStore
                && ListenerSecurity.ProtocolOf(settings, interBrokerListener) == SecurityProtocol.Plaintext && !authorizer.IsSuperUser(Connection.AnonymousPrincipal))
                log.Warn($"authorizer: the inter-broker listener {interBrokerListener} is PLAINTEXT, so the other brokers connect as {Connection.AnonymousPrincipal}; " +
                    "add it to super.users, or use an SSL inter-broker listener with ssl.client.auth=required and add the brokers' certificate principal, " +
                    "or followers' fetches and transaction markers are refused (docs/security.md#acls).");
            groups = new GroupCoordinator(topics, GroupSettings.From(settings), time, log);
            groups.Replicas = replicas;
            groups.Start();
            transactions = new TransactionCoordinator(topics, groups, TransactionSettings.From(settings), ClusterProducerIds(store) ?? new ProducerIdManager(dataDir), time, log);
            transactions.Replicas = replicas;
            if (store is not LocalMetadataStore)
            {
                transactions.InterBroker = new Tributary.Broker.Replication.InterBrokerClient(() => topics.Image, settings.NodeId, settings.InterBroker);
                transactions.VerificationClient = new Tributary.Broker.Replication.InterBrokerClient(() => topics.Image, settings.NodeId, settings.InterBroker);
            }
            transactions.Start();
            var registry = BuildRegistry(state, groups, transactions);
            var advertised = OpenListeners(config, settings, registry, log, time, state.Metrics, state.Authorizer, listeners, () => topics.Image, state.Quotas);
            var openGroups = groups;
            var openTransactions = transactions;
            state.Metrics.Observe(() => listeners.Sum(l => l.ConnectionCount), () => openGroups.GroupCount, () => openTransactions.OpenTransactionCount);
            (state.AdvertisedHost, state.AdvertisedPort) = (advertised[0].Host, advertised[0].Port);
            var interBroker = advertised.First(a => a.Name == interBrokerListener);
            logs.StartBackgroundTasks(settings.RetentionCheckIntervalMs, settings.Cleaner, cleaner => ReportCleaning(cleaner, log, state.Metrics));
            await store.RegisterAsync(new BrokerRegistration(settings.NodeId, interBroker.Host, interBroker.Port, settings.Get("broker.rack"), Guid.NewGuid())
            {
                Listeners = advertised,
            }, cancellationToken).ConfigureAwait(false);
            foreach (var listener in listeners) listener.Start();
            var server = new TributaryServer(config, state, logs, listeners, ownedTempDir, groups, transactions, store, controller, rebalancer);
            server.WatchLogDirectories(log);
            return server;
        }
        catch
        {
            // Stop whatever had started (coordinator loops, the transaction timer, a bound socket) before the logs
            // they use: a failed start leaves nothing running.
            foreach (var listener in listeners) listener.DisposeAsync().AsTask().GetAwaiter().GetResult();
            transactions?.DisposeAsync().AsTask().GetAwaiter().GetResult();
            groups?.DisposeAsync().AsTask().GetAwaiter().GetResult();
            metrics?.Dispose();
            controller?.Dispose();
            rebalancer?.Dispose();
            if (replicas is not null) await replicas.DisposeAsync().ConfigureAwait(false);
            if (store is not null) await store.DisposeAsync().ConfigureAwait(false);
            logs.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Kafka's listener rules: every listener has a security protocol, and every advertised listener names one of them.
    /// </summary>
    private static void CheckListeners(BrokerConfig config, BrokerSettings settings)
    {
        foreach (var listener in config.Listeners) ListenerSecurity.ProtocolOf(settings, listener.Name);
        foreach (var advertised in config.AdvertisedListeners)
            if (!config.Listeners.Any(l => string.Equals(l.Name, advertised.Name, StringComparison.OrdinalIgnoreCase)))
                throw new ArgumentException($"advertised.listeners: {advertised.Name} is not one of the listeners ({string.Join(", ", config.Listeners.Select(l => l.Name))})");
    }

    /// <summary>
    /// Binds every listener (an SSL one with its TLS settings) and returns what each advertises: its advertised.listeners
    /// entry, else its bound address, a wildcard host advertised as localhost (which works out of the box locally); an
    /// advertised port 0 is the bound port.
    /// </summary>
    private static List<ListenerAddress> OpenListeners(BrokerConfig config, BrokerSettings settings, ApiRegistry registry, BrokerLog log, TimeProvider time,
        Tributary.Broker.Diagnostics.BrokerMetrics metrics, Tributary.Broker.Security.Authorizer? authorizer, List<KafkaListener> opened, Func<Tributary.Broker.Cluster.MetadataImage> image,
        Tributary.Broker.Quotas.ClientQuotaManager quotas)
    {
        var advertised = new List<ListenerAddress>();
        var admission = new ConnectionAdmission(settings.Connections, time, ListenerSecurity.InterBrokerListener(settings, config.Listeners), image,
            settings.Int("quota.window.num") * settings.Int("quota.window.size.seconds"));
        foreach (var spec in config.Listeners)
        {
            var protocol = ListenerSecurity.ProtocolOf(settings, spec.Name);
            var tls = protocol is SecurityProtocol.Ssl or SecurityProtocol.SaslSsl ? TlsSettings.ForListener(settings, spec.Name, log) : null;
            var sasl = protocol is SecurityProtocol.SaslPlaintext or SecurityProtocol.SaslSsl ? Tributary.Broker.Security.SaslSettings.ForListener(settings, spec.Name, image, log) : null;
            var address = ResolveListenAddress(spec.Host);
            var listener = new KafkaListener(spec.Name, new IPEndPoint(address, spec.Port), tls, sasl, registry, settings, log, time, metrics, admission, authorizer, quotas);
            opened.Add(listener);
            var wildcard = IPAddress.Any.Equals(address) || IPAddress.IPv6Any.Equals(address);
            var given = config.AdvertisedFor(spec.Name);
            advertised.Add(new ListenerAddress(spec.Name,
                given?.Host is { Length: > 0 } host ? host : wildcard ? "localhost" : spec.Host,
                given?.Port is > 0 and var port ? port : listener.LocalEndPoint.Port));
        }
        return advertised;
    }

    /// <summary>In a cluster, producer ids come in blocks from the metadata store; null for a broker alone.</summary>
    private static ProducerIdManager? ClusterProducerIds(IMetadataStore store) => store is LocalMetadataStore ? null
        // Once per block of ids, off the produce path: blocking for the etcd round trip is cheaper than an async seam.
        : new ProducerIdManager(size => store.AllocateProducerIdsAsync(size, CancellationToken.None).GetAwaiter().GetResult());

    private static IPAddress ResolveListenAddress(string host)
    {
        if (string.IsNullOrEmpty(host) || host == "0.0.0.0") return IPAddress.Any;
        if (IPAddress.TryParse(host, out var ip)) return ip;
        if (host == "localhost") return IPAddress.Loopback;
        return Dns.GetHostAddresses(host).First(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork);
    }

    /// <summary>Every API this broker serves. Adding an API is a handler file and one line here.</summary>
    private static ApiRegistry BuildRegistry(BrokerState state, GroupCoordinator groups, TransactionCoordinator transactions)
    {
        var creator = new TopicCreator(state);
        var describer = new TopicConfigDescriber(state.Settings);
        var changer = new TopicConfigChanger(state);
        ApiRegistry? registry = null;
        registry = new ApiRegistry(
        [
            new ProduceHandler(state, transactions),
            new FetchHandler(state),
            new ListOffsetsHandler(state),
            new MetadataHandler(state, creator),
            new ApiVersionsHandler(() => registry!, transactions.Settings.TransactionVersion),
            new CreateTopicsHandler(state, creator, describer),
            new DeleteTopicsHandler(state),
            new DeleteRecordsHandler(state),
            new DescribeLogDirsHandler(state),
            new DescribeConfigsHandler(state, describer),
            new AlterConfigsHandler(changer),
            new CreatePartitionsHandler(state),
            new AlterPartitionReassignmentsHandler(state),
            new ListPartitionReassignmentsHandler(state),
            new IncrementalAlterConfigsHandler(changer),
            new DescribeClusterHandler(state),
            new ElectLeadersHandler(state),
            new DescribeTopicPartitionsHandler(state),
            new OffsetCommitHandler(groups, state.Topics),
            new OffsetFetchHandler(groups),
            new FindCoordinatorHandler(state, groups, transactions),
            new JoinGroupHandler(groups),
            new HeartbeatHandler(groups),
            new LeaveGroupHandler(groups),
            new SyncGroupHandler(groups),
            new DescribeGroupsHandler(groups),
            new ListGroupsHandler(groups),
            new DeleteGroupsHandler(groups),
            new OffsetDeleteHandler(groups),
            new ConsumerGroupHeartbeatHandler(groups),
            new ConsumerGroupDescribeHandler(groups),
            new InitProducerIdHandler(transactions),
            new AddPartitionsToTxnHandler(transactions),
            new AddOffsetsToTxnHandler(transactions),
            new EndTxnHandler(transactions),
            new TxnOffsetCommitHandler(transactions, groups, state.Topics),
            new DescribeProducersHandler(state),
            new WriteTxnMarkersHandler(state, groups),
            new OffsetForLeaderEpochHandler(state),
            new DescribeTransactionsHandler(transactions),
            new DescribeClientQuotasHandler(state),
            new AlterClientQuotasHandler(state),
            new SaslHandshakeHandler(),
            new SaslAuthenticateHandler(),
            new DescribeUserScramCredentialsHandler(state),
            new AlterUserScramCredentialsHandler(state),
            new ListTransactionsHandler(transactions, state.Time),
            new DescribeAclsHandler(state),
            new CreateAclsHandler(state),
            new DeleteAclsHandler(state),
        ]);
        return registry;
    }

    /// <summary>One line per cleaning pass, as Kafka's log-cleaner.log has: what was read and written, and how fast.</summary>
    private static void ReportCleaning(LogCleaner cleaner, BrokerLog log, Tributary.Broker.Diagnostics.BrokerMetrics metrics)
    {
        cleaner.Cleaned += (partition, r) =>
        {
            metrics.CleanerPassed();
            double seconds = Math.Max(r.Elapsed.TotalSeconds, 1e-6);
            log.Info($"log cleaner: cleaned {Path.GetFileName(partition.Directory)} offsets {r.FirstDirtyOffset}..{r.EndOffset}: " +
                $"{r.SegmentsIn} segments into {r.SegmentsOut}, read {r.BytesRead / 1e6:F1} MB, wrote {r.BytesWritten / 1e6:F1} MB " +
                $"in {r.Elapsed.TotalMilliseconds:F0} ms ({r.BytesRead / 1e6 / seconds:F1} MB/s read)");
        };
        cleaner.Failed += e =>
        {
            metrics.CleanerFailed();
            log.Error($"log cleaner: {e.Message}");
        };
        cleaner.MarkedUncleanable += (partition, e) =>
        {
            metrics.CleanerFailed();
            log.Error($"log cleaner: {Path.GetFileName(partition.Directory)} marked uncleanable, skipped until restart: {e.GetType().Name}: {e.Message}");
        };
    }

    private readonly TaskCompletionSource<string> _halted = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// Completes (with the reason) when storage failed fatally, the metadata log directory or every log directory
    /// offline: the broker stops itself then, as Kafka halts. The serve command exits non-zero on it.
    /// </summary>
    public Task<string> Halted => _halted.Task;

    /// <summary>
    /// Kafka's log-directory failure, host side: a directory going offline unloads the coordinator shards of the
    /// internal partitions in it (their groups and transactions answer NOT_COORDINATOR instead of failing on the log);
    /// a fatal one logs a fatal line and stops the broker.
    /// </summary>
    private void WatchLogDirectories(BrokerLog log)
    {
        _logs.LogDirectoryFailed += failure => OnLogDirectoryFailed(failure, log);
        // Directories offline from the start: their internal partitions never had a log.
        foreach (var dir in _logs.Directories.Where(d => d.IsOffline))
            UnloadInternalShards([.. State.Topics.Topics.Where(t => t.IsInternal)
                .SelectMany(t => Enumerable.Range(0, t.PartitionCount).Select(p => (t.Name, p)))
                .Where(k => State.Topics.IsPartitionOffline(k.Name, k.p))], log);
        if (_logs.Directories[0].IsOffline || _logs.Directories.All(d => d.IsOffline))
            Halt($"the log directory {_logs.Directories[0].Path} is offline", log);
    }

    private void OnLogDirectoryFailed(LogDirectoryFailure failure, BrokerLog log)
    {
        log.Error($"storage: the log directory {failure.Directory.Path} is offline after {failure.Directory.FailedOperation} failed " +
            $"({failure.Directory.Failure?.Message}); its {failure.Partitions.Count} partitions answer KAFKA_STORAGE_ERROR until restart");
        UnloadInternalShards(failure.Partitions, log);
        if (failure.Fatal)
        {
            Halt(failure.Directory.IsMetadata
                ? $"the metadata log directory {failure.Directory.Path} is offline"
                : "every log directory is offline", log);
        }
    }

    private void UnloadInternalShards(IEnumerable<(string Topic, int Partition)> partitions, BrokerLog log)
    {
        foreach (var (topic, partition) in partitions)
        {
            Task? unload = topic switch
            {
                GroupSettings.OffsetsTopic => Groups.UnloadPartitionAsync(partition),
                TransactionSettings.StateTopic => Transactions.UnloadPartitionAsync(partition),
                _ => null,
            };
            unload?.ContinueWith(t => log.Error($"storage: unloading the coordinator of {topic}-{partition} failed: {t.Exception?.GetBaseException().Message}"),
                CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        }
    }

    /// <summary>Kafka halts the broker when its metadata directory or every directory fails; an embedded broker stops.</summary>
    private void Halt(string reason, BrokerLog log)
    {
        if (!_halted.TrySetResult(reason)) return;
        log.Error($"FATAL: {reason}; stopping the broker (restart it once the disk is repaired)");
        _ = Task.Run(async () =>
        {
            try
            {
                await StopAsync().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                log.Error($"stopping after a fatal storage failure: {e.Message}");
            }
        });
    }

    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0) return;
        await StopConsoleAsync().ConfigureAwait(false);
        await ShutDownControlledAsync().ConfigureAwait(false);
        await StopSchemaRegistryAsync().ConfigureAwait(false);
        foreach (var listener in _listeners) await listener.DisposeAsync().ConfigureAwait(false);
        await Transactions.DisposeAsync().ConfigureAwait(false);
        await Groups.DisposeAsync().ConfigureAwait(false);
        // Leaving the cluster (the registration's lease revoked) before the logs close.
        _controller.Dispose();
        _rebalancer?.Dispose();
        if (State.Replicas is { } replicas) await replicas.DisposeAsync().ConfigureAwait(false);
        await MetadataStore.DisposeAsync().ConfigureAwait(false);
        await _logs.StopAsync().ConfigureAwait(false);
        _logs.Dispose();
        State.Metrics.Dispose();
        if (_ownedTempDir is not null)
        {
            try
            {
                Directory.Delete(_ownedTempDir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    public ValueTask DisposeAsync() => new(StopAsync());

    /// <summary>
    /// Kafka's controlled shutdown (controlled.shutdown.enable): before stopping, this broker asks the controller to move
    /// the leaderships it holds to other in-sync replicas, and waits until they moved (at most the session timeout), so
    /// producers and consumers switch leader without errors. Partitions with no other in-sync replica stay until it stops.
    /// </summary>
    private async Task ShutDownControlledAsync()
    {
        if (MetadataStore is LocalMetadataStore || !State.Settings.Bool("controlled.shutdown.enable")) return;
        var log = State.Log;
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(State.Settings.Int("broker.session.timeout.ms")));
            await MetadataStore.BeginShutdownAsync(timeout.Token).ConfigureAwait(false);
            var moved = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            void Check(MetadataImage image)
            {
                if (!LeadsMovable(image)) moved.TrySetResult();
            }
            void OnPublished(MetadataImage previous, MetadataImage image) => Check(image);
            MetadataStore.Published += OnPublished;
            try
            {
                Check(MetadataStore.Image);
                await moved.Task.WaitAsync(timeout.Token).ConfigureAwait(false);
                log.Info($"controlled shutdown: broker {State.NodeId} leads no partition another in-sync replica could lead.");
            }
            finally
            {
                MetadataStore.Published -= OnPublished;
            }
        }
        catch (Exception e)
        {
            // Whatever went wrong (etcd away, no controller), the broker still stops: its leaderships move when its
            // lease ends, as after a crash.
            log.Warn($"controlled shutdown: leaderships did not all move in time ({e.Message}); stopping anyway.");
        }
    }

    /// <summary>True while this broker leads a partition whose ISR has another live broker to take over.</summary>
    private bool LeadsMovable(MetadataImage image) =>
        image.TopicsByName.Values.Any(t => t.Partitions.Any(p => p.Leader == State.NodeId
            && p.Isr.Any(r => r != State.NodeId && image.Brokers.TryGetValue(r, out var b) && !b.ShuttingDown)));
}
