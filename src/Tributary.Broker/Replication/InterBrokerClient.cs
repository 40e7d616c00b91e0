using System.Collections.Concurrent;
using Tributary.Broker.Cluster;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Wire;

namespace Tributary.Broker.Replication;

/// <summary>
/// Requests from this broker to another one (Kafka's inter-broker send threads, for what is not replica fetching):
/// the transaction coordinator's WriteTxnMarkers to partition leaders. One connection per broker, reached at the
/// endpoint the current metadata image registers for it, one request at a time on it; a failed exchange closes the
/// connection and the next request connects again.
/// </summary>
internal sealed class InterBrokerClient(Func<MetadataImage> image, int nodeId, Network.InterBrokerSecurity? security = null) : IAsyncDisposable
{
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(30);

    private sealed class Connection
    {
        public SemaphoreSlim Gate { get; } = new(1, 1);

        public BrokerChannel? Channel { get; set; }

        public (string Host, int Port) Endpoint { get; set; }
    }

    private readonly ConcurrentDictionary<int, Connection> _connections = new();
    private readonly CancellationTokenSource _stop = new();

    /// <exception cref="IOException">The broker is not registered, cannot be reached, or the exchange failed.</exception>
    public async Task<TResponse> SendAsync<TResponse>(int broker, IKafkaRequest request, short version, CancellationToken cancellationToken)
        where TResponse : IKafkaResponse, new()
    {
        if (!image().Brokers.TryGetValue(broker, out var registration))
            throw new IOException($"broker {broker} is not registered");
        var connection = _connections.GetOrAdd(broker, _ => new Connection());
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
        linked.CancelAfter(RequestTimeout);
        await connection.Gate.WaitAsync(linked.Token).ConfigureAwait(false);
        try
        {
            if (connection.Channel is not null && connection.Endpoint != (registration.Host, registration.Port))
                await CloseAsync(connection).ConfigureAwait(false); // it came back elsewhere
            if (connection.Channel is null)
            {
                connection.Channel = await BrokerChannel.ConnectAsync(registration.Host, registration.Port, $"broker-{nodeId}", security, linked.Token).ConfigureAwait(false);
                connection.Endpoint = (registration.Host, registration.Port);
            }
            return await connection.Channel.SendAsync<TResponse>(request, version, linked.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not IOException)
        {
            await CloseAsync(connection).ConfigureAwait(false);
            throw new IOException($"a request to broker {broker} failed: {e.Message}", e);
        }
        catch
        {
            await CloseAsync(connection).ConfigureAwait(false);
            throw;
        }
        finally
        {
            connection.Gate.Release();
        }
    }

    private static async Task CloseAsync(Connection connection)
    {
        if (connection.Channel is { } channel) await channel.DisposeAsync().ConfigureAwait(false);
        connection.Channel = null;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        foreach (var connection in _connections.Values)
            if (connection.Channel is { } channel) await channel.DisposeAsync().ConfigureAwait(false);
        _connections.Clear();
    }
}
