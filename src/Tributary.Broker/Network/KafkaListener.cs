using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Tributary.Broker.Handlers;

namespace Tributary.Broker.Network;

/// <summary>
/// Accepts client connections and runs each on its own pair of loops until it or the broker closes.
///
/// Connection limits follow Kafka's acceptor: at max.connections the accept loop waits for a connection to close
/// before accepting again (new clients wait in the listen backlog); a connection over its address's
/// max.connections.per.ip is closed right after accept. A failed accept (out of descriptors: EMFILE/ENFILE, or any
/// other error) never ends the loop: it backs off exponentially from 10 ms to 1 s, so a descriptor shortage neither
/// spins a core nor floods the log (repeated lines are rate-limited), and accepting resumes by itself once
/// descriptors free up. A sweeper closes idle connections and stalled request frames (see <see cref="Connection"/>).
/// </summary>
internal sealed class KafkaListener : IAsyncDisposable
{
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan LogInterval = TimeSpan.FromSeconds(10);

    private readonly Socket _socket;
    private readonly ApiRegistry _registry;
    private readonly BrokerSettings _settings;
    private readonly ConnectionLimits _limits;
    private readonly BrokerLog _log;
    private readonly TimeProvider _time;
    private readonly RequestMemoryPool _requestMemory;
    private readonly RateLimitedLog _acceptFailures;
    private readonly RateLimitedLog _rejections;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<Connection, Task> _connections = new();
    private readonly Diagnostics.BrokerMetrics? _metrics;
    private readonly ConnectionAdmission _admission;
    private readonly SemaphoreSlim? _slots;
    private readonly ITimer _sweeper;
    private Task? _acceptLoop;

    private readonly TlsSettings? _tls;
    private readonly Security.SaslSettings? _sasl;
    private readonly Security.Authorizer? _authorizer;
    private readonly Quotas.ClientQuotaManager? _quotas;

