using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>The handlers of this broker by API key.</summary>
internal sealed class ApiRegistry
{
    private readonly ApiHandler?[] _byKey = new ApiHandler?[short.MaxValue + 1];

    public ApiRegistry(IEnumerable<ApiHandler> handlers)
    {
        foreach (var handler in handlers)
        {
            if (_byKey[(short)handler.Key] is not null) throw new InvalidOperationException($"two handlers for {handler.Key}");
            _byKey[(short)handler.Key] = handler;
        }
        All = [.. handlers.OrderBy(h => h.Key)];
    }

    public IReadOnlyList<ApiHandler> All { get; }

    public ApiHandler? Get(short apiKey) => apiKey >= 0 ? _byKey[apiKey] : null;
}
