using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace Tributary.Broker.Tests.Faults;

/// <summary>
/// The state of every directed link between the fault cluster's nodes (brokers 1..3, and "etcd" for a broker's link to
/// its metadata store): up, cut (no byte crosses it until it heals; as in a real partition TCP buffers and retransmits,
/// so a connection that outlives the cut carries on where it stopped, and one whose peer gave up is closed by that
/// peer), slowed (every chunk waits), or dropping (its connections are reset). <see cref="LinkProxy"/> applies it.
/// </summary>
internal sealed partial class NetworkLinks
{
    /// <summary>The node id of a broker's link to etcd.</summary>
    public const int Etcd = 0;

    private readonly Lock _lock = new();
    private readonly Dictionary<(int From, int To), TaskCompletionSource> _cut = [];
    private readonly Dictionary<(int From, int To), TimeSpan> _delay = [];
    private readonly Dictionary<(int A, int B), List<Action>> _resets = [];

    /// <summary>Completes when the link from <paramref name="from"/> to <paramref name="to"/> is up.</summary>
    public Task WaitUpAsync(int from, int to)
    {
        lock (_lock) return _cut.TryGetValue((from, to), out var healed) ? healed.Task : Task.CompletedTask;
    }

    public TimeSpan DelayOf(int from, int to)
    {
        lock (_lock) return _delay.GetValueOrDefault((from, to));
    }

    /// <summary>Cuts both directions between <paramref name="a"/> and <paramref name="b"/>.</summary>
    public void Cut(int a, int b)
    {
        lock (_lock)
        {
            _cut.TryAdd((a, b), new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            _cut.TryAdd((b, a), new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        }
    }

    public void Slow(int a, int b, TimeSpan delay)
    {
        lock (_lock) _delay[(a, b)] = _delay[(b, a)] = delay;
    }

    /// <summary>Resets every connection between <paramref name="a"/> and <paramref name="b"/> open now.</summary>
    public int Reset(int a, int b)
    {
        List<Action> resets;
        lock (_lock)
        {
            resets = [.. _resets.GetValueOrDefault(Pair(a, b)) ?? []];
        }
        foreach (var reset in resets) reset();
        return resets.Count;
    }

    /// <summary>Every link up, undelayed.</summary>
    public void HealAll()
    {
        List<TaskCompletionSource> healed;
        lock (_lock)
        {
            healed = [.. _cut.Values];
            _cut.Clear();
            _delay.Clear();
        }
        foreach (var h in healed) h.TrySetResult();
    }

    /// <summary>Registers a proxied connection between two nodes so <see cref="Reset"/> can reach it; dispose to unregister.</summary>
    public IDisposable Track(int a, int b, Action reset)
    {
        lock (_lock)
        {
            if (!_resets.TryGetValue(Pair(a, b), out var list)) _resets[Pair(a, b)] = list = [];
            list.Add(reset);
        }
        return new Untrack(this, Pair(a, b), reset);
    }

    private static (int, int) Pair(int a, int b) => a < b ? (a, b) : (b, a);

    /// <summary>The broker a connection comes from, by the client id of its first request (the brokers name themselves "replica-N", "broker-N..."); -1 when not a broker.</summary>
    public static int SourceOf(ReadOnlySpan<byte> frame)
    {
        // size(4) api_key(2) api_version(2) correlation_id(4) client_id(int16 length + bytes): the same in every header version that has one.
        if (frame.Length < 14) return -1;
        var length = BinaryPrimitives.ReadInt16BigEndian(frame[12..]);
        if (length <= 0 || frame.Length < 14 + length) return -1;
        var match = BrokerClientId().Match(Encoding.UTF8.GetString(frame.Slice(14, length)));
        return match.Success ? int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : -1;
    }

    [GeneratedRegex(@"^(?:replica|broker)-(\d+)")]
    private static partial Regex BrokerClientId();

    private sealed class Untrack(NetworkLinks links, (int, int) pair, Action reset) : IDisposable
    {
        public void Dispose()
        {
            lock (links._lock) links._resets.GetValueOrDefault(pair)?.Remove(reset);
        }
    }
}

/// <summary>
/// A TCP proxy in front of one node's port, obeying <see cref="NetworkLinks"/>. For a broker's inter-broker listener the
/// connecting broker is learned from the client id of the first request (<paramref name="fixedSource"/> null); for a
/// broker's etcd link the source is that broker. Bytes are forwarded chunk by chunk; before each chunk the pump waits
/// for its direction's link to be up and for the link's delay, and it reads nothing meanwhile, so a cut backs up into
/// the peers' socket buffers as a real partition does.
/// </summary>
internal sealed class LinkProxy : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly IPEndPoint _target;
    private readonly int _targetNode;
    private readonly int? _fixedSource;
    private readonly NetworkLinks _links;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;

    public LinkProxy(int targetPort, int targetNode, int? fixedSource, NetworkLinks links)
    {
        _target = new IPEndPoint(IPAddress.Loopback, targetPort);
        _targetNode = targetNode;
        _fixedSource = fixedSource;
        _links = links;
        _listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(128);
        Port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
        _accepting = AcceptAsync();
    }

    public int Port { get; }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }
            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(Socket client)
    {
        using var _ = client;
        using var upstream = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        client.NoDelay = true;
        var token = _stop.Token;
        try
        {
            var first = _fixedSource is null ? await ReadFirstFrameAsync(client, token) : [];
            if (first is null) return;
            var source = _fixedSource ?? NetworkLinks.SourceOf(first);
            await _links.WaitUpAsync(source, _targetNode).WaitAsync(token);
            await upstream.ConnectAsync(_target, token);
            using var connection = CancellationTokenSource.CreateLinkedTokenSource(token);
            void Reset()
            {
                // A reset as a dropped link shows it: both ends see the connection end at once.
                client.LingerState = new LingerOption(true, 0);
                upstream.LingerState = new LingerOption(true, 0);
                connection.Cancel();
                client.Close();
                upstream.Close();
            }
            using var tracked = source >= 0 ? _links.Track(source, _targetNode, Reset) : null;
            if (first.Length > 0) await upstream.SendAsync(first, SocketFlags.None, connection.Token);
            await Task.WhenAny(
                PumpAsync(client, upstream, source, _targetNode, connection.Token),
                PumpAsync(upstream, client, _targetNode, source, connection.Token));
            await connection.CancelAsync();
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException or IOException)
        {
        }
    }

