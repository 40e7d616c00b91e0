using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Threading.Channels;
using Tributary.Broker.Handlers;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Wire;

namespace Tributary.Broker.Network;

/// <summary>
/// One client connection. A reader loop frames requests (size checked before any allocation), parses them and
/// starts their handlers at once, so pipelined produce requests share group commits; a writer loop sends the
/// responses strictly in request order, as Kafka requires.
///
/// Memory a client can pin is bounded three ways, each by making the reader stop reading (TCP then pushes back on
/// the client, as Kafka's muted channels do): at most queued.max.requests.per.connection requests in flight; at
/// most queued.max.response.bytes.per.connection of response bytes in flight (a fetch reserves its max_bytes when
/// it starts, every response is charged its real size when written, and both are given back once it is sent), so a
/// client that never reads holds one budget, not a response per request; and the broker-wide
/// queued.max.request.bytes. A frame's buffer grows as its bytes arrive, so a size prefix alone pins nothing, and a
/// frame that does not arrive whole within socket.request.receive.timeout.ms closes the connection, as does a
/// connection idle (no byte either way, no handler running) for connections.max.idle.ms: the listener's sweeper
/// checks both through <see cref="CloseIfExpired"/>.
///
/// Anything malformed (a bad size, an unknown API key, a body that does not parse) or a failing handler closes this
/// connection with one log line, and closed means closed: the socket is shut down at once and the peer sees the end
/// of the stream; other connections never notice.
/// </summary>
internal sealed class Connection : IAsyncDisposable
{
    /// <summary>The principal of a connection that has not authenticated (Kafka's KafkaPrincipal.ANONYMOUS).</summary>
    public const string AnonymousPrincipal = "User:ANONYMOUS";

    /// <summary>A frame's first buffer; larger frames double as their bytes arrive.</summary>
    private const int InitialFrameBytes = 1 << 20;

    private readonly Socket _socket;
    private readonly string _listener;
    private readonly TlsSettings? _tls;
    private readonly Security.SaslSession? _sasl;
    private SslStream? _tlsStream;
    private string _principal = AnonymousPrincipal;
    private readonly Security.Authorizer? _authorizer;
    private Security.AuthorizationSession? _authorization;
    private readonly ApiRegistry _registry;
    private readonly Diagnostics.BrokerMetrics? _metrics;
    private readonly BrokerLog _log;
    private readonly int _maxRequestBytes;
    private readonly ConnectionLimits _limits;
    private readonly RequestMemoryPool _requestMemory;
    private readonly TimeProvider _time;
    private readonly EndPoint? _remote;
    private readonly CancellationTokenSource _closing;
    private readonly Channel<PendingResponse> _responses;
    private readonly SemaphoreSlim _responseDrained = new(0, 1);
    private long _lastActivity;
    private long _mutedUntil;
    private readonly Quotas.ClientQuotaManager? _quotas;
    private long _frameStarted;
    private long _responseBytes;
    private int _inFlight;
    private int _sending;
    private int _closed;

    public Connection(Socket socket, string listener, TlsSettings? tls, Security.SaslSettings? sasl, ApiRegistry registry, BrokerLog log, int maxRequestBytes, int maxInFlight, ConnectionLimits limits,
        RequestMemoryPool requestMemory, TimeProvider time, CancellationToken brokerStopping, Diagnostics.BrokerMetrics? metrics = null,
        Security.Authorizer? authorizer = null, Quotas.ClientQuotaManager? quotas = null)
    {
        _quotas = quotas;
        _authorizer = authorizer;
        _listener = listener;
        _tls = tls;
        _sasl = sasl is null ? null : new Security.SaslSession(sasl, time, metrics);
        _metrics = metrics;
        _socket = socket;
        _registry = registry;
        _log = log;
        _maxRequestBytes = maxRequestBytes;
        _limits = limits;
        _requestMemory = requestMemory;
        _time = time;
        _remote = socket.RemoteEndPoint;
        _lastActivity = time.GetTimestamp();
        _closing = CancellationTokenSource.CreateLinkedTokenSource(brokerStopping);
        _responses = Channel.CreateBounded<PendingResponse>(new BoundedChannelOptions(maxInFlight)
        {
            SingleReader = true,
            SingleWriter = true,
        });
    }

    public EndPoint? Remote => _remote;

    /// <summary>Response bytes reserved or being sent on this connection (at most about one budget plus one response).</summary>
    public long QueuedResponseBytes => Interlocked.Read(ref _responseBytes);

