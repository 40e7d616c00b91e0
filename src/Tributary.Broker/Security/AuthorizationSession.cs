using System.Collections.Concurrent;
using System.Net;

namespace Tributary.Broker.Security;

/// <summary>
/// The authorizer as one connection sees it: its principal and host are fixed, so a decision depends only on
/// (operation, resource type, resource name) and is cached here, keeping produce and fetch to one dictionary lookup
/// per topic. The cache belongs to one ACL generation: when the ACLs change, the next check starts a new cache (a
/// decision computed from the old ACLs can only land in the old one). A connection naming very many resources clears
/// its cache at <see cref="MaxEntries"/> rather than growing without bound. Handlers run concurrently on a
/// connection, hence the concurrent dictionary.
/// </summary>
public sealed class AuthorizationSession
{
    internal const int MaxEntries = 4096;

    private readonly Authorizer _authorizer;
    private readonly bool _superUser;
    private Decisions _decisions;

    public AuthorizationSession(Authorizer authorizer, string principal, EndPoint? remote)
    {
        _authorizer = authorizer;
        Principal = principal;
        Host = HostOf(remote);
        _superUser = authorizer.IsSuperUser(principal);
        _decisions = new Decisions(authorizer.Current);
    }

    public string Principal { get; }

    /// <summary>The client's IP address as ACL hosts name it (an IPv4 address mapped into IPv6 as plain IPv4).</summary>
    public string Host { get; }

    public Authorizer Authorizer => _authorizer;

    public bool Allows(AclOperation operation, AclResourceType type, string name)
    {
        if (_superUser) return true;
        var decisions = Volatile.Read(ref _decisions);
        var index = _authorizer.Current;
        if (!ReferenceEquals(decisions.Index, index))
        {
            decisions = new Decisions(index);
            Volatile.Write(ref _decisions, decisions);
        }
        var key = new Key(operation, type, name);
        if (decisions.Map.TryGetValue(key, out var allowed)) return allowed;
        allowed = index.Authorize(Principal, Host, operation, type, name, _authorizer.AllowEveryoneIfNoAclFound);
        if (decisions.Map.Count >= MaxEntries) decisions.Map.Clear();
        if (decisions.Map.TryAdd(key, allowed) && !allowed)
            _authorizer.Denied?.Invoke($"Principal = {Principal} is Denied Operation = {AclBinding.Names.Of(operation)} from host = {Host} on resource = " +
                $"{AclBinding.Names.Of(type)}:LITERAL:{name}");
        return allowed;
    }

    /// <summary>Kafka's authorizeByResourceType for this connection (not cached: used once per InitProducerId).</summary>
    public bool AllowsAny(AclOperation operation, AclResourceType type) =>
        _superUser || _authorizer.Current.AuthorizeAny(Principal, Host, operation, type, _authorizer.AllowEveryoneIfNoAclFound);

    internal static string HostOf(EndPoint? remote) => remote switch
    {
        IPEndPoint ip when ip.Address.IsIPv4MappedToIPv6 => ip.Address.MapToIPv4().ToString(),
        IPEndPoint ip => ip.Address.ToString(),
        _ => "",
    };

    private readonly record struct Key(AclOperation Operation, AclResourceType Type, string Name);

    private sealed class Decisions(AclIndex index)
    {
        public AclIndex Index { get; } = index;
        public ConcurrentDictionary<Key, bool> Map { get; } = new();
    }
}
