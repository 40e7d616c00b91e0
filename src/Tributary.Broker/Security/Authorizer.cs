using System.Collections.Frozen;
using Tributary.Broker.Cluster;

namespace Tributary.Broker.Security;

/// <summary>
/// Kafka's ACL authorizer (AclAuthorizer / StandardAuthorizer; both behave alike here), enabled by
/// <c>authorizer.class.name</c>. A request is allowed when:
/// <list type="number">
/// <item>its principal is one of <c>super.users</c>; else</item>
/// <item>no ACL applies to the resource (its literal name, the literal wildcard <c>*</c>, or any PREFIXED pattern that
/// is a prefix of the name, for any principal): <c>allow.everyone.if.no.acl.found</c> decides (default false); else</item>
/// <item>no DENY ACL for the principal (or <c>User:*</c>) and host (or <c>*</c>) names the operation or ALL; and</item>
/// <item>some ALLOW ACL for them names the operation, ALL, or an operation that implies it (READ, WRITE, DELETE and
/// ALTER imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS). DENY implies nothing: DENY READ leaves DESCRIBE.</item>
/// </list>
/// The ACLs come from the metadata image. Every image whose ACL list changed rebuilds the index (literal bindings by
/// resource, prefixed ones by type) and bumps <see cref="AclIndex.Generation"/>; the per-connection decision caches
/// (<see cref="AuthorizationSession"/>) belong to one generation, so a change is seen by the next request after it.
/// </summary>
public sealed class Authorizer
{
    public const string AclAuthorizerClass = "kafka.security.authorizer.AclAuthorizer";
    public const string StandardAuthorizerClass = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

    private readonly FrozenSet<string> _superUsers;
    private AclIndex _index;

    public Authorizer(IEnumerable<string> superUsers, bool allowEveryoneIfNoAclFound, IReadOnlyList<AclBinding> acls)
    {
        _superUsers = superUsers.ToFrozenSet(StringComparer.Ordinal);
        AllowEveryoneIfNoAclFound = allowEveryoneIfNoAclFound;
        _index = new AclIndex(acls, 1);
    }

    /// <summary>The authorizer <c>authorizer.class.name</c> asks for, following the store's ACLs; null when it is empty.</summary>
    public static Authorizer? Create(BrokerSettings settings, IMetadataStore store)
    {
        if (settings.Get("authorizer.class.name") is not { Length: > 0 }) return null;
        var superUsers = (settings.Get("super.users") ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var authorizer = new Authorizer(superUsers, settings.Bool("allow.everyone.if.no.acl.found"), store.Image.Acls);
        store.Published += (previous, next) =>
        {
            if (!ReferenceEquals(previous.Acls, next.Acls)) authorizer.Update(next.Acls);
        };
        // An image published between reading it above and subscribing is caught here.
        authorizer.Update(store.Image.Acls);
        return authorizer;
    }

    public bool AllowEveryoneIfNoAclFound { get; }

    /// <summary>
    /// Told each refusal once per connection, resource and ACL generation (decisions are cached), in the words of
    /// Kafka's authorizer log: "Principal = User:alice is Denied Operation = WRITE from host = 10.0.0.1 on resource =
    /// TOPIC:LITERAL:orders". The broker writes it to its log, rate-limited.
    /// </summary>
    public Action<string>? Denied { get; set; }

    /// <summary>The ACLs in force now, indexed.</summary>
    public AclIndex Current => Volatile.Read(ref _index);

    public bool IsSuperUser(string principal) => _superUsers.Contains(principal);

    /// <summary>Replaces the ACLs (a new image); a no-op when they are the very list already indexed.</summary>
    public void Update(IReadOnlyList<AclBinding> acls)
    {
        lock (_superUsers)
        {
            var current = _index;
            if (ReferenceEquals(current.Acls, acls)) return;
            Volatile.Write(ref _index, new AclIndex(acls, current.Generation + 1));
        }
    }

    public bool Authorize(string principal, string host, AclOperation operation, AclResourceType type, string name) =>
        IsSuperUser(principal) || Current.Authorize(principal, host, operation, type, name, AllowEveryoneIfNoAclFound);

    /// <summary>
    /// Kafka's authorizeByResourceType (KIP-679): may the principal do <paramref name="operation"/> on some resource of
    /// <paramref name="type"/>? True when an ALLOW binding for it (the operation or ALL) is not covered by a DENY one: a
    /// DENY on the literal wildcard covers everything, a DENY literal covers the same name, a DENY prefix covers the
    /// names and prefixes that start with it.
    /// </summary>
    public bool AuthorizeAny(string principal, string host, AclOperation operation, AclResourceType type) =>
        IsSuperUser(principal) || Current.AuthorizeAny(principal, host, operation, type, AllowEveryoneIfNoAclFound);

    /// <summary>The operations a resource type has (Kafka's AclEntry.supportedOperations), for authorized-operations fields.</summary>
    public static IReadOnlyList<AclOperation> SupportedOperations(AclResourceType type) => type switch
    {
        AclResourceType.Topic => [AclOperation.Read, AclOperation.Write, AclOperation.Create, AclOperation.Describe, AclOperation.Delete, AclOperation.Alter,
            AclOperation.DescribeConfigs, AclOperation.AlterConfigs],
        AclResourceType.Group => [AclOperation.Read, AclOperation.Describe, AclOperation.Delete, AclOperation.DescribeConfigs, AclOperation.AlterConfigs],
        AclResourceType.Cluster => [AclOperation.Create, AclOperation.ClusterAction, AclOperation.DescribeConfigs, AclOperation.AlterConfigs,
            AclOperation.IdempotentWrite, AclOperation.Alter, AclOperation.Describe],
        AclResourceType.TransactionalId => [AclOperation.Describe, AclOperation.Write],
        AclResourceType.DelegationToken => [AclOperation.Describe],
        AclResourceType.User => [AclOperation.CreateTokens, AclOperation.DescribeTokens],
        _ => [],
    };

    /// <summary>A bit (1 &lt;&lt; operation code) per operation in <paramref name="allowed"/>, as Kafka's authorized-operations fields.</summary>
    public static int BitField(IEnumerable<AclOperation> allowed)
    {
        var bits = 0;
        foreach (var op in allowed) bits |= 1 << (int)op;
        return bits;
    }
}

/// <summary>One generation of ACLs, indexed for the checks: literal bindings by (type, name), prefixed ones by type.</summary>
public sealed class AclIndex
{
    private readonly Dictionary<(AclResourceType, string), AclBinding[]> _literal;
    private readonly Dictionary<AclResourceType, AclBinding[]> _prefixed;
    private readonly Dictionary<AclResourceType, AclBinding[]> _byType;