    /// <summary>Who the client is: its SASL login, else its certificate's mapped subject on a TLS listener that got one, else anonymous.</summary>
    public string Principal => _principal;

    /// <summary>A SASL login names the client: later requests carry it, and the authorizer's decisions are made for it afresh.</summary>
    private void SetPrincipal(string principal)
    {
        if (principal == _principal) return;
        _principal = principal;
        if (_authorizer is not null) _authorization = new Security.AuthorizationSession(_authorizer, principal, _remote);
    }

    public async Task RunAsync()
    {
        if (_tls is not null && !await HandshakeAsync(_tls).ConfigureAwait(false))
        {
            await DisposeAsync().ConfigureAwait(false);
            return;
        }
        // The principal is known from here on (after the TLS handshake); a SASL login replaces it (SetPrincipal).
        if (_authorizer is not null) _authorization = new Security.AuthorizationSession(_authorizer, _principal, _remote);
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

    /// <summary>
    /// The TLS handshake, before any request is read. It must finish within socket.request.receive.timeout.ms (the
    /// sweeper treats it as a frame in progress), so a client that stalls it holds a socket for that long at most. A
    /// failure (plaintext sent to this listener, an untrusted or missing client certificate) closes the connection.
    /// </summary>
    private async Task<bool> HandshakeAsync(TlsSettings tls)
    {
        var stream = new SslStream(new NetworkStream(_socket, ownsSocket: false), leaveInnerStreamOpen: false);
        Volatile.Write(ref _frameStarted, _time.GetTimestamp());
        string? refusal = null;
        try
        {
            await stream.AuthenticateAsServerAsync(tls.ServerOptions(reason => refusal = reason), _closing.Token).ConfigureAwait(false);
            if (stream.RemoteCertificate is { } certificate)
            {
                using var client = certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
                _principal = "User:" + tls.PrincipalMapper.Map(SslPrincipalMapper.Rfc2253(client.SubjectName));
            }
            _tlsStream = stream;
            Volatile.Write(ref _lastActivity, _time.GetTimestamp());
            return true;
        }
        catch (Exception e) when (e is AuthenticationException or IOException or SocketException or OperationCanceledException or ArgumentException
            or ObjectDisposedException or System.ComponentModel.Win32Exception)
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            if (!_closing.IsCancellationRequested || e is not OperationCanceledException)
                Close($"TLS handshake on listener {_listener} failed: {refusal ?? e.GetBaseException().Message}", LogLevel.Info);
            return false;
        }
        finally
        {
            Volatile.Write(ref _frameStarted, 0);
        }
    }

    private async Task ReadLoopAsync()
    {
        // BufferedStream rents nothing until the first read and lets pipelined small requests share one receive call.
        var stream = new BufferedStream(_tlsStream as Stream ?? new NetworkStream(_socket, ownsSocket: false), 16 * 1024);
        var sizeBuffer = new byte[4];
        var token = _closing.Token;
        try
        {
            while (!token.IsCancellationRequested)
            {
                await WaitWhileMutedAsync(token).ConfigureAwait(false);
                if (!await ReadSizeAsync(stream, sizeBuffer, token).ConfigureAwait(false)) return;
                var size = BinaryPrimitives.ReadInt32BigEndian(sizeBuffer);
                if (size < 8 || size > _maxRequestBytes)
                {
                    Close($"request size {size} is outside 8..{_maxRequestBytes} (socket.request.max.bytes)");
                    return;
                }
                await _requestMemory.TakeAsync(size, token).ConfigureAwait(false);
                byte[]? frame = null;
                try
                {
                    frame = await ReadFrameAsync(stream, size, token).ConfigureAwait(false);
                }
                finally
                {
                    if (frame is null) _requestMemory.Give(size);
                }
                if (frame is null)
                {
                    if (!token.IsCancellationRequested) Close($"frame truncated (expected {size} bytes)");
                    return;
                }
                // Again: this read may have begun before the previous response muted the connection.
                await WaitWhileMutedAsync(token).ConfigureAwait(false);
                if (!await DispatchAsync(frame, size, token).ConfigureAwait(false)) return;
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

    /// <summary>A throttled client's connection is not read until its throttle time has passed (KIP-219).</summary>
    private async ValueTask WaitWhileMutedAsync(CancellationToken token)
    {
        while (true)
        {
            var until = Volatile.Read(ref _mutedUntil);
            if (until == 0) return;
            var left = _time.GetElapsedTime(_time.GetTimestamp(), until);
            if (left <= TimeSpan.Zero) return;
            await Task.Delay(left, _time, token).ConfigureAwait(false);
            Volatile.Write(ref _lastActivity, _time.GetTimestamp());
        }
    }

    /// <summary>Keeps the connection unread for <paramref name="throttleMs"/> from now (the later of two mutes wins).</summary>
    private void Mute(int throttleMs)
    {
        if (throttleMs <= 0) return;
        var until = _time.GetTimestamp() + (long)(throttleMs * (double)_time.TimestampFrequency / 1000);
        long current;
        do current = Volatile.Read(ref _mutedUntil);
        while (until > current && Interlocked.CompareExchange(ref _mutedUntil, until, current) != current);
    }

    private async ValueTask<bool> ReadSizeAsync(Stream stream, Memory<byte> buffer, CancellationToken token)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer[read..], token).ConfigureAwait(false);
            if (n == 0) return false;
            read += n;
            Volatile.Write(ref _lastActivity, _time.GetTimestamp());
        }
        return true;
    }

