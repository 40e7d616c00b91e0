using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Tributary.Broker.Handlers;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Wire;

namespace Tributary.Broker.Network;

/// <summary>
/// One client connection. A reader loop frames requests (size checked before any allocation), parses them and
/// starts their handlers at once, so pipelined produce requests share group commits; a writer loop sends the
/// responses strictly in request order, as Kafka requires. The number of requests in flight is bounded, which
/// pushes back on a client that sends faster than it reads.
///
/// Anything malformed (a bad size, an unknown API key, a body that does not parse) closes this connection with one
/// log line; other connections never notice.
/// </summary>
public sealed class Connection : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly ApiRegistry _registry;
    private readonly BrokerLog _log;
    private readonly int _maxRequestBytes;
    private readonly EndPoint? _remote;
    private readonly CancellationTokenSource _closing;
    private readonly Channel<PendingResponse> _responses;

    public Connection(Socket socket, ApiRegistry registry, BrokerLog log, int maxRequestBytes, int maxInFlight, CancellationToken brokerStopping)
    {
        _socket = socket;
        _registry = registry;
        _log = log;
        _maxRequestBytes = maxRequestBytes;
        _remote = socket.RemoteEndPoint;
        _closing = CancellationTokenSource.CreateLinkedTokenSource(brokerStopping);
        _responses = Channel.CreateBounded<PendingResponse>(new BoundedChannelOptions(maxInFlight)
        {
            SingleReader = true,
            SingleWriter = true,
        });
    }

    public EndPoint? Remote => _remote;

    public async Task RunAsync()
    {
        var writer = WriteLoopAsync();
        try
        {
            await ReadLoopAsync().ConfigureAwait(false);
        }
        finally
        {
            _responses.Writer.TryComplete();
            await writer.ConfigureAwait(false);
            await DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task ReadLoopAsync()
    {
        // BufferedStream rents nothing until the first read and lets pipelined small requests share one receive call.
        var stream = new BufferedStream(new NetworkStream(_socket, ownsSocket: false), 16 * 1024);
        var sizeBuffer = new byte[4];
        var token = _closing.Token;
        try
        {
            while (!token.IsCancellationRequested)
            {
                if (!await ReadFullyAsync(stream, sizeBuffer, token).ConfigureAwait(false)) return;
                var size = BinaryPrimitives.ReadInt32BigEndian(sizeBuffer);
                if (size < 8 || size > _maxRequestBytes)
                {
                    _log.Warn($"closing connection from {_remote}: request size {size} is outside 8..{_maxRequestBytes} (socket.request.max.bytes)");
                    return;
                }
                var frame = ArrayPool<byte>.Shared.Rent(size);
                if (!await ReadFullyAsync(stream, frame.AsMemory(0, size), token).ConfigureAwait(false))
                {
                    ArrayPool<byte>.Shared.Return(frame);
                    if (!token.IsCancellationRequested) _log.Warn($"closing connection from {_remote}: frame truncated (expected {size} bytes)");
                    return;
                }
                if (Dispatch(frame, size) is not { } pending)
                {
                    ArrayPool<byte>.Shared.Return(frame);
                    return;
                }
                // The bounded channel is the backpressure: when it is full the reader waits here, so it stops reading.
                await _responses.Writer.WriteAsync(pending, token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            _log.Debug($"connection from {_remote} closed: {e.Message}");
        }
    }

    private static async ValueTask<bool> ReadFullyAsync(Stream stream, Memory<byte> buffer, CancellationToken token)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer[read..], token).ConfigureAwait(false);
            if (n == 0) return false;
            read += n;
        }
        return true;
    }

    /// <summary>Parses one frame and starts its handler; null closes the connection (the frame is then the caller's to return).</summary>
    private PendingResponse? Dispatch(byte[] frame, int size)
    {
        var memory = frame.AsMemory(0, size);
        var apiKey = BinaryPrimitives.ReadInt16BigEndian(frame);
        var version = BinaryPrimitives.ReadInt16BigEndian(frame.AsSpan(2));
        var correlationId = BinaryPrimitives.ReadInt32BigEndian(frame.AsSpan(4));
        var handler = _registry.Get(apiKey);
        if (handler is null)
        {
            _log.Warn($"closing connection from {_remote}: unsupported API key {apiKey} (correlation id {correlationId})");
            return null;
        }
        if (!handler.Supports(version))
        {
            if (handler is ApiVersionsHandler apiVersions)
            {
                // KIP-511: a client newer than us learns our versions from a v0-shaped error response.
                var context = new RequestContext(0, correlationId, null, _remote, _closing.Token);
                return new PendingResponse(context, new ValueTask<IKafkaResponse?>(apiVersions.UnsupportedVersionResponse()), frame, apiKey, 0);
            }
            _log.Warn($"closing connection from {_remote}: {(ApiKey)apiKey} v{version} is not supported (we serve v{handler.MinVersion}-{handler.MaxVersion})");
            return null;
        }
        IKafkaRequest request;
        string? clientId;
        try
        {
            var reader = new KafkaReader(memory);
            reader.Skip(8);
            var headerVersion = ApiMessages.RequestHeaderVersion(apiKey, version);
            clientId = headerVersion >= 1 ? reader.ReadNullableString(compact: false) : null;
            if (headerVersion >= 2)
            {
                var tags = reader.ReadUnsignedVarInt();
                for (var i = 0u; i < tags; i++)
                {
                    reader.ReadUnsignedVarInt();
                    reader.SkipTaggedField();
                }
            }
            request = handler.Parse(ref reader, version);
        }
        catch (Exception e) when (e is ProtocolException or ArgumentException or OverflowException or FormatException)
        {
            // Only input can make parsing fail, whatever the exception: close this connection, never the broker.
            _log.Warn($"closing connection from {_remote}: malformed {(ApiKey)apiKey} v{version} request: {e.Message}");
            return null;
        }
        var ctx = new RequestContext(version, correlationId, clientId, _remote, _closing.Token);
        ValueTask<IKafkaResponse?> pending;
        try
        {
            pending = handler.HandleAsync(ctx, request);
        }
        catch (Exception e)
        {
            pending = ValueTask.FromException<IKafkaResponse?>(e);
        }
        return new PendingResponse(ctx, pending, frame, apiKey, version);
    }

    private async Task WriteLoopAsync()
    {
        using var writer = new KafkaWriter(64 * 1024) { ReferenceLargeRecords = true };
        var segments = new List<ArraySegment<byte>>();
        var failed = false;
        await foreach (var pending in _responses.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            try
            {
                IKafkaResponse? response;
                try
                {
                    response = await pending.Response.ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    _log.Error($"closing connection from {_remote}: {(ApiKey)pending.ApiKey} v{pending.Version} failed: {e}");
                    failed = true;
                    response = null;
                }
                catch (OperationCanceledException)
                {
                    failed = true;
                    response = null;
                }
                if (response is null || failed) continue;
                writer.Reset();
                var sizeAt = writer.ReserveInt32();
                writer.WriteInt32(pending.Context.CorrelationId);
                if (ApiMessages.ResponseHeaderVersion(pending.ApiKey, pending.Version) >= 1) writer.WriteUnsignedVarInt(0);
                response.Write(writer, pending.Version);
                writer.PatchInt32(sizeAt, writer.TotalLength - 4);
                if (writer.HasExternalSegments)
                {
                    writer.GetSegments(segments);
                    await SendAllAsync(segments).ConfigureAwait(false);
                }
                else
                {
                    await _socket.SendAsync(writer.WrittenMemory, SocketFlags.None, _closing.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
            {
                failed = true;
            }
            finally
            {
                pending.Context.ReleaseResources();
                ArrayPool<byte>.Shared.Return(pending.Frame);
                // An idle connection keeps no response buffer: a thousand idle clients cost a thousand sockets, not 64 MB.
                if (_responses.Reader.Count == 0) writer.Release();
            }
            if (failed) CloseSocket();
        }
    }

    /// <summary>One gathered send (sendmsg with an iovec); continues after a partial send until every byte is out.</summary>
    private async Task SendAllAsync(List<ArraySegment<byte>> segments)
    {
        var sent = await _socket.SendAsync(segments, SocketFlags.None).ConfigureAwait(false);
        var total = 0;
        foreach (var segment in segments) total += segment.Count;
        if (sent == total) return;
        foreach (var segment in segments)
        {
            if (sent >= segment.Count)
            {
                sent -= segment.Count;
                continue;
            }
            await _socket.SendAsync(segment.AsMemory(sent), SocketFlags.None, _closing.Token).ConfigureAwait(false);
            sent = 0;
        }
    }

    private void CloseSocket()
    {
        if (!_closing.IsCancellationRequested) _closing.Cancel();
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    public ValueTask DisposeAsync()
    {
        CloseSocket();
        _socket.Dispose();
        _closing.Dispose();
        return ValueTask.CompletedTask;
    }

    private readonly record struct PendingResponse(RequestContext Context, ValueTask<IKafkaResponse?> Response, byte[] Frame, short ApiKey, short Version);
}
