using System.Net;

namespace Tributary.Broker.Network;

/// <summary>
/// What every listener of one broker shares, as Kafka's limits are broker-wide: the max.connections slots, the count of
/// connections per client address (max.connections.per.ip), and the queued.max.request.bytes pool. A client cannot get
/// more by spreading its connections over listeners.
/// </summary>
internal sealed class ConnectionAdmission(ConnectionLimits limits, TimeProvider? time = null, string? interBrokerListener = null)
{
    /// <summary>max.connection.creation.rate's budget; null when unbounded.</summary>
    private readonly Replication.TokenBucket? _creation = limits.MaxConnectionCreationRate == int.MaxValue ? null
        : new Replication.TokenBucket(time ?? TimeProvider.System) { Rate = limits.MaxConnectionCreationRate };

    /// <summary>How long a listener waits before accepting another connection (zero: at once); the inter-broker listener never waits.</summary>
    public TimeSpan CreationDelay(string listener) =>
        _creation is null || string.Equals(listener, interBrokerListener, StringComparison.OrdinalIgnoreCase) ? TimeSpan.Zero : _creation.TimeUntilAvailable();

    /// <summary>Counts one accepted connection against max.connection.creation.rate.</summary>
    public void Created(string listener)
    {
        if (!string.Equals(listener, interBrokerListener, StringComparison.OrdinalIgnoreCase)) _creation?.Record(1);
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
