namespace Tributary.Server;

/// <summary>
/// Several brokers in this process that form one cluster over an etcd child process, on loopback ports, for tests that
/// need more than one broker without Docker.
/// <code>
/// await using var cluster = await TributaryCluster.StartAsync(brokers: 3);
/// var config = new ProducerConfig { BootstrapServers = cluster.BootstrapServers };
/// </code>
/// </summary>
public sealed class TributaryCluster : IAsyncDisposable
{
    private readonly List<TributaryServer?> _brokers;
    private readonly IReadOnlyDictionary<string, string> _settings;
    private readonly IReadOnlyList<string>? _racks;
    private readonly string _root;

    private TributaryCluster(EtcdProcess etcd, List<TributaryServer?> brokers, IReadOnlyDictionary<string, string> settings, IReadOnlyList<string>? racks, string root)
    {
        Etcd = etcd;
        _brokers = brokers;
        _settings = settings;
        _racks = racks;
        _root = root;
    }

    public EtcdProcess Etcd { get; }

    /// <summary>The running brokers (a stopped one is left out); node ids are 1..n.</summary>
    public IReadOnlyList<TributaryServer> Brokers => [.. _brokers.Where(b => b is not null).Select(b => b!)];

    /// <summary>The broker with <paramref name="nodeId"/>; null while it is stopped.</summary>
    public TributaryServer? Broker(int nodeId) => _brokers[nodeId - 1];

    /// <summary>Every running broker, comma-separated, for a client's bootstrap.servers.</summary>
    public string BootstrapServers => string.Join(",", Brokers.Select(b => b.BootstrapServers));

    /// <param name="brokers">How many brokers (node ids 1..brokers).</param>
    /// <param name="settings">Kafka-named settings for every broker (broker.session.timeout.ms, ...).</param>
    /// <param name="racks">Each broker's <c>broker.rack</c>, node 1 first (rack-aware placement, fetch from follower).</param>
    public static async Task<TributaryCluster> StartAsync(int brokers = 3, IReadOnlyDictionary<string, string>? settings = null,
        CancellationToken cancellationToken = default, IReadOnlyList<string>? racks = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(brokers, 1);
        if (racks is not null && racks.Count != brokers) throw new ArgumentException($"{racks.Count} racks for {brokers} brokers", nameof(racks));
        var root = Path.Combine(Path.GetTempPath(), "tributary-cluster-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(root);
        var etcd = await EtcdProcess.StartAsync(Path.Combine(root, "etcd"), cancellationToken: cancellationToken).ConfigureAwait(false);
        var cluster = new TributaryCluster(etcd, [.. Enumerable.Repeat<TributaryServer?>(null, brokers)], settings ?? new Dictionary<string, string>(), racks, root);
        try
        {
            await Task.WhenAll(Enumerable.Range(1, brokers).Select(id => cluster.StartBrokerAsync(id, cancellationToken))).ConfigureAwait(false);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Starts broker <paramref name="nodeId"/> (again), on its own data directory.</summary>
    public async Task<TributaryServer> StartBrokerAsync(int nodeId, CancellationToken cancellationToken = default)
    {
        if (_brokers[nodeId - 1] is not null) throw new InvalidOperationException($"broker {nodeId} is running");
        var settings = new Dictionary<string, string>(_settings) { ["metadata.store"] = Etcd.StoreSetting, ["node.id"] = nodeId.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        if (_racks is not null) settings["broker.rack"] = _racks[nodeId - 1];
        var broker = await TributaryServer.StartEphemeralAsync(Path.Combine(_root, "broker-" + nodeId), settings, cancellationToken: cancellationToken).ConfigureAwait(false);
        _brokers[nodeId - 1] = broker;
        return broker;
    }

    /// <summary>Stops broker <paramref name="nodeId"/>; its data directory stays for a restart.</summary>
    public async Task StopBrokerAsync(int nodeId)
    {
        var broker = _brokers[nodeId - 1] ?? throw new InvalidOperationException($"broker {nodeId} is not running");
        _brokers[nodeId - 1] = null;
        await broker.DisposeAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var broker in _brokers.Where(b => b is not null)) await broker!.DisposeAsync().ConfigureAwait(false);
        await Etcd.DisposeAsync().ConfigureAwait(false);
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