    private async Task PumpAsync(Socket from, Socket to, int fromNode, int toNode, CancellationToken token)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var n = await from.ReceiveAsync(buffer, SocketFlags.None, token);
                if (n == 0) return;
                await _links.WaitUpAsync(fromNode, toNode).WaitAsync(token);
                if (_links.DelayOf(fromNode, toNode) is { } delay && delay > TimeSpan.Zero) await Task.Delay(delay, token);
                await to.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, token);
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
        finally
        {
            try
            {
                to.Shutdown(SocketShutdown.Send);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
        }
    }

    /// <summary>The first request frame whole (its client id names the connecting broker), or null when the stream ended first.</summary>
    private static async Task<byte[]?> ReadFirstFrameAsync(Socket client, CancellationToken token)
    {
        var size = new byte[4];
        if (!await ReadExactlyAsync(client, size, token)) return null;
        var length = BinaryPrimitives.ReadInt32BigEndian(size);
        if (length is < 0 or > 64 << 20) return null;
        var frame = new byte[4 + length];
        size.CopyTo(frame, 0);
        return await ReadExactlyAsync(client, frame.AsMemory(4), token) ? frame : null;
    }

    private static async Task<bool> ReadExactlyAsync(Socket socket, Memory<byte> buffer, CancellationToken token)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await socket.ReceiveAsync(buffer[read..], SocketFlags.None, token);
            if (n == 0) return false;
            read += n;
        }
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        await _accepting;
        _stop.Dispose();
    }
}
