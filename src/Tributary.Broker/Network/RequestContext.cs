using System.Net;
using Tributary.Broker.Security;

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

    /// <summary>The connection's view of the authorizer; null when no authorizer is configured (everything is allowed).</summary>
    public AuthorizationSession? Authorization { get; init; }

    /// <summary>Kafka's authorize(): may this request's principal, from its host, do <paramref name="operation"/> on the resource?</summary>
    public bool Allows(AclOperation operation, AclResourceType type, string name) => Authorization?.Allows(operation, type, name) ?? true;

    public bool AllowsTopic(AclOperation operation, string topic) => Allows(operation, AclResourceType.Topic, topic);

    public bool AllowsGroup(AclOperation operation, string group) => Allows(operation, AclResourceType.Group, group);

    public bool AllowsCluster(AclOperation operation) => Allows(operation, AclResourceType.Cluster, AclBinding.ClusterName);

    public bool AllowsTransactionalId(AclOperation operation, string transactionalId) => Allows(operation, AclResourceType.TransactionalId, transactionalId);

    /// <summary>Kafka's authorizeByResourceType: the operation on some resource of the type.</summary>
    public bool AllowsAny(AclOperation operation, AclResourceType type) => Authorization?.AllowsAny(operation, type) ?? true;

    /// <summary>
    /// The authorized-operations field of a resource (Metadata, DescribeCluster, DescribeGroups, ...): a bit per
    /// supported operation allowed, every supported one without an authorizer, as Kafka's AuthHelper answers.
    /// </summary>
    public int AuthorizedOperations(AclResourceType type, string name) =>
        Authorizer.BitField(Authorizer.SupportedOperations(type).Where(op => Allows(op, type, name)));

    /// <summary>
    /// Set by a handler when the client is over a quota: after the response is sent, the connection reads nothing more
    /// for this long (KIP-219's muted channel).
    /// </summary>
    public int ThrottleMs { get; set; }

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
