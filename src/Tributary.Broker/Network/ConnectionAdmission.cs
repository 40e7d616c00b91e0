using System.Collections.Frozen;
using System.Net;
using Tributary.Broker.Cluster;
using Tributary.Broker.Quotas;

namespace Tributary.Broker.Network;

/// <summary>
/// What every listener of one broker shares, as Kafka's limits are broker-wide: the max.connections slots, the count of
/// connections per client address (max.connections.per.ip), and the queued.max.request.bytes pool. A client cannot get
/// more by spreading its connections over listeners. Also the <c>connection_creation_rate</c> quotas of ip entities
/// (KIP-612), set with AlterClientQuotas: a token bucket per client address, holding rate × <c>quota.window.num</c> ×
/// <c>quota.window.size.seconds</c> connections.
/// </summary>
internal sealed class ConnectionAdmission(ConnectionLimits limits, TimeProvider? time = null, string? interBrokerListener = null,
    Func<MetadataImage>? image = null, double quotaSpanSeconds = 11)
{
    private const int MaxTrackedAddresses = 10_000;
    private static readonly string DefaultIpKey = QuotaEntity.ForIp(null).Key;
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly Dictionary<IPAddress, QuotaBucket> _ipBuckets = [];

    /// <summary>max.connection.creation.rate's budget; null when unbounded.</summary>
    private readonly Replication.TokenBucket? _creation = limits.MaxConnectionCreationRate == int.MaxValue ? null
        : new Replication.TokenBucket(time ?? TimeProvider.System) { Rate = limits.MaxConnectionCreationRate };

    private bool IsInterBroker(string listener) => string.Equals(listener, interBrokerListener, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Takes one connection from the address's <c>connection_creation_rate</c> budget and returns zero, or, when the
    /// budget is spent, takes nothing and returns how long until it has a connection again. Kafka accepts such a
    /// connection and closes it after that time, so a client that reconnects at once is paced too. Every listener
    /// counts, the inter-broker one included, as in Kafka: quota brokers' addresses with care.
    /// </summary>
    public TimeSpan IpThrottle(IPAddress address)
    {
        if (image is null) return TimeSpan.Zero;
        var quotas = image().ClientQuotas;
        if (quotas.Count == 0 || RateFor(quotas, address) is not { } rate) return TimeSpan.Zero;
        var burst = Math.Max(1, rate * quotaSpanSeconds);
        lock (_ipBuckets)
        {
            var now = _time.GetTimestamp();
            var tokens = _ipBuckets.TryGetValue(address, out var bucket) ? bucket.TokensAt(rate, burst, now, _time) : burst;
            // Rotating addresses: forgetting budgets only ever gives connections back.
            if (_ipBuckets.Count >= MaxTrackedAddresses && !_ipBuckets.ContainsKey(address)) _ipBuckets.Clear();
            var admitted = tokens >= 1;
            _ipBuckets[address] = new QuotaBucket(admitted ? tokens - 1 : tokens, now);
            return admitted ? TimeSpan.Zero : TimeSpan.FromSeconds((1 - tokens) / rate);
        }
    }

    private static double? RateFor(FrozenDictionary<string, IReadOnlyDictionary<string, double>> quotas, IPAddress address)
    {
        var own = quotas.TryGetValue(QuotaEntity.ForIp(address).Key, out var values) ? values : quotas.GetValueOrDefault(DefaultIpKey);
        return own is not null && own.TryGetValue(QuotaEntity.ConnectionCreationRate, out var rate) && rate > 0 ? rate : null;
    }

    /// <summary>How long a listener waits before accepting another connection (zero: at once); the inter-broker listener never waits.</summary>
    public TimeSpan CreationDelay(string listener) => _creation is null || IsInterBroker(listener) ? TimeSpan.Zero : _creation.TimeUntilAvailable();

    /// <summary>Counts one accepted connection against max.connection.creation.rate.</summary>
    public void Created(string listener)
    {
        if (!IsInterBroker(listener)) _creation?.Record(1);
    }

    private readonly Dictionary<IPAddress, int> _perAddress = [];

    /// <summary>Free connection slots; null when max.connections is unbounded.</summary>
    public SemaphoreSlim? Slots { get; } = limits.MaxConnections == int.MaxValue ? null : new SemaphoreSlim(limits.MaxConnections, limits.MaxConnections);

    public RequestMemoryPool RequestMemory { get; } = new(limits.QueuedMaxRequestBytes);

    public bool TryCountAddress(IPAddress address)
    {
        var max = limits.MaxFor(address);
        if (max == int.MaxValue) return true;
        lock (_perAddress)
        {
            _perAddress.TryGetValue(address, out var count);
            if (count >= max) return false;
            _perAddress[address] = count + 1;
            return true;
        }
    }

    public void UncountAddress(IPAddress address)
    {
        if (limits.MaxFor(address) == int.MaxValue) return;
        lock (_perAddress)
        {
            if (!_perAddress.TryGetValue(address, out var count)) return;
            if (count <= 1) _perAddress.Remove(address);
            else _perAddress[address] = count - 1;
        }
    }
}
