using System.Net;

namespace Tributary.Broker.Network;

/// <summary>
/// What every listener of one broker shares, as Kafka's limits are broker-wide: the max.connections slots, the count of
/// connections per client address (max.connections.per.ip), and the queued.max.request.bytes pool. A client cannot get
/// more by spreading its connections over listeners.
/// </summary>
internal sealed class ConnectionAdmission(ConnectionLimits limits)
{
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
