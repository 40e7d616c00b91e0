namespace Tributary.Broker;

/// <summary>
/// A complete Tributary broker that runs inside the calling process: the `serve` command uses it, and so do tests
/// that need a real Kafka-compatible broker without Docker.
/// </summary>
public sealed class TributaryServer : IAsyncDisposable
{
    private TributaryServer(BrokerConfig config) => Config = config;

    public BrokerConfig Config { get; }

    /// <summary>"host:port" a client should bootstrap from.</summary>
    public string BootstrapServers => throw new NotImplementedException();

    public int Port => throw new NotImplementedException();

    public static Task<TributaryServer> StartAsync(BrokerConfig config, CancellationToken cancellationToken = default)
        => throw new NotImplementedException();

    /// <summary>Starts a broker on 127.0.0.1 with an OS-chosen port; data in <paramref name="dataDir"/> or a fresh temp dir.</summary>
    public static Task<TributaryServer> StartEphemeralAsync(string? dataDir = null, IReadOnlyDictionary<string, string>? settings = null, CancellationToken cancellationToken = default)
        => throw new NotImplementedException();

    public Task StopAsync() => throw new NotImplementedException();

    public ValueTask DisposeAsync() => new(StopAsync());
}
