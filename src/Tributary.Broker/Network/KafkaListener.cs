using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Tributary.Broker.Handlers;

namespace Tributary.Broker.Network;

/// <summary>Accepts client connections and runs each on its own pair of loops until it or the broker closes.</summary>
public sealed class KafkaListener : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly ApiRegistry _registry;
    private readonly BrokerLog _log;
    private readonly BrokerSettings _settings;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<Connection, Task> _connections = new();
    private Task? _acceptLoop;

    public KafkaListener(IPEndPoint endpoint, ApiRegistry registry, BrokerSettings settings, BrokerLog log)
    {
        _registry = registry;
        _settings = settings;
        _log = log;
        _socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        // No ReuseAddress: on Linux .NET maps it to SO_REUSEPORT as well, which would let a second broker bind the
        // same port and steal half the connections. (.NET already sets SO_REUSEADDR, so restarts bind at once.)
        _socket.Bind(endpoint);
        _socket.Listen(1024);
        LocalEndPoint = (IPEndPoint)_socket.LocalEndPoint!;
    }

    public IPEndPoint LocalEndPoint { get; }

    public int ConnectionCount => _connections.Count;

    public void Start() => _acceptLoop = AcceptLoopAsync();

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _socket.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (SocketException e)
            {
                _log.Warn($"accept failed: {e.Message}");
                continue;
            }
            client.NoDelay = true;
            var connection = new Connection(client, _registry, _log, _settings.MaxRequestBytes, _settings.MaxConnectionsInFlightPerConnection, _stopping.Token);
            _connections[connection] = RunConnectionAsync(connection);
        }
    }

    private async Task RunConnectionAsync(Connection connection)
    {
        await Task.Yield();
        try
        {
            await connection.RunAsync().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            _log.Error($"connection from {connection.Remote} failed: {e}");
        }
        finally
        {
            _connections.TryRemove(connection, out _);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stopping.Cancel();
        _socket.Dispose();
        if (_acceptLoop is not null) await _acceptLoop.ConfigureAwait(false);
        await Task.WhenAll(_connections.Values).ConfigureAwait(false);
        _stopping.Dispose();
    }
}
