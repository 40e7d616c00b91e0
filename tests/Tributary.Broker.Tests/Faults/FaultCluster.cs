using System.Globalization;
using System.Security.Cryptography;
using Xunit.Abstractions;

namespace Tributary.Broker.Tests.Faults;

/// <summary>
/// Three etcd members (<see cref="FaultEtcd"/>) and three `tributary serve` children (node ids 1..3), each on its own data directory and port, which
/// stay with the node across kills and restarts. The nemesis acts on nodes through <see cref="Kill"/>,
/// <see cref="RestartAsync"/>, <see cref="Pause"/> and <see cref="Resume"/>, and on the network through
/// <see cref="Links"/>; <see cref="HealAsync"/> undoes whatever it left behind. Everything, data directories included,
/// goes on dispose.
/// <para>
/// Each broker has two listeners: CLIENT, which the workload uses directly, and INTERNAL, the inter-broker listener,
/// which it advertises at a <see cref="LinkProxy"/>, so replication and the other broker-to-broker requests cross the
/// proxies while clients do not. Each broker also reaches each etcd member through a proxy of its own, so one broker
/// can lose etcd while the others keep it.
/// </para>
/// </summary>
internal sealed class FaultCluster : IAsyncDisposable
{
    public const int Size = 3;

    private readonly string _root;
    private readonly string _cli;
    private readonly ITestOutputHelper _output;
    private readonly Dictionary<string, string> _settings;
    private readonly int[] _ports;
    private readonly int[] _internalPorts;
    private readonly List<LinkProxy> _proxies = [];
    private readonly int[] _interBrokerProxies = new int[Size];
    private readonly string[] _etcdThroughProxies = new string[Size];
    private readonly ServeProcess?[] _nodes = new ServeProcess?[Size];
    private readonly bool[] _paused = new bool[Size];

    private FaultCluster(string root, string cli, ITestOutputHelper output, FaultEtcd etcd, Dictionary<string, string> settings, int[] ports)
    {
        _root = root;
        _cli = cli;
        _output = output;
        Etcd = etcd;
        _settings = settings;
        _ports = ports;
        _internalPorts = [.. Enumerable.Range(0, Size).Select(_ => ServeProcess.FreePort())];
        for (var node = 1; node <= Size; node++)
        {
            var toBroker = new LinkProxy(_internalPorts[node - 1], node, fixedSource: null, Links);
            _proxies.Add(toBroker);
            _interBrokerProxies[node - 1] = toBroker.Port;
            var toEtcd = etcd.ClientPorts.Select(port => new LinkProxy(port, NetworkLinks.Etcd, fixedSource: node, Links)).ToList();
            _proxies.AddRange(toEtcd);
            _etcdThroughProxies[node - 1] = "etcd://" + string.Join(",", toEtcd.Select(p => $"127.0.0.1:{p.Port}"));
        }
    }

    public FaultEtcd Etcd { get; }

    /// <summary>The links between brokers, and between each broker and etcd, that the nemesis cuts, slows and resets.</summary>
    public NetworkLinks Links { get; } = new();

    public string BootstrapServers => string.Join(",", _ports.Select(p => $"127.0.0.1:{p}"));