    /// <summary>The whole frame in a pooled buffer that grows as bytes arrive, or null at end of stream (the buffer then returned).</summary>
    private async ValueTask<byte[]?> ReadFrameAsync(Stream stream, int size, CancellationToken token)
    {
        var frame = ArrayPool<byte>.Shared.Rent(Math.Min(size, InitialFrameBytes));
        var read = 0;
        Volatile.Write(ref _frameStarted, _time.GetTimestamp());
        try
        {
            while (read < size)
            {
                if (read == frame.Length)
                {
                    var larger = ArrayPool<byte>.Shared.Rent((int)Math.Min(2L * frame.Length, size));
                    frame.AsSpan(0, read).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(frame);
                    frame = larger;
                }
                var n = await stream.ReadAsync(frame.AsMemory(read, Math.Min(frame.Length, size) - read), token).ConfigureAwait(false);
                if (n == 0)
                {
                    ArrayPool<byte>.Shared.Return(frame);
                    return null;
                }
                read += n;
                Volatile.Write(ref _lastActivity, _time.GetTimestamp());
            }
            return frame;
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(frame);
            throw;
        }
        finally
        {
            Volatile.Write(ref _frameStarted, 0);
        }
    }

    /// <summary>Parses one frame, waits for response budget, starts its handler and queues it; false closes the connection.</summary>
    private async ValueTask<bool> DispatchAsync(byte[] frame, int size, CancellationToken token)
    {
        if (_sasl is { ExpectsRawTokens: true } rawSasl) return await AuthenticateRawAsync(rawSasl, frame, size, token).ConfigureAwait(false);
        if (_sasl is not null && SaslGate(_sasl, BinaryPrimitives.ReadInt16BigEndian(frame)) is { } refusal)
        {
            ReturnFrame(frame, size);
            Close(refusal, LogLevel.Info);
            return false;
        }
        if (Parse(frame, size) is not { } parsed)
        {
            ReturnFrame(frame, size);
            return false;
        }
        if (_sasl is not null && parsed.ApiKey is (short)ApiKey.SaslHandshake or (short)ApiKey.SaslAuthenticate && parsed.Immediate is null)
        {
            // Authentication steps run one at a time, before the next frame is read: each may change who the client is.
            IKafkaResponse? answer;
            try
            {
                answer = await parsed.Handler.HandleAsync(parsed.Context, parsed.Request!).ConfigureAwait(false);
            }
            catch
            {
                ReturnFrame(frame, size);
                throw;
            }
            if (_sasl.Principal is { } principal) SetPrincipal(principal);
            if (_sasl.Failed) await DelayFailedAuthenticationAsync(_sasl, token).ConfigureAwait(false);
            parsed = parsed with { Immediate = answer };
        }
        var reserved = 0L;
        PendingResponse pending;
        try
        {
            if (parsed.Request is FetchRequest fetch)
            {
                reserved = Math.Min(fetch.MaxBytes <= 0 ? int.MaxValue : fetch.MaxBytes, _limits.ResponseBudgetBytes);
                await ReserveResponseBytesAsync(reserved, token).ConfigureAwait(false);
            }
            ValueTask<IKafkaResponse?> response;
            try
            {
                var measured = _quotas is { MeasuresRequestTime: true } ? Stopwatch.GetTimestamp() : 0;
                response = parsed.Immediate is { } immediate
                    ? new ValueTask<IKafkaResponse?>(immediate)
                    : parsed.Handler.HandleAsync(parsed.Context, parsed.Request!);
                // request_percentage counts the handler's own work (up to its first wait), not the time it waits for data.
                if (measured != 0 && _quotas!.RecordRequestTime(_principal, parsed.Context.ClientId, Stopwatch.GetElapsedTime(measured)) is > 0 and var throttle)
                    parsed.Context.ThrottleMs = Math.Max(parsed.Context.ThrottleMs, throttle);
            }
            catch (Exception e)
            {
                response = ValueTask.FromException<IKafkaResponse?>(e);
            }
            pending = new PendingResponse(parsed.Context, response, frame, size, parsed.ApiKey, parsed.Version, reserved, Stopwatch.GetTimestamp());
        }
        catch
        {
            ReturnFrame(frame, size);
            GiveResponseBytes(reserved);
            throw;
        }
        Interlocked.Increment(ref _inFlight);
        try
        {
            // The bounded channel is the count backpressure: when it is full the reader waits here, so it stops reading.
            await _responses.Writer.WriteAsync(pending, token).ConfigureAwait(false);
        }
        catch
        {
            // The handler may still read the frame, so only its accounting is given back; the array goes to the GC.
            Interlocked.Decrement(ref _inFlight);
            _requestMemory.Give(size);
            GiveResponseBytes(reserved);
            throw;
        }
        // A failed authentication is answered, then the connection closes (the writer drains what is queued first).
        if (_sasl is { Failed: true } failed)
        {
            _log.Info($"closing connection from {_remote} on listener {_listener}: {failed.Failure}");
            return false;
        }
        return true;
    }

