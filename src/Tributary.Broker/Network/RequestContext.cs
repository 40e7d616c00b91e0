using System.Net;

namespace Tributary.Broker.Network;

/// <summary>What a handler knows about the request it serves besides its body.</summary>
internal sealed class RequestContext(short apiVersion, int correlationId, string? clientId, EndPoint? remote, CancellationToken cancellation)
{
    private List<IDisposable>? _resources;

    public short ApiVersion { get; } = apiVersion;
    public int CorrelationId { get; } = correlationId;
    public string? ClientId { get; } = clientId;
    public EndPoint? Remote { get; } = remote;

    /// <summary>The name of the listener the request came through: endpoints in responses are that listener's.</summary>
    public string Listener { get; init; } = "PLAINTEXT";

    /// <summary>The connection's SASL state on a SASL listener (the SASL handlers drive it); null elsewhere.</summary>
    internal Security.SaslSession? Sasl { get; init; }

    /// <summary>Who sent it ("User:name"), as the connection authenticated it.</summary>
    public string Principal { get; init; } = Connection.AnonymousPrincipal;

    /// <summary>Cancelled when the connection closes or the broker stops.</summary>
    public CancellationToken Cancellation { get; } = cancellation;

    /// <summary>Keeps a buffer (a fetched slice) alive until the response carrying it has been sent.</summary>
    public void KeepUntilSent(IDisposable resource) => (_resources ??= []).Add(resource);

    internal void ReleaseResources()
    {
        if (_resources is null) return;
        foreach (var r in _resources) r.Dispose();
        _resources = null;
    }
}
