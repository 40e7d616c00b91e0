using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Tributary.Protocol.Messages;
using Tributary.Protocol.Wire;

namespace Tributary.Broker.Tests;

/// <summary>
/// A bare TCP connection to a broker for tests that must send what no real client would: hand-built frames, bad
/// sizes, garbage, or well-formed requests through the generated message types. Every wait is bounded by a timeout.
/// </summary>
public sealed class RawKafkaClient : IAsyncDisposable
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    private readonly Socket _socket;
    private readonly System.Net.Security.SslStream? _tls;
    private int _nextCorrelationId = 1;

    private RawKafkaClient(Socket socket, System.Net.Security.SslStream? tls = null)
    {
        _socket = socket;
        _tls = tls;
    }

    /// <summary>
    /// Connects over TLS, trusting <paramref name="caPath"/> and presenting the client certificate (PEM files) when given,
    /// so requests come from that certificate's principal.
    /// </summary>
    public static async Task<RawKafkaClient> ConnectTlsAsync(string bootstrap, string caPath, (string Certificate, string Key)? client = null)
    {
        var plain = await ConnectAsync(bootstrap);
        var ca = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificateFromFile(caPath);
        var options = new System.Net.Security.SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            CertificateChainPolicy = new System.Security.Cryptography.X509Certificates.X509ChainPolicy
            {
                TrustMode = System.Security.Cryptography.X509Certificates.X509ChainTrustMode.CustomRootTrust,
                RevocationMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck,
                CustomTrustStore = { ca },
            },
        };
        if (client is { } c)
        {
            // Exported and loaded again: SslStream on Linux needs a certificate whose key it can hand to OpenSSL.
            using var pem = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(c.Certificate, c.Key);
            options.ClientCertificates = [System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12(pem.Export(System.Security.Cryptography.X509Certificates.X509ContentType.Pkcs12), null)];
        }
        var tls = new System.Net.Security.SslStream(new NetworkStream(plain._socket, ownsSocket: false));
        using var cts = new CancellationTokenSource(DefaultTimeout);
        await tls.AuthenticateAsClientAsync(options, cts.Token);
        return new RawKafkaClient(plain._socket, tls);
    }

    /// <summary>Connects, from <paramref name="localAddress"/> when given (any 127.x.y.z works on loopback, to test per-address limits).</summary>
    public static async Task<RawKafkaClient> ConnectAsync(string bootstrap, IPAddress? localAddress = null)
    {
        var colon = bootstrap.LastIndexOf(':');
        var endpoint = new IPEndPoint(IPAddress.Parse(bootstrap[..colon]), int.Parse(bootstrap[(colon + 1)..]));
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        if (localAddress is not null) socket.Bind(new IPEndPoint(localAddress, 0));
        using var cts = new CancellationTokenSource(DefaultTimeout);
        await socket.ConnectAsync(endpoint, cts.Token);
        return new RawKafkaClient(socket);
    }

    /// <summary>A complete frame: 4-byte size, then the request header of the version Kafka uses for this API version, then the body.</summary>
    public static byte[] Frame(short apiKey, short version, int correlationId, ReadOnlySpan<byte> body, string? clientId = "raw-test")
    {
        using var writer = new KafkaWriter(body.Length + 64);
        var sizeAt = writer.ReserveInt32();
        new RequestHeader { RequestApiKey = apiKey, RequestApiVersion = version, CorrelationId = correlationId, ClientId = clientId }
            .Write(writer, ApiMessages.RequestHeaderVersion(apiKey, version));
        writer.WriteRaw(body);
        writer.PatchInt32(sizeAt, writer.Position - 4);
        return writer.WrittenSpan.ToArray();
    }

    public static byte[] Body(IKafkaMessage message, short version)
    {
        using var writer = new KafkaWriter();
        message.Write(writer, version);
        return writer.WrittenSpan.ToArray();
    }

    public int NextCorrelationId() => _nextCorrelationId++;

    public async Task SendRawAsync(ReadOnlyMemory<byte> bytes)
    {
        using var cts = new CancellationTokenSource(DefaultTimeout);
        if (_tls is not null)
        {
            await _tls.WriteAsync(bytes, cts.Token);
            await _tls.FlushAsync(cts.Token);
            return;
        }
        while (!bytes.IsEmpty)
        {
            var n = await _socket.SendAsync(bytes, SocketFlags.None, cts.Token);
            bytes = bytes[n..];
        }
    }

    /// <summary>Tells the broker we will send nothing more (a FIN), while still reading what it sends back.</summary>
    public void ShutdownSend() => _socket.Shutdown(SocketShutdown.Send);

    /// <summary>Sends a request and parses the response; fails if the correlation id does not match or the broker closes.</summary>
    public async Task<TResponse> SendAsync<TResponse>(IKafkaRequest request, short version, TimeSpan? timeout = null, string? clientId = "raw-test")
        where TResponse : IKafkaResponse, new()
    {
        var correlationId = NextCorrelationId();
        await SendRawAsync(Frame(request.ApiKey, version, correlationId, Body(request, version), clientId));
        var frame = await ReadFrameAsync(timeout) ?? throw new IOException($"the broker closed the connection instead of answering {(ApiKey)request.ApiKey} v{version}");
        return ParseResponse<TResponse>(frame, request.ApiKey, version, correlationId);
    }

    /// <summary>Parses one response frame (without its size): correlation id, the header's tagged fields if flexible, then the body.</summary>
    public static TResponse ParseResponse<TResponse>(byte[] frame, short apiKey, short version, int expectedCorrelationId)
        where TResponse : IKafkaResponse, new()
    {
        var correlationId = BinaryPrimitives.ReadInt32BigEndian(frame);
        if (correlationId != expectedCorrelationId)
            throw new InvalidDataException($"correlation id {correlationId}, expected {expectedCorrelationId}");
        return ClientFrames.ReadResponse<TResponse>(frame, apiKey, version, out _);
    }

    /// <summary>One response frame without its 4-byte size, or null if the broker closed the connection first.</summary>
    public async Task<byte[]?> ReadFrameAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        var sizeBytes = new byte[4];
        if (!await ReadFullyAsync(sizeBytes, cts.Token)) return null;
        var size = BinaryPrimitives.ReadInt32BigEndian(sizeBytes);
        if (size < 4 || size > 64 * 1024 * 1024) throw new InvalidDataException($"response size {size}");
        var frame = new byte[size];
        return await ReadFullyAsync(frame, cts.Token) ? frame : null;
    }

    private async Task<bool> ReadFullyAsync(Memory<byte> buffer, CancellationToken token)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = _tls is not null ? await _tls.ReadAsync(buffer[read..], token) : await _socket.ReceiveAsync(buffer[read..], SocketFlags.None, token);
            if (n == 0) return false;
            read += n;
        }
        return true;
    }

    /// <summary>
    /// Waits until the broker closes this connection (end of stream or reset), discarding anything it sends first.
    /// Returns the number of bytes received before the close; throws <see cref="OperationCanceledException"/> on timeout.
    /// </summary>
    public async Task<long> WaitForCloseAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        var buffer = new byte[64 * 1024];
        long total = 0;
        while (true)
        {
            int n;
            try
            {
                n = await _socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
            {
                return total;
            }
            if (n == 0) return total;
            total += n;
        }
    }

    public ValueTask DisposeAsync()
    {
        _tls?.Dispose();
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }
}