    /// <summary>
    /// Why a request may not be served on this SASL connection now, or null: before authentication only ApiVersions and
    /// the SASL requests are; after the session expired (KIP-368) only a re-authentication is.
    /// </summary>
    private static string? SaslGate(Security.SaslSession sasl, short apiKey)
    {
        if (apiKey is (short)ApiKey.ApiVersions or (short)ApiKey.SaslHandshake or (short)ApiKey.SaslAuthenticate) return null;
        if (!sasl.Authenticated) return $"{(ApiKey)apiKey} request before SASL authentication";
        if (sasl.Expired) return $"{(ApiKey)apiKey} request after the SASL session expired (connections.max.reauth.ms); the client did not re-authenticate";
        return null;
    }

    /// <summary>A failed login is answered only after connection.failed.authentication.delay.ms, as Kafka delays it, to slow guessing.</summary>
    private async Task DelayFailedAuthenticationAsync(Security.SaslSession sasl, CancellationToken token)
    {
        if (sasl.Settings.FailedAuthenticationDelay > TimeSpan.Zero)
            await Task.Delay(sasl.Settings.FailedAuthenticationDelay, _time, token).ConfigureAwait(false);
    }

    /// <summary>
    /// After a SaslHandshake v0 the client sends its tokens as bare size-prefixed frames and gets bare frames back (Kafka
    /// before SaslAuthenticate existed); a failure closes the connection without an answer, as Kafka does.
    /// </summary>
    private async ValueTask<bool> AuthenticateRawAsync(Security.SaslSession sasl, byte[] frame, int size, CancellationToken token)
    {
        var (error, _, reply, _) = sasl.Authenticate(frame.AsSpan(0, size));
        if (sasl.Principal is { } principal) SetPrincipal(principal);
        if (error != ErrorCode.None)
        {
            ReturnFrame(frame, size);
            await DelayFailedAuthenticationAsync(sasl, token).ConfigureAwait(false);
            Close(sasl.Failure ?? "authentication failed", LogLevel.Info);
            return false;
        }
        var context = new RequestContext(0, 0, null, _remote, _closing.Token) { Listener = _listener, Principal = _principal };
        var pending = new PendingResponse(context, new ValueTask<IKafkaResponse?>((IKafkaResponse?)null), frame, size, -1, 0, 0, Stopwatch.GetTimestamp())
        {
            RawReply = reply,
        };
        Interlocked.Increment(ref _inFlight);
        try
        {
            await _responses.Writer.WriteAsync(pending, token).ConfigureAwait(false);
        }
        catch
        {
            Interlocked.Decrement(ref _inFlight);
            _requestMemory.Give(size);
            throw;
        }
        return true;
    }

