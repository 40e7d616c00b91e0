using System.Diagnostics;
using System.Net;
using Tributary.Broker.Security;

namespace Tributary.Broker.Tests.Security;

/// <summary>Kafka's authorizer rules, one at a time, and what a cached decision costs.</summary>
public sealed class AuthorizerTests
{
    private const string Alice = "User:alice", Host = "10.0.0.1";

    private static AclBinding Acl(AclResourceType type, string name, AclOperation op, AclPermission permission = AclPermission.Allow,
        AclPatternType pattern = AclPatternType.Literal, string principal = Alice, string host = "*") =>
        new(type, name, pattern, principal, host, op, permission);

    private static bool Allows(Authorizer authorizer, AclOperation op, AclResourceType type, string name, string principal = Alice, string host = Host) =>
        authorizer.Authorize(principal, host, op, type, name);

    [Fact]
    public void Without_acls_only_super_users_pass_unless_everyone_is_allowed()
    {
        var closed = new Authorizer(["User:admin", "User:CN=broker,O=Example"], allowEveryoneIfNoAclFound: false, []);
        Assert.False(Allows(closed, AclOperation.Read, AclResourceType.Topic, "t"));
        Assert.True(Allows(closed, AclOperation.Read, AclResourceType.Topic, "t", "User:admin"));
        Assert.True(Allows(closed, AclOperation.ClusterAction, AclResourceType.Cluster, AclBinding.ClusterName, "User:CN=broker,O=Example"));

        // allow.everyone.if.no.acl.found opens only resources no ACL (for anyone) applies to.
        var open = new Authorizer([], allowEveryoneIfNoAclFound: true, [Acl(AclResourceType.Topic, "guarded", AclOperation.Read, principal: "User:bob")]);
        Assert.True(Allows(open, AclOperation.Write, AclResourceType.Topic, "free"));
        Assert.False(Allows(open, AclOperation.Read, AclResourceType.Topic, "guarded"));
    }

    [Fact]
    public void Literal_wildcard_and_prefixed_patterns_match_as_in_kafka()
    {
        var authorizer = new Authorizer([], false, [
            Acl(AclResourceType.Topic, "orders", AclOperation.Read),
            Acl(AclResourceType.Topic, "*", AclOperation.Describe),
            Acl(AclResourceType.Topic, "logs-", AclOperation.Write, pattern: AclPatternType.Prefixed),
        ]);
        Assert.True(Allows(authorizer, AclOperation.Read, AclResourceType.Topic, "orders"));
        Assert.False(Allows(authorizer, AclOperation.Read, AclResourceType.Topic, "orders2"));
        Assert.True(Allows(authorizer, AclOperation.Describe, AclResourceType.Topic, "anything"));
        Assert.True(Allows(authorizer, AclOperation.Write, AclResourceType.Topic, "logs-eu"));
        Assert.False(Allows(authorizer, AclOperation.Write, AclResourceType.Topic, "log"));
        // A literal "logs-" topic is not the prefix pattern's only match, and another resource type is not matched at all.
        Assert.False(Allows(authorizer, AclOperation.Read, AclResourceType.Group, "orders"));
    }

    [Fact]
    public void Principal_and_host_wildcards()
    {
        var authorizer = new Authorizer([], false, [
            Acl(AclResourceType.Group, "g", AclOperation.Read, principal: AclBinding.WildcardPrincipal, host: Host),
            Acl(AclResourceType.Group, "h", AclOperation.Read),
        ]);
        Assert.True(Allows(authorizer, AclOperation.Read, AclResourceType.Group, "g", "User:anyone"));
        Assert.False(Allows(authorizer, AclOperation.Read, AclResourceType.Group, "g", "User:anyone", "10.0.0.2"));
        Assert.False(Allows(authorizer, AclOperation.Read, AclResourceType.Group, "h", "User:bob"));
    }

