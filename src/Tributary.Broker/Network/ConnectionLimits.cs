using System.Globalization;
using System.Net;

namespace Tributary.Broker.Network;

/// <summary>
/// The limits that keep clients from exhausting the broker's descriptors and memory, under Kafka's names and with
/// Kafka's defaults where Kafka has the setting:
/// <list type="bullet">
/// <item><c>max.connections</c>: at the limit the listener stops accepting until a connection closes. Kafka leaves it
/// unbounded; here it defaults to the descriptors <c>ulimit -n</c> leaves after the runtime's reserve and the segment
/// file pool, so idle connections alone can never take the descriptors the logs need (unbounded where the limit is
/// unknown).</item>
/// <item><c>max.connections.per.ip</c> (unbounded) and <c>max.connections.per.ip.overrides</c> ("host:count,..."):
/// a connection over its address's limit is closed right after accept.</item>
/// <item><c>max.connection.creation.rate</c> (unbounded): connections accepted per second, over every listener but the
/// inter-broker one (KIP-612); beyond it the listeners wait before accepting the next, so a connection storm queues in
/// the listen backlog instead of taking the broker's time.</item>
/// <item><c>connections.max.idle.ms</c> (600000): a connection that neither sent nor received a byte for this long is closed.</item>
/// <item><c>queued.max.request.bytes</c> (-1, unbounded): the bytes of requests held broker-wide, from the frame's
/// size prefix until its response is sent; at the limit connections stop reading.</item>
/// </list>
/// Two are Tributary's own, because Tributary pipelines requests where Kafka serves one at a time per connection:
/// <list type="bullet">
/// <item><c>queued.max.response.bytes.per.connection</c> (64 MiB): the response bytes one connection may have in
/// flight (a fetch counts its max_bytes until answered); past it the connection is not read until it drains.</item>
/// <item><c>socket.request.receive.timeout.ms</c> (30000): a request frame must arrive whole within this time of
/// its size prefix, or the connection is closed.</item>
/// </list>
/// </summary>
public sealed class ConnectionLimits
{
    public int MaxConnections { get; init; } = int.MaxValue;
    public int MaxConnectionsPerIp { get; init; } = int.MaxValue;
    public IReadOnlyDictionary<IPAddress, int> MaxConnectionsPerIpOverrides { get; init; } = new Dictionary<IPAddress, int>();
    public long IdleMs { get; init; } = 600_000;
    public long QueuedMaxRequestBytes { get; init; } = -1;
    public long ResponseBudgetBytes { get; init; } = 64L << 20;
    public long RequestReceiveTimeoutMs { get; init; } = 30_000;
    public int MaxConnectionCreationRate { get; init; } = int.MaxValue;

    public int MaxFor(IPAddress address) =>
        MaxConnectionsPerIpOverrides.TryGetValue(Normalize(address), out var max) ? max : MaxConnectionsPerIp;

    /// <summary>IPv4 clients of a dual-stack listener arrive as IPv4-mapped IPv6; they count under their IPv4 address.</summary>
    public static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    internal static ConnectionLimits From(BrokerSettings settings)
    {
        var limits = new ConnectionLimits
        {
            MaxConnections = settings.IntOrNull("max.connections") ?? DefaultMaxConnections(settings.TopicLimits.MaxOpenFiles),
            MaxConnectionsPerIp = settings.Int("max.connections.per.ip"),
            MaxConnectionsPerIpOverrides = ParseOverrides(settings.Get("max.connections.per.ip.overrides")),
            IdleMs = settings.Long("connections.max.idle.ms"),
            QueuedMaxRequestBytes = settings.Long("queued.max.request.bytes"),
            ResponseBudgetBytes = settings.Long("queued.max.response.bytes.per.connection"),
            RequestReceiveTimeoutMs = settings.Long("socket.request.receive.timeout.ms"),
            MaxConnectionCreationRate = settings.Int("max.connection.creation.rate"),
        };
        // Kafka's rule: a zero default only makes sense when some addresses are let in by an override.
        if (limits.MaxConnectionsPerIp == 0 && limits.MaxConnectionsPerIpOverrides.Count == 0)
            throw new ArgumentException("max.connections.per.ip can be set to zero only if max.connections.per.ip.overrides property is set");
        return limits;
    }

    /// <summary>What <c>ulimit -n</c> leaves for sockets once the runtime and the segment file pool have theirs.</summary>
    internal static int DefaultMaxConnections(int maxOpenFiles)
    {
        if (Tributary.Storage.FileSystem.OpenFileLimit.Current() is not { } limit) return int.MaxValue;
        var segmentFiles = maxOpenFiles > 0 ? maxOpenFiles : Tributary.Storage.FileSystem.OpenFileLimit.DefaultSegmentFiles();
        return (int)Math.Clamp(limit - Tributary.Storage.FileSystem.OpenFileLimit.RuntimeReserve - segmentFiles, 64, int.MaxValue);
    }

    /// <summary>"host:count,host:count"; a host name is resolved once, at start, as Kafka does.</summary>
    private static Dictionary<IPAddress, int> ParseOverrides(string? value)
    {
        var overrides = new Dictionary<IPAddress, int>();
        if (string.IsNullOrWhiteSpace(value)) return overrides;
        foreach (var entry in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var colon = entry.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(entry.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var max))
                throw new ArgumentException($"max.connections.per.ip.overrides: '{entry}' is not host:count");
            var host = entry[..colon].Trim('[', ']');
            var addresses = IPAddress.TryParse(host, out var ip) ? [ip] : Dns.GetHostAddresses(host);
            foreach (var address in addresses) overrides[Normalize(address)] = max;
        }
        return overrides;
    }
}