    /// <summary>Waits until this connection's response bytes leave room for <paramref name="bytes"/> more; one request always proceeds alone.</summary>
    private async ValueTask ReserveResponseBytesAsync(long bytes, CancellationToken token)
    {
        while (true)
        {
            var held = Interlocked.Read(ref _responseBytes);
            if (held == 0 || held + bytes <= _limits.ResponseBudgetBytes) break;
            await _responseDrained.WaitAsync(token).ConfigureAwait(false);
        }
        Interlocked.Add(ref _responseBytes, bytes);
    }

    private void GiveResponseBytes(long bytes)
    {
        if (bytes == 0) return;
        Interlocked.Add(ref _responseBytes, -bytes);
        if (_responseDrained.CurrentCount == 0)
        {
            try
            {
                _responseDrained.Release();
            }
            catch (SemaphoreFullException)
            {
                // Another release won the race; the reader re-checks the budget either way.
            }
        }
    }

    /// <summary>Parses one frame; null closes the connection (the frame is then the caller's to return).</summary>
    private ParsedRequest? Parse(byte[] frame, int size)
    {
        var memory = frame.AsMemory(0, size);
        var apiKey = BinaryPrimitives.ReadInt16BigEndian(frame);
        var version = BinaryPrimitives.ReadInt16BigEndian(frame.AsSpan(2));
        var correlationId = BinaryPrimitives.ReadInt32BigEndian(frame.AsSpan(4));
        var handler = _registry.Get(apiKey);
        if (handler is null)
        {
            Close($"unsupported API key {apiKey} (correlation id {correlationId})");
            return null;
        }
        if (!handler.Supports(version))
        {
            if (handler is ApiVersionsHandler apiVersions)
            {
                // KIP-511: a client newer than us learns our versions from a v0-shaped error response.
                var context = new RequestContext(0, correlationId, null, _remote, _closing.Token) { Listener = _listener, Principal = _principal, Sasl = _sasl, Authorization = _authorization };
                return new ParsedRequest(handler, null, context, apiKey, 0, apiVersions.UnsupportedVersionResponse());
            }
            Close($"{(ApiKey)apiKey} v{version} is not supported (we serve v{handler.MinVersion}-{handler.MaxVersion})");
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
            Close($"malformed {(ApiKey)apiKey} v{version} request: {e.Message}");
            return null;
        }
        return new ParsedRequest(handler, request, new RequestContext(version, correlationId, clientId, _remote, _closing.Token) { Listener = _listener, Principal = _principal, Sasl = _sasl, Authorization = _authorization }, apiKey, version, null);
    }

