using System.Buffers.Binary;
using System.Net.Sockets;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Wire;

namespace Tributary.Broker.Replication;

/// <summary>
/// One connection from this broker to another, speaking the Kafka protocol as a client: one request at a time, the
/// response read into its message. The replica fetcher uses it; a failure closes it and the caller reconnects.
/// </summary>
internal sealed class BrokerChannel : IAsyncDisposable
{
    /// <summary>Responses larger than this end the connection (a follower asks for far less).</summary>
    private const int MaxResponseBytes = 256 * 1024 * 1024;

    private readonly Socket _socket;
    private readonly Stream _stream;
    private readonly string _clientId;
    private readonly KafkaWriter _writer = new(64 * 1024);
    private readonly List<ArraySegment<byte>> _segments = [];
    private int _correlationId;

    private BrokerChannel(Socket socket, Stream stream, string clientId)
    {
        _socket = socket;
        _stream = stream;
        _clientId = clientId;
    }

    /// <param name="security">The inter-broker listener's TLS and SASL: the channel speaks TLS and logs in first when it says so.</param>
    public static async Task<BrokerChannel> ConnectAsync(string host, int port, string clientId, Network.InterBrokerSecurity? security, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Stream? stream = null;
        try
        {
            await socket.ConnectAsync(host, port, cancellationToken).ConfigureAwait(false);
            stream = new NetworkStream(socket, ownsSocket: false);
            if (security?.Tls is { } tls)
            {
                var secured = new System.Net.Security.SslStream(stream, leaveInnerStreamOpen: false);
                stream = secured;
                await secured.AuthenticateAsClientAsync(tls.ClientOptions(host), cancellationToken).ConfigureAwait(false);
            }
            var channel = new BrokerChannel(socket, stream, clientId);
            if (security?.Mechanism is not null)
            {
                try
                {
                    await security.AuthenticateAsync(channel, cancellationToken).ConfigureAwait(false);
                }
                catch
                {
                    await channel.DisposeAsync().ConfigureAwait(false);
                    throw;
                }
            }
            return channel;
        }
        catch
        {
            if (stream is not null) await stream.DisposeAsync().ConfigureAwait(false);
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Sends a request and reads its response into a buffer of its own.</summary>
    public async Task<TResponse> SendAsync<TResponse>(IKafkaRequest request, short version, CancellationToken cancellationToken)
        where TResponse : IKafkaResponse, new()
    {
        var (response, _) = await ExchangeAsync<TResponse>(request, version, pooled: false, cancellationToken).ConfigureAwait(false);
        return response;
    }

    /// <summary>
    /// Sends a request and reads its response into a pooled buffer: the message's byte fields (a fetch's records) point
    /// into it, so they are valid until the result is disposed. The replica fetcher appends from it and then returns it,
    /// so replication allocates no buffer per fetch.
    /// </summary>
    public async Task<Leased<TResponse>> SendPooledAsync<TResponse>(IKafkaRequest request, short version, CancellationToken cancellationToken)
        where TResponse : IKafkaResponse, new()
    {
        var (response, buffer) = await ExchangeAsync<TResponse>(request, version, pooled: true, cancellationToken).ConfigureAwait(false);
        return new Leased<TResponse>(response, buffer);
    }

    private async Task<(TResponse Response, byte[] Buffer)> ExchangeAsync<TResponse>(IKafkaRequest request, short version, bool pooled, CancellationToken cancellationToken)
        where TResponse : IKafkaResponse, new()
    {
        var correlationId = ++_correlationId;
        _writer.Reset();
        ClientFrames.WriteRequest(_writer, request, version, correlationId, _clientId);
        _writer.GetSegments(_segments);
        foreach (var segment in _segments) await _stream.WriteAsync(segment, cancellationToken).ConfigureAwait(false);
        var sizeBytes = new byte[4];
        await _stream.ReadExactlyAsync(sizeBytes, cancellationToken).ConfigureAwait(false);
        var size = BinaryPrimitives.ReadInt32BigEndian(sizeBytes);
        if (size < 4 || size > MaxResponseBytes) throw new IOException($"a response of {size} bytes from {_socket.RemoteEndPoint}");
        var frame = pooled ? System.Buffers.ArrayPool<byte>.Shared.Rent(size) : new byte[size];
        try
        {
            await _stream.ReadExactlyAsync(frame.AsMemory(0, size), cancellationToken).ConfigureAwait(false);
            var response = ClientFrames.ReadResponse<TResponse>(frame.AsMemory(0, size), request.ApiKey, version, out var answered);
            if (answered != correlationId) throw new IOException($"response {answered} to request {correlationId} from {_socket.RemoteEndPoint}");
            return (response, frame);
        }
        catch
        {
            if (pooled) System.Buffers.ArrayPool<byte>.Shared.Return(frame);
            throw;
        }
    }

    /// <summary>A response whose byte fields live in a pooled buffer, returned on dispose.</summary>
    public sealed class Leased<T>(T message, byte[] buffer) : IDisposable
    {
        private byte[]? _buffer = buffer;

        public T Message { get; } = message;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _buffer, null) is { } b) System.Buffers.ArrayPool<byte>.Shared.Return(b);
        }
    }

    public ValueTask DisposeAsync()
    {
        _stream.Dispose();
        _socket.Dispose();
        _writer.Dispose();
        return ValueTask.CompletedTask;
    }
}