    /// <param name="name">The listener's name (from <c>listeners</c>); requests carry it so responses name this listener's endpoints.</param>
    /// <param name="tls">The TLS settings of an SSL listener; null for plaintext.</param>
    /// <param name="sasl">The SASL settings of a SASL_PLAINTEXT or SASL_SSL listener; null otherwise.</param>
    /// <param name="admission">The broker-wide connection limits and request memory, shared by all its listeners; null: this listener's own.</param>
    public KafkaListener(string name, IPEndPoint endpoint, TlsSettings? tls, Security.SaslSettings? sasl, ApiRegistry registry, BrokerSettings settings, BrokerLog log, TimeProvider? time = null,
        Diagnostics.BrokerMetrics? metrics = null, ConnectionAdmission? admission = null, Security.Authorizer? authorizer = null,
        Quotas.ClientQuotaManager? quotas = null)
    {
        _quotas = quotas;
        Name = name;
        _authorizer = authorizer;
        _tls = tls;
        _sasl = sasl;
        _metrics = metrics;
        _registry = registry;
        _settings = settings;
        _limits = settings.Connections;
        _log = log;
        _time = time ?? TimeProvider.System;
        _admission = admission ?? new ConnectionAdmission(settings.Connections);
        _requestMemory = _admission.RequestMemory;
        _acceptFailures = new RateLimitedLog(log, LogLevel.Warn, 5, LogInterval, _time);
        _rejections = new RateLimitedLog(log, LogLevel.Info, 5, LogInterval, _time);
        _slots = _admission.Slots;
        _socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            // No ReuseAddress: on Linux .NET maps it to SO_REUSEPORT as well, which would let a second broker bind the
            // same port and steal half the connections. (.NET already sets SO_REUSEADDR, so restarts bind at once.)
            _socket.Bind(endpoint);
            _socket.Listen(1024);
        }
        catch
        {
            _socket.Dispose();
            throw;
        }
        LocalEndPoint = (IPEndPoint)_socket.LocalEndPoint!;
        // A quarter of the shorter timeout between sweeps: a connection is closed at most 25% late.
        var sweep = TimeSpan.FromMilliseconds(Math.Clamp(Math.Min(_limits.IdleMs, _limits.RequestReceiveTimeoutMs) / 4, 10, 1000));
        _sweeper = _time.CreateTimer(_ => Sweep(), null, sweep, sweep);
    }

    public IPEndPoint LocalEndPoint { get; }

    public string Name { get; }

    public int ConnectionCount => _connections.Count;

    /// <summary>Response bytes reserved or being sent, over all connections.</summary>
    public long QueuedResponseBytes => _connections.Keys.Sum(c => c.QueuedResponseBytes);

    /// <summary>Request bytes held broker-wide (counted only when queued.max.request.bytes bounds them).</summary>
    public long QueuedRequestBytes => _requestMemory.Used;

    public void Start() => _acceptLoop = AcceptLoopAsync();

    private async Task AcceptLoopAsync()
    {
        var backoff = TimeSpan.Zero;
        var token = _stopping.Token;
        while (!token.IsCancellationRequested)
        {
            try
            {
                if (_slots is not null && !_slots.Wait(0))
                {
                    _rejections.Write($"max.connections ({_limits.MaxConnections}) reached: not accepting until a connection closes");
                    await _slots.WaitAsync(token).ConfigureAwait(false);
                }
                Socket client;
                try
                {
                    client = await _socket.AcceptAsync(token).ConfigureAwait(false);
                }
                catch
                {
                    _slots?.Release();
                    throw;
                }
                backoff = TimeSpan.Zero;
                _admission.Created(Name);
                Admit(client);
                // max.connection.creation.rate: the next accept waits its turn (the client waits in the backlog).
                if (_admission.CreationDelay(Name) is { } wait && wait > TimeSpan.Zero)
                {
                    _rejections.Write($"max.connection.creation.rate reached: accepting the next connection in {wait.TotalMilliseconds:0} ms");
                    await Task.Delay(wait, _time, token).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return;
            }
            catch (ObjectDisposedException) when (token.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionAborted or SocketError.ConnectionReset)
            {
                // The client gave up before we accepted it: nothing is wrong here.
            }
            catch (Exception e)
            {
                backoff = backoff == TimeSpan.Zero ? FirstBackoff : TimeSpan.FromTicks(Math.Min(2 * backoff.Ticks, MaxBackoff.Ticks));
                var code = e is SocketException se ? $" ({se.SocketErrorCode})" : "";
                _acceptFailures.Write($"accept failed{code}: {e.Message}; retrying in {backoff.TotalMilliseconds:0} ms");
                try
                {
                    await Task.Delay(backoff, _time, token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    /// <summary>Runs the accepted socket as a connection, or closes it at once when its address is at its limit (Kafka's rule).</summary>
    private void Admit(Socket client)
    {
        IPAddress? address = null;
        try
        {
            address = (client.RemoteEndPoint as IPEndPoint)?.Address is { } remote ? ConnectionLimits.Normalize(remote) : null;
            if (address is not null && _admission.IpThrottle(address) is var throttle && throttle > TimeSpan.Zero)
            {
                _rejections.Write($"throttled connection from {address}: its connection_creation_rate quota is spent; closing it in {throttle.TotalMilliseconds:0} ms");
                address = null;
                _slots?.Release();
                CloseLater(client, throttle);
                return;
            }
            if (address is not null && !TryCountAddress(address))
            {
                _rejections.Write($"rejected connection from {address}, address already has the configured maximum of {_limits.MaxFor(address)} connections");
                address = null;
                client.Dispose();
                _slots?.Release();
                return;
            }
            client.NoDelay = true;
            var connection = new Connection(client, Name, _tls, _sasl, _registry, _log, _settings.MaxRequestBytes, _settings.MaxConnectionsInFlightPerConnection, _limits,
                _requestMemory, _time, _stopping.Token, _metrics, _authorizer, _quotas);
            _connections[connection] = RunConnectionAsync(connection, address);
        }
        catch
        {
            if (address is not null) UncountAddress(address);
            client.Dispose();
            _slots?.Release();
            throw;
        }
    }

    private const int MaxThrottledSockets = 1_000;
    private int _throttledSockets;

    /// <summary>
    /// Holds a throttled connection unserved until its throttle time ends, then closes it (Kafka's delayed close), so a
    /// client that reconnects at once waits too. Past <see cref="MaxThrottledSockets"/> held, sockets close at once:
    /// a flood of connections cannot pin descriptors.
    /// </summary>
    private void CloseLater(Socket client, TimeSpan delay)
    {
        if (Interlocked.Increment(ref _throttledSockets) > MaxThrottledSockets)
        {
            Interlocked.Decrement(ref _throttledSockets);
            client.Dispose();
            return;
        }
        _ = Task.Delay(delay, _time, _stopping.Token).ContinueWith(_ =>
        {
            client.Dispose();
            Interlocked.Decrement(ref _throttledSockets);
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private bool TryCountAddress(IPAddress address) => _admission.TryCountAddress(address);

    private void UncountAddress(IPAddress address) => _admission.UncountAddress(address);

    private async Task RunConnectionAsync(Connection connection, IPAddress? address)
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
            if (address is not null) UncountAddress(address);
            _slots?.Release();
        }
    }

    private void Sweep()
    {
        var now = _time.GetTimestamp();
        foreach (var connection in _connections.Keys) connection.CloseIfExpired(now);
    }

    public async ValueTask DisposeAsync()
    {
        _stopping.Cancel();
        _sweeper.Dispose();
        _socket.Dispose();
        if (_acceptLoop is not null) await _acceptLoop.ConfigureAwait(false);
        await Task.WhenAll(_connections.Values).ConfigureAwait(false);
        _stopping.Dispose();
    }
}