    [Fact]
    public void Deny_wins_and_implies_nothing()
    {
        var authorizer = new Authorizer([], false, [
            Acl(AclResourceType.Topic, "t", AclOperation.All),
            Acl(AclResourceType.Topic, "t", AclOperation.Read, AclPermission.Deny, AclPatternType.Prefixed),
        ]);
        Assert.False(Allows(authorizer, AclOperation.Read, AclResourceType.Topic, "t"));
        Assert.True(Allows(authorizer, AclOperation.Write, AclResourceType.Topic, "t"));
        // DENY READ does not deny the DESCRIBE that ALLOW ALL gives.
        Assert.True(Allows(authorizer, AclOperation.Describe, AclResourceType.Topic, "t"));
        var denyAll = new Authorizer([], false, [Acl(AclResourceType.Topic, "t", AclOperation.Write), Acl(AclResourceType.Topic, "*", AclOperation.All, AclPermission.Deny,
            principal: AclBinding.WildcardPrincipal)]);
        Assert.False(Allows(denyAll, AclOperation.Write, AclResourceType.Topic, "t"));
    }

    [Theory]
    [InlineData(AclOperation.Read, AclOperation.Describe, true)]
    [InlineData(AclOperation.Write, AclOperation.Describe, true)]
    [InlineData(AclOperation.Delete, AclOperation.Describe, true)]
    [InlineData(AclOperation.Alter, AclOperation.Describe, true)]
    [InlineData(AclOperation.AlterConfigs, AclOperation.DescribeConfigs, true)]
    [InlineData(AclOperation.All, AclOperation.IdempotentWrite, true)]
    [InlineData(AclOperation.Describe, AclOperation.Read, false)]
    [InlineData(AclOperation.Create, AclOperation.Describe, false)]
    [InlineData(AclOperation.DescribeConfigs, AclOperation.AlterConfigs, false)]
    public void Operations_imply_as_in_kafka(AclOperation granted, AclOperation asked, bool allowed)
    {
        var authorizer = new Authorizer([], false, [Acl(AclResourceType.Topic, "t", granted)]);
        Assert.Equal(allowed, Allows(authorizer, asked, AclResourceType.Topic, "t"));
    }

    [Fact]
    public void Write_on_any_topic_follows_denies_that_cover_it()
    {
        Assert.True(new Authorizer([], false, [Acl(AclResourceType.Topic, "a-", AclOperation.Write, pattern: AclPatternType.Prefixed)])
            .AuthorizeAny(Alice, Host, AclOperation.Write, AclResourceType.Topic));
        Assert.False(new Authorizer([], false, [
            Acl(AclResourceType.Topic, "a-x", AclOperation.Write),
            Acl(AclResourceType.Topic, "a-", AclOperation.Write, AclPermission.Deny, AclPatternType.Prefixed),
        ]).AuthorizeAny(Alice, Host, AclOperation.Write, AclResourceType.Topic));
        Assert.False(new Authorizer([], false, [Acl(AclResourceType.Topic, "a", AclOperation.Read)]).AuthorizeAny(Alice, Host, AclOperation.Write, AclResourceType.Topic));
    }

    [Fact]
    public void A_session_sees_each_acl_change_at_its_next_check()
    {
        var authorizer = new Authorizer([], false, []);
        var session = new AuthorizationSession(authorizer, Alice, new IPEndPoint(IPAddress.Parse(Host).MapToIPv6(), 5000));
        Assert.Equal(Host, session.Host);
        Assert.False(session.Allows(AclOperation.Write, AclResourceType.Topic, "t"));
        authorizer.Update([Acl(AclResourceType.Topic, "t", AclOperation.Write)]);
        Assert.True(session.Allows(AclOperation.Write, AclResourceType.Topic, "t"));
        authorizer.Update([]);
        Assert.False(session.Allows(AclOperation.Write, AclResourceType.Topic, "t"));
    }