    private async Task WriteLoopAsync()
    {
        using var writer = new KafkaWriter(64 * 1024) { ReferenceLargeRecords = true };
        var segments = new List<ArraySegment<byte>>();
        var failed = false;
        await foreach (var pending in _responses.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            var charged = pending.Reserved;
            try
            {
                // Awaited even after a failure: the handler may still be reading the frame, which goes back to the pool below.
                IKafkaResponse? response = null;
                if (pending.RawReply is { } raw)
                {
                    Volatile.Write(ref _sending, 1);
                    var rawFrame = new byte[4 + raw.Length];
                    BinaryPrimitives.WriteInt32BigEndian(rawFrame, raw.Length);
                    raw.CopyTo(rawFrame, 4);
                    if (_tlsStream is { } secured) await secured.WriteAsync(rawFrame, _closing.Token).ConfigureAwait(false);
                    else await _socket.SendAsync(rawFrame, SocketFlags.None, _closing.Token).ConfigureAwait(false);
                    continue;
                }
                try
                {
                    response = await pending.Response.ConfigureAwait(false);
                    _metrics?.Request(pending.ApiKey, pending.Arrived);
                    // Over a quota: the answer still goes out (acks=0 gets none), then nothing is read for the throttle time.
                    Mute(pending.Context.ThrottleMs);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    _metrics?.HandlerFailed(pending.ApiKey);
                    if (!failed) Close($"{(ApiKey)pending.ApiKey} v{pending.Version} failed: {e}", LogLevel.Error);
                    failed = true;
                }
                catch (OperationCanceledException)
                {
                    failed = true;
                }
                if (response is null || failed) continue;
                writer.Reset();
                var sizeAt = writer.ReserveInt32();
                writer.WriteInt32(pending.Context.CorrelationId);
                if (ApiMessages.ResponseHeaderVersion(pending.ApiKey, pending.Version) >= 1) writer.WriteUnsignedVarInt(0);
                response.Write(writer, pending.Version);
                writer.PatchInt32(sizeAt, writer.TotalLength - 4);
                // Charge the real size while it is being sent, so a response larger than its reservation still counts.
                if (writer.TotalLength > charged)
                {
                    Interlocked.Add(ref _responseBytes, writer.TotalLength - charged);
                    charged = writer.TotalLength;
                }
                Volatile.Write(ref _sending, 1);
                if (_tlsStream is { } tls)
                {
                    // TLS encrypts into its own records, so the gathered send buys nothing here: one write per part.
                    if (writer.HasExternalSegments)
                    {
                        writer.GetSegments(segments);
                        foreach (var segment in segments) await tls.WriteAsync(segment, _closing.Token).ConfigureAwait(false);
                    }
                    else
                    {
                        await tls.WriteAsync(writer.WrittenMemory, _closing.Token).ConfigureAwait(false);
                    }
                }
                else if (writer.HasExternalSegments)
                {
                    writer.GetSegments(segments);
                    await SendAllAsync(segments).ConfigureAwait(false);
                }
                else
                {
                    await _socket.SendAsync(writer.WrittenMemory, SocketFlags.None, _closing.Token).ConfigureAwait(false);
                }
                Volatile.Write(ref _lastActivity, _time.GetTimestamp());
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException or IOException)
            {
                failed = true;
                CloseSocket();
            }
            finally
            {
                Volatile.Write(ref _sending, 0);
                pending.Context.ReleaseResources();
                ReturnFrame(pending.Frame, pending.Size);
                Interlocked.Decrement(ref _inFlight);
                GiveResponseBytes(charged);
                // An idle connection keeps no response buffer: a thousand idle clients cost a thousand sockets, not 64 MB.
                if (_responses.Reader.Count == 0) writer.Release();
            }
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

    private void ReturnFrame(byte[] frame, int size)
    {
        ArrayPool<byte>.Shared.Return(frame);
        _requestMemory.Give(size);
    }

    /// <summary>
    /// Closes the connection if its frame in progress is overdue or it has been idle too long; the listener's sweeper
    /// calls this. A connection waiting for a handler (a long poll, a rebalance) is not idle; one whose send is stuck
    /// because the client does not read is.
    /// </summary>
    public bool CloseIfExpired(long now)
    {
        var frameStarted = Volatile.Read(ref _frameStarted);
        if (frameStarted != 0 && _time.GetElapsedTime(frameStarted, now).TotalMilliseconds > _limits.RequestReceiveTimeoutMs)
            return Close($"a request frame did not arrive whole within {_limits.RequestReceiveTimeoutMs} ms (socket.request.receive.timeout.ms)", LogLevel.Info);
        var idle = _time.GetElapsedTime(Volatile.Read(ref _lastActivity), now).TotalMilliseconds;
        if (idle > _limits.IdleMs && (Volatile.Read(ref _inFlight) == 0 || Volatile.Read(ref _sending) == 1))
            return Close($"idle for more than {_limits.IdleMs} ms (connections.max.idle.ms)", LogLevel.Debug);
        return false;
    }

    /// <summary>Logs why, once, and shuts the socket down so the peer sees the end of the stream now, not at dispose.</summary>
    private bool Close(string reason, LogLevel level = LogLevel.Warn)
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0) return false;
        _log.Write(level, $"closing connection from {_remote}: {reason}");
        CloseSocket();
        return true;
    }

    private void CloseSocket()
    {
        try
        {
            if (!_closing.IsCancellationRequested) _closing.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
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
        Interlocked.Exchange(ref _closed, 1);
        CloseSocket();
        _tlsStream?.Dispose();
        _socket.Dispose();
        _closing.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>A request to hand to its handler, or (Immediate set) one already answered without it.</summary>
    private readonly record struct ParsedRequest(ApiHandler Handler, IKafkaRequest? Request, RequestContext Context, short ApiKey, short Version,
        IKafkaResponse? Immediate);

    private readonly record struct PendingResponse(RequestContext Context, ValueTask<IKafkaResponse?> Response, byte[] Frame, int Size, short ApiKey,
        short Version, long Reserved, long Arrived)
    {
        /// <summary>A bare SASL token to send as is (size-prefixed, no response header): the v0 handshake's exchange.</summary>
        public byte[]? RawReply { get; init; }
    }
}