    internal AclIndex(IReadOnlyList<AclBinding> acls, long generation)
    {
        Acls = acls;
        Generation = generation;
        _literal = acls.Where(a => a.PatternType == AclPatternType.Literal).GroupBy(a => (a.ResourceType, a.ResourceName)).ToDictionary(g => g.Key, g => g.ToArray());
        _prefixed = acls.Where(a => a.PatternType == AclPatternType.Prefixed).GroupBy(a => a.ResourceType).ToDictionary(g => g.Key, g => g.ToArray());
        _byType = acls.GroupBy(a => a.ResourceType).ToDictionary(g => g.Key, g => g.ToArray());
    }

    public IReadOnlyList<AclBinding> Acls { get; }

    /// <summary>Bumped on every change; decisions cached under one generation are valid only for it.</summary>
    public long Generation { get; }

    internal bool Authorize(string principal, string host, AclOperation operation, AclResourceType type, string name, bool allowIfNoAcl)
    {
        var anyAcl = false;
        var allowed = false;
        if (_literal.TryGetValue((type, name), out var exact) && Check(exact, principal, host, operation, ref anyAcl, ref allowed)) return false;
        if (name != AclBinding.Wildcard && _literal.TryGetValue((type, AclBinding.Wildcard), out var wildcard)
            && Check(wildcard, principal, host, operation, ref anyAcl, ref allowed)) return false;
        if (_prefixed.TryGetValue(type, out var prefixed))
        {
            foreach (var acl in prefixed)
            {
                if (!name.StartsWith(acl.ResourceName, StringComparison.Ordinal)) continue;
                anyAcl = true;
                if (!Applies(acl, principal, host)) continue;
                if (acl.Permission == AclPermission.Deny) { if (acl.Operation == AclOperation.All || acl.Operation == operation) return false; }
                else if (Implies(acl.Operation, operation)) allowed = true;
            }
        }
        return anyAcl ? allowed : allowIfNoAcl;
    }

    /// <summary>Applies one resource's bindings; true when a DENY decides.</summary>
    private static bool Check(AclBinding[] acls, string principal, string host, AclOperation operation, ref bool anyAcl, ref bool allowed)
    {
        anyAcl |= acls.Length > 0;
        foreach (var acl in acls)
        {
            if (!Applies(acl, principal, host)) continue;
            if (acl.Permission == AclPermission.Deny)
            {
                if (acl.Operation == AclOperation.All || acl.Operation == operation) return true;
            }
            else if (Implies(acl.Operation, operation)) allowed = true;
        }
        return false;
    }

    internal bool AuthorizeAny(string principal, string host, AclOperation operation, AclResourceType type, bool allowIfNoAcl)
    {
        if (!_byType.TryGetValue(type, out var acls)) return allowIfNoAcl;
        var denies = new List<AclBinding>();
        var allows = new List<AclBinding>();
        foreach (var acl in acls)
        {
            if (!Applies(acl, principal, host) || (acl.Operation != operation && acl.Operation != AclOperation.All)) continue;
            if (acl.Permission == AclPermission.Deny)
            {
                if (acl.PatternType == AclPatternType.Literal && acl.ResourceName == AclBinding.Wildcard) return false;
                denies.Add(acl);
            }
            else allows.Add(acl);
        }
        foreach (var allow in allows)
        {
            var covered = denies.Any(d => d.PatternType == AclPatternType.Prefixed
                ? allow.ResourceName.StartsWith(d.ResourceName, StringComparison.Ordinal)
                : allow.PatternType == AclPatternType.Literal && d.ResourceName == allow.ResourceName);
            if (!covered) return true;
        }
        return false;
    }

    private static bool Applies(AclBinding acl, string principal, string host) =>
        (acl.Principal == principal || acl.Principal == AclBinding.WildcardPrincipal) && (acl.Host == AclBinding.Wildcard || acl.Host == host);

    /// <summary>Does an ALLOW of <paramref name="granted"/> allow <paramref name="requested"/>?</summary>
    private static bool Implies(AclOperation granted, AclOperation requested) =>
        granted == AclOperation.All || granted == requested
        || (requested == AclOperation.Describe && granted is AclOperation.Read or AclOperation.Write or AclOperation.Delete or AclOperation.Alter)
        || (requested == AclOperation.DescribeConfigs && granted == AclOperation.AlterConfigs);
}