    [Fact]
    public void Filters_match_as_describe_and_delete_acls_do()
    {
        var literal = Acl(AclResourceType.Topic, "orders", AclOperation.Read);
        var wildcard = Acl(AclResourceType.Topic, "*", AclOperation.Read);
        var prefixed = Acl(AclResourceType.Topic, "ord", AclOperation.Write, pattern: AclPatternType.Prefixed);
        var match = new AclBindingFilter(AclResourceType.Topic, "orders", AclPatternType.Match, null, null, AclOperation.Any, AclPermission.Any);
        Assert.True(match.Matches(literal) && match.Matches(wildcard) && match.Matches(prefixed));
        var any = new AclBindingFilter(AclResourceType.Any, "orders", AclPatternType.Any, null, null, AclOperation.Any, AclPermission.Any);
        Assert.True(any.Matches(literal));
        Assert.False(any.Matches(wildcard) || any.Matches(prefixed));
        var byPrincipal = new AclBindingFilter(AclResourceType.Any, null, AclPatternType.Any, "User:bob", null, AclOperation.Any, AclPermission.Any);
        Assert.False(byPrincipal.Matches(literal));
        Assert.NotNull(new AclBindingFilter(AclResourceType.Unknown, null, AclPatternType.Any, null, null, AclOperation.Any, AclPermission.Any).Invalid());
    }

    [Fact]
    public void Bindings_kafka_would_refuse_are_invalid()
    {
        Assert.Null(Acl(AclResourceType.Topic, "t", AclOperation.Read).Invalid());
        Assert.NotNull(Acl(AclResourceType.Cluster, "other", AclOperation.Alter).Invalid());
        Assert.NotNull(Acl(AclResourceType.Topic, "", AclOperation.Read).Invalid());
        Assert.NotNull(Acl(AclResourceType.Topic, "t", AclOperation.Any).Invalid());
        Assert.NotNull(Acl(AclResourceType.Any, "t", AclOperation.Read).Invalid());
        Assert.NotNull(Acl(AclResourceType.Topic, "t", AclOperation.Read, pattern: AclPatternType.Match).Invalid());
        Assert.NotNull(Acl(AclResourceType.Topic, "t", AclOperation.Read, principal: "alice").Invalid());
    }

    [Fact]
    public void A_refusal_is_told_once_per_connection_and_resource_in_kafkas_words()
    {
        var denied = new List<string>();
        var authorizer = new Authorizer([], false, [Acl(AclResourceType.Topic, "orders", AclOperation.Read)]) { Denied = denied.Add };
        var session = new AuthorizationSession(authorizer, Alice, new IPEndPoint(IPAddress.Parse(Host), 1));
        Assert.True(session.Allows(AclOperation.Read, AclResourceType.Topic, "orders"));
        for (var i = 0; i < 3; i++) Assert.False(session.Allows(AclOperation.Write, AclResourceType.Topic, "orders"));
        Assert.Equal(["Principal = User:alice is Denied Operation = WRITE from host = 10.0.0.1 on resource = TOPIC:LITERAL:orders"], denied);
    }

    /// <summary>
    /// What produce and fetch pay per topic once a decision is cached: a measurement, printed, with a loose bound that
    /// catches a cache that stopped caching (an uncached check walks the ACL lists and allocates).
    /// </summary>
    [Fact]
    [Trait("Category", "Measurement")]
    public void A_cached_decision_costs_a_dictionary_lookup()
    {
        var acls = Enumerable.Range(0, 1000).Select(i => Acl(AclResourceType.Topic, "topic-" + i, AclOperation.Write))
            .Append(Acl(AclResourceType.Topic, "top", AclOperation.Describe, pattern: AclPatternType.Prefixed)).ToList();
        var session = new AuthorizationSession(new Authorizer([], false, acls), Alice, new IPEndPoint(IPAddress.Parse(Host), 1));
        Assert.True(session.Allows(AclOperation.Write, AclResourceType.Topic, "topic-500"));
        const int Checks = 2_000_000;
        var allocated = GC.GetAllocatedBytesForCurrentThread();
        var watch = Stopwatch.StartNew();
        for (var i = 0; i < Checks; i++)
            if (!session.Allows(AclOperation.Write, AclResourceType.Topic, "topic-500")) throw new InvalidOperationException();
        watch.Stop();
        allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
        var nanos = watch.Elapsed.TotalNanoseconds / Checks;
        Console.WriteLine($"cached authorization check: {nanos:F1} ns, {allocated / (double)Checks:F4} B allocated per check");
        // A few KB at most, from the runtime recompiling the loop; a check that allocated would be megabytes.
        Assert.True(allocated < Checks / 100, $"{allocated} bytes allocated");
        Assert.True(nanos < 1000, $"{nanos:F0} ns per cached check");
    }
}