    public static async Task<FaultCluster> StartAsync(ITestOutputHelper output, IReadOnlyDictionary<string, string> settings)
    {
        var root = Path.Combine(Path.GetTempPath(), "tributary-fault-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(root);
        var etcd = await FaultEtcd.StartAsync(root);
        var all = new Dictionary<string, string>(settings);
        var ports = Enumerable.Range(0, Size).Select(_ => ServeProcess.FreePort()).ToArray();
        var cluster = new FaultCluster(root, await ServeProcess.LocateCliAsync(), output, etcd, all, ports);
        try
        {
            // One at a time: the first broker creates the cluster id, the others join it.
            for (var node = 1; node <= Size; node++) await cluster.RestartAsync(node);
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
        return cluster;
    }

    public string DataDir(int node) => Path.Combine(_root, "broker-" + node);

    public bool IsRunning(int node) => _nodes[node - 1] is { HasExited: false };

    public bool IsPaused(int node) => _paused[node - 1];

    /// <summary>SIGKILL of node <paramref name="node"/>; its data directory stays for <see cref="RestartAsync"/>.</summary>
    public void Kill(int node)
    {
        var serve = _nodes[node - 1];
        _nodes[node - 1] = null;
        _paused[node - 1] = false;
        serve?.Dispose();
    }

    /// <summary>Starts node <paramref name="node"/> (again) on its data directory and port, and waits until it listens.</summary>
    public async Task RestartAsync(int node)
    {
        if (IsRunning(node)) throw new InvalidOperationException($"node {node} is running");
        var settings = new Dictionary<string, string>(_settings)
        {
            ["node.id"] = node.ToString(CultureInfo.InvariantCulture),
            ["metadata.store"] = _etcdThroughProxies[node - 1],
            ["listeners"] = $"CLIENT://127.0.0.1:{_ports[node - 1]},INTERNAL://127.0.0.1:{_internalPorts[node - 1]}",
            ["advertised.listeners"] = $"CLIENT://127.0.0.1:{_ports[node - 1]},INTERNAL://127.0.0.1:{_interBrokerProxies[node - 1]}",
            ["listener.security.protocol.map"] = "CLIENT:PLAINTEXT,INTERNAL:PLAINTEXT",
            ["inter.broker.listener.name"] = "INTERNAL",
        };
        _nodes[node - 1] = await ServeProcess.StartAsync(_cli, DataDir(node), _ports[node - 1], new PrefixedOutput(_output, $"[{node}] "), settings);
    }

    public void Pause(int node)
    {
        _nodes[node - 1]!.Pause();
        _paused[node - 1] = true;
    }

    public void Resume(int node)
    {
        _nodes[node - 1]!.Resume();
        _paused[node - 1] = false;
    }

    /// <summary>Resumes paused nodes and restarts killed ones (etcd members too), so that every node runs.</summary>
    public async Task HealAsync()
    {
        Links.HealAll();
        for (var member = 1; member <= FaultEtcd.Members; member++)
            if (!Etcd.IsRunning(member)) await Etcd.RestartAsync(member);
        for (var node = 1; node <= Size; node++)
        {
            if (IsPaused(node)) Resume(node);
            if (!IsRunning(node))
            {
                Kill(node);
                await RestartAsync(node);
            }
        }
    }

    /// <summary>SIGTERM to every node, one after another, each waited for: a clean stop, logs flushed.</summary>
    public async Task StopCleanlyAsync()
    {
        for (var node = 1; node <= Size; node++)
        {
            if (_nodes[node - 1] is not { } serve) continue;
            await serve.StopAsync(TimeSpan.FromSeconds(40));
            serve.Dispose();
            _nodes[node - 1] = null;
        }
    }

    /// <summary>
    /// A digest of one replica's copy of a partition: its segment files (`*.log`, by base offset) concatenated, so two
    /// replicas compare equal when they hold the same batches even if they rolled segments at other offsets.
    /// Null when the node has no directory for the partition.
    /// </summary>
    public (string Sha256, long Bytes)? LogDigest(int node, string topic, int partition)
    {
        var dir = Path.Combine(DataDir(node), $"{topic}-{partition}");
        if (!Directory.Exists(dir)) return null;
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long bytes = 0;
        foreach (var segment in Directory.GetFiles(dir, "*.log").Order(StringComparer.Ordinal))
        {
            var content = File.ReadAllBytes(segment);
            hash.AppendData(content);
            bytes += content.Length;
        }
        return (Convert.ToHexString(hash.GetHashAndReset()), bytes);
    }

    public async ValueTask DisposeAsync()
    {
        for (var node = 1; node <= Size; node++) Kill(node);
        Links.HealAll();
        foreach (var proxy in _proxies) await proxy.DisposeAsync();
        await Etcd.DisposeAsync();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>Marks each child's lines with its node id in the shared test output.</summary>
    private sealed class PrefixedOutput(ITestOutputHelper inner, string prefix) : ITestOutputHelper
    {
        public void WriteLine(string message) => inner.WriteLine(prefix + message);

        public void WriteLine(string format, params object[] args) => inner.WriteLine(prefix + format, args);
    }
}
