using System.Net;
using BenchmarkDotNet.Attributes;
using Tributary.Broker.Security;

namespace Tributary.Benchmarks;

/// <summary>
/// What the authorizer adds to produce and fetch: each request checks WRITE (produce) or READ (fetch) once per topic,
/// through the connection's decision cache; a cache miss (the first request, or the first after an ACL change) runs
/// the full check. The ACLs are those bench/acl-seed.py writes: the client's literal ALLOW among 1,000 other bindings.
/// </summary>
[MemoryDiagnoser]
public class AuthorizationBenchmarks
{
    private const string Principal = "User:ANONYMOUS", Topic = "bench-produce";

    private Authorizer _authorizer = null!;
    private AuthorizationSession _session = null!;

    [GlobalSetup]
    public void Setup()
    {
        var acls = new List<AclBinding>
        {
            new(AclResourceType.Topic, Topic, AclPatternType.Literal, Principal, "*", AclOperation.Write, AclPermission.Allow),
            new(AclResourceType.Topic, Topic, AclPatternType.Literal, Principal, "*", AclOperation.Create, AclPermission.Allow),
        };
        for (var i = 0; i < 1000; i++)
        {
            var user = $"User:u{i % 50}";
            acls.Add(i % 10 == 0 ? new(AclResourceType.Topic, $"team{i}-", AclPatternType.Prefixed, user, "*", AclOperation.Read, AclPermission.Allow)
                : i % 10 == 1 ? new(AclResourceType.Group, $"group-{i}", AclPatternType.Literal, user, "*", AclOperation.Read, AclPermission.Allow)
                : new(AclResourceType.Topic, $"other-{i}", AclPatternType.Literal, user, "*", i % 2 == 1 ? AclOperation.Write : AclOperation.Read, AclPermission.Allow));
        }
        _authorizer = new Authorizer([], allowEveryoneIfNoAclFound: false, acls);
        _session = new AuthorizationSession(_authorizer, Principal, new IPEndPoint(IPAddress.Loopback, 40000));
        if (!_session.Allows(AclOperation.Write, AclResourceType.Topic, Topic)) throw new InvalidOperationException("the ACLs do not allow the benchmark's write");
    }

    [Benchmark(Baseline = true)]
    public bool CachedDecision() => _session.Allows(AclOperation.Write, AclResourceType.Topic, Topic);

    [Benchmark]
    public bool FullCheck() => _authorizer.Authorize(Principal, "127.0.0.1", AclOperation.Write, AclResourceType.Topic, Topic);
}
