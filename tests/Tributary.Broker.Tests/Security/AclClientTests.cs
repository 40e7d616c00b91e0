using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Tributary.Server;

namespace Tributary.Broker.Tests.Security;

/// <summary>
/// ACLs with real clients (librdkafka): the admin API creates, describes and deletes them, a producer and a consumer
/// are refused and then allowed, ACLs survive a restart, and a cluster keeps replicating with an authorizer on.
/// The admin is a super user on a PLAINTEXT listener (User:ANONYMOUS); alice is a client certificate on an SSL one.
/// </summary>
public sealed class AclClientTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private const string Alice = "User:CN=alice";
    private readonly TestCertificates _certificates = new();
    private readonly (string Certificate, string Key) _alice;

    public AclClientTests() => _alice = _certificates.Client("CN=alice", "alice");

    public void Dispose() => _certificates.Dispose();

    private Dictionary<string, string> Settings(params (string Name, string Value)[] more)
    {
        var settings = new Dictionary<string, string>
        {
            ["listeners"] = "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
            ["listener.security.protocol.map"] = "PLAINTEXT:PLAINTEXT,SSL:SSL",
            ["ssl.keystore.location"] = _certificates.ServerKeystore(),
            ["ssl.truststore.location"] = _certificates.CaPath,
            ["ssl.client.auth"] = "required",
            ["authorizer.class.name"] = "kafka.security.authorizer.AclAuthorizer",
            ["super.users"] = "User:ANONYMOUS",
        };
        foreach (var (name, value) in more) settings[name] = value;
        return settings;
    }

    private static IAdminClient Admin(string bootstrap) => new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build();

    private T AsAlice<T>(T config, TributaryServer broker) where T : ClientConfig
    {
        config.BootstrapServers = broker.BootstrapServersFor("SSL");
        config.SecurityProtocol = SecurityProtocol.Ssl;
        config.SslCaLocation = _certificates.CaPath;
        config.SslCertificateLocation = _alice.Certificate;
        config.SslKeyLocation = _alice.Key;
        return config;
    }

    private static AclBinding Acl(ResourceType type, string name, AclOperation op, string principal = Alice,
        ResourcePatternType pattern = ResourcePatternType.Literal, AclPermissionType permission = AclPermissionType.Allow) => new()
        {
            Pattern = new ResourcePattern { Type = type, Name = name, ResourcePatternType = pattern },
            Entry = new AccessControlEntry { Principal = principal, Host = "*", Operation = op, PermissionType = permission },
        };

    private static readonly AclBindingFilter All = new()
    {
        PatternFilter = new ResourcePatternFilter { Type = ResourceType.Any, ResourcePatternType = ResourcePatternType.Any },
        EntryFilter = new AccessControlEntryFilter { Operation = AclOperation.Any, PermissionType = AclPermissionType.Any },
    };

    [Fact]
    public async Task The_admin_client_creates_describes_and_deletes_acls()
    {
        await using var broker = await TributaryServer.StartEphemeralAsync(settings: Settings());
        using var admin = Admin(broker.BootstrapServersFor("PLAINTEXT"));
        await admin.CreateAclsAsync([
            Acl(ResourceType.Topic, "orders", AclOperation.Read),
            Acl(ResourceType.Topic, "orders-", AclOperation.Write, pattern: ResourcePatternType.Prefixed),
            Acl(ResourceType.Group, "*", AclOperation.Read, principal: "User:*"),
            Acl(ResourceType.Topic, "orders", AclOperation.Read, principal: "User:mallory", permission: AclPermissionType.Deny),
        ]);
        var all = (await admin.DescribeAclsAsync(All)).AclBindings;
        Assert.Equal(4, all.Count);

        // MATCH: every ACL that applies to topic orders-eu (its literal name, the wildcard, prefixes of it).
        var matching = (await admin.DescribeAclsAsync(new AclBindingFilter
        {
            PatternFilter = new ResourcePatternFilter { Type = ResourceType.Topic, Name = "orders-eu", ResourcePatternType = ResourcePatternType.Match },
            EntryFilter = new AccessControlEntryFilter { Operation = AclOperation.Any, PermissionType = AclPermissionType.Any },
        })).AclBindings;
        var prefixed = Assert.Single(matching);
        Assert.Equal(ResourcePatternType.Prefixed, prefixed.Pattern.ResourcePatternType);
        Assert.Equal(AclOperation.Write, prefixed.Entry.Operation);

        // An invalid binding is refused alone: a CLUSTER resource must be named kafka-cluster.
        var refused = await Assert.ThrowsAsync<CreateAclsException>(() => admin.CreateAclsAsync([Acl(ResourceType.Broker, "not-the-cluster", AclOperation.Alter)]));
        Assert.Equal(ErrorCode.InvalidRequest, refused.Results[0].Error.Code);

        var deleted = await admin.DeleteAclsAsync([new AclBindingFilter
        {
            PatternFilter = new ResourcePatternFilter { Type = ResourceType.Topic, Name = "orders", ResourcePatternType = ResourcePatternType.Literal },
            EntryFilter = new AccessControlEntryFilter { Operation = AclOperation.Any, PermissionType = AclPermissionType.Any },
        }]);
        Assert.Equal(2, deleted[0].AclBindings.Count);
        Assert.Equal(2, (await admin.DescribeAclsAsync(All)).AclBindings.Count);
    }

    [Fact]
    public async Task Without_an_authorizer_the_acl_apis_say_security_is_disabled()
    {
        await using var broker = await TributaryServer.StartEphemeralAsync();
        using var admin = Admin(broker.BootstrapServers);
        var e = await Assert.ThrowsAsync<CreateAclsException>(() => admin.CreateAclsAsync([Acl(ResourceType.Topic, "t", AclOperation.Read)]));
        Assert.Equal(ErrorCode.SecurityDisabled, e.Results[0].Error.Code);
        await using var raw = await RawKafkaClient.ConnectAsync(broker.BootstrapServers);
        var describe = await raw.SendAsync<Tributary.Protocol.Messages.DescribeAclsResponse>(new Tributary.Protocol.Messages.DescribeAclsRequest
        {
            ResourceTypeFilter = 1,
            PatternTypeFilter = 1,
            Operation = 1,
            PermissionType = 1,
        }, 3);
        Assert.Equal((short)Tributary.Protocol.Messages.ErrorCode.SecurityDisabled, describe.ErrorCode);
    }

    [Fact]
    public async Task Delegation_token_and_user_acls_are_stored_filtered_and_deleted_and_invalid_ones_refused_in_kafkas_words()
    {
        // librdkafka has no DELEGATION_TOKEN (6) or USER (7) resource type, nor the token operations: raw requests.
        await using var broker = await TributaryServer.StartEphemeralAsync(settings: Settings());
        await using var raw = await RawKafkaClient.ConnectAsync(broker.BootstrapServersFor("PLAINTEXT"));
        static Tributary.Protocol.Messages.CreateAclsRequest.AclCreation Creation(sbyte type, string name, sbyte op, sbyte pattern = 3) =>
            new() { ResourceType = type, ResourceName = name, ResourcePatternType = pattern, Principal = "User:bob", Host = "*", Operation = op, PermissionType = 3 };
        const sbyte Token = 6, User = 7, Describe = 8, CreateTokens = 13, DescribeTokens = 14;
        var created = await raw.SendAsync<Tributary.Protocol.Messages.CreateAclsResponse>(new Tributary.Protocol.Messages.CreateAclsRequest
        {
            Creations =
            [
                Creation(Token, "token-1", Describe),
                Creation(User, "User:bob", CreateTokens),
                Creation(User, "User:", DescribeTokens, pattern: 4),
                // Kafka's broker stores an operation the type does not have (only kafka-acls refuses it).
                Creation(2, "t", CreateTokens),
                Creation(2, "", 3),
                Creation(1, "t", 3),
                Creation(Token, "token-1", 1),
                Creation(4, "not-the-cluster", Describe),
            ],
        }, 3);
        (int, string?)[] expected =
            [
                (0, null), (0, null), (0, null), (0, null),
                (42, "Invalid empty resource name"),
                (42, "Invalid resourceType ANY"),
                (42, "Invalid operation ANY"),
                (42, "The only valid name for the CLUSTER resource is kafka-cluster"),
            ];
        Assert.Equal(expected, created.Results.Select(r => ((int)r.ErrorCode, r.ErrorMessage)));

        async Task<List<Tributary.Protocol.Messages.DescribeAclsResponse.DescribeAclsResource>> DescribeType(sbyte type)
        {
            var described = await raw.SendAsync<Tributary.Protocol.Messages.DescribeAclsResponse>(new Tributary.Protocol.Messages.DescribeAclsRequest
            {
                ResourceTypeFilter = type,
                PatternTypeFilter = 1,
                Operation = 1,
                PermissionType = 1,
            }, 3);
            Assert.Equal(0, described.ErrorCode);
            return described.Resources;
        }
        var token = Assert.Single(await DescribeType(Token));
        Assert.Equal(("token-1", Describe), (token.ResourceName, Assert.Single(token.Acls).Operation));
        var users = await DescribeType(User);
        (string, sbyte, sbyte)[] userAcls = [("User:", 4, DescribeTokens), ("User:bob", 3, CreateTokens)];
        Assert.Equal(userAcls, users.Select(u => (u.ResourceName, u.PatternType, Assert.Single(u.Acls).Operation)).OrderBy(u => u.ResourceName, StringComparer.Ordinal));

        var deleted = await raw.SendAsync<Tributary.Protocol.Messages.DeleteAclsResponse>(new Tributary.Protocol.Messages.DeleteAclsRequest
        {
            Filters = [new() { ResourceTypeFilter = User, PatternTypeFilter = 2, ResourceNameFilter = "User:bob", Operation = 1, PermissionType = 1 }],
        }, 3);
        // MATCH: the literal binding and the PREFIXED "User:" one both apply to User:bob.
        Assert.Equal(2, deleted.FilterResults[0].MatchingAcls.Count);
        Assert.Empty(await DescribeType(User));
        Assert.Equal(2, (await DescribeType(1)).Count);
    }

    [Fact]
    public async Task A_producer_and_a_consumer_are_refused_until_acls_allow_them()
    {
        await using var broker = await TributaryServer.StartEphemeralAsync(settings: Settings());
        using var admin = Admin(broker.BootstrapServersFor("PLAINTEXT"));
        await admin.CreateTopicsAsync([new TopicSpecification { Name = "payments", NumPartitions = 1, ReplicationFactor = 1 }]);

        using (var producer = new ProducerBuilder<Null, string>(AsAlice(new ProducerConfig { MessageTimeoutMs = 10_000 }, broker)).Build())
        {
            var refused = await Assert.ThrowsAsync<ProduceException<Null, string>>(() => producer.ProduceAsync("payments", new Message<Null, string> { Value = "no" }));
            Assert.Equal(ErrorCode.TopicAuthorizationFailed, refused.Error.Code);
        }

        await admin.CreateAclsAsync([
            Acl(ResourceType.Topic, "pay", AclOperation.Write, pattern: ResourcePatternType.Prefixed),
            Acl(ResourceType.Broker, "kafka-cluster", AclOperation.IdempotentWrite),
        ]);
        using (var producer = new ProducerBuilder<Null, string>(AsAlice(new ProducerConfig { EnableIdempotence = true, Acks = Acks.All }, broker)).Build())
        {
            for (var i = 0; i < 10; i++) producer.Produce("payments", new Message<Null, string> { Value = "v" + i });
            Assert.Equal(0, producer.Flush(Timeout));
        }

        var consumerConfig = AsAlice(new ConsumerConfig { GroupId = "billing", AutoOffsetReset = AutoOffsetReset.Earliest, EnableAutoCommit = false }, broker);
        using (var consumer = new ConsumerBuilder<Ignore, string>(consumerConfig).Build())
        {
            consumer.Subscribe("payments");
            var e = Assert.Throws<ConsumeException>(() => consumer.Consume(Timeout));
            Assert.True(e.Error.Code is ErrorCode.GroupAuthorizationFailed or ErrorCode.TopicAuthorizationFailed, e.Error.ToString());
        }

        await admin.CreateAclsAsync([Acl(ResourceType.Topic, "payments", AclOperation.Read), Acl(ResourceType.Group, "billing", AclOperation.Read)]);
        using (var consumer = new ConsumerBuilder<Ignore, string>(consumerConfig).Build())
        {
            consumer.Subscribe("payments");
            var seen = new List<string>();
            var deadline = DateTime.UtcNow + Timeout;
            while (seen.Count < 10 && DateTime.UtcNow < deadline)
                if (consumer.Consume(TimeSpan.FromSeconds(1)) is { } result) seen.Add(result.Message.Value);
            Assert.Equal(Enumerable.Range(0, 10).Select(i => "v" + i), seen);
            consumer.Commit();
        }

        // A DENY wins over the ALLOW, for the next request on an open connection too.
        using var producerAfter = new ProducerBuilder<Null, string>(AsAlice(new ProducerConfig { MessageTimeoutMs = 10_000 }, broker)).Build();
        await producerAfter.ProduceAsync("payments", new Message<Null, string> { Value = "still allowed" });
        await admin.CreateAclsAsync([Acl(ResourceType.Topic, "payments", AclOperation.Write, principal: "User:*", permission: AclPermissionType.Deny)]);
        var denied = await Assert.ThrowsAsync<ProduceException<Null, string>>(() => producerAfter.ProduceAsync("payments", new Message<Null, string> { Value = "denied" }));
        Assert.Equal(ErrorCode.TopicAuthorizationFailed, denied.Error.Code);
    }

    [Fact]
    public async Task Acls_survive_a_restart()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "tributary-acl-" + Guid.NewGuid().ToString("N"));
        try
        {
            var settings = Settings();
            await using (var broker = await TributaryServer.StartEphemeralAsync(dataDir, settings))
            {
                using var admin = Admin(broker.BootstrapServersFor("PLAINTEXT"));
                await admin.CreateAclsAsync([Acl(ResourceType.Topic, "kept", AclOperation.Read), Acl(ResourceType.Group, "g-", AclOperation.All, pattern: ResourcePatternType.Prefixed)]);
            }
            await using (var broker = await TributaryServer.StartEphemeralAsync(dataDir, settings))
            {
                using var admin = Admin(broker.BootstrapServersFor("PLAINTEXT"));
                var acls = (await admin.DescribeAclsAsync(All)).AclBindings;
                Assert.Equal(2, acls.Count);
                Assert.Contains(acls, a => a.Pattern.Name == "g-" && a.Pattern.ResourcePatternType == ResourcePatternType.Prefixed && a.Entry.Operation == AclOperation.All);
                // And they are enforced, not only listed.
                Assert.True(broker.State.Authorizer!.Authorize(Alice, "127.0.0.1", Tributary.Broker.Security.AclOperation.Describe,
                    Tributary.Broker.Security.AclResourceType.Topic, "kept"));
            }
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task A_cluster_with_an_authorizer_replicates_over_a_tls_inter_broker_listener_and_shares_acls()
    {
        // The brokers authenticate to each other with their certificate, whose principal is a super user;
        // clients come through PLAINTEXT as User:ANONYMOUS, which only ACLs let in.
        var keystore = _certificates.ServerKeystore();
        // The principal its certificate maps to (DEFAULT rule: the subject as RFC 2253 prints it).
        using var brokerCertificate = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(keystore);
        var brokerPrincipal = "User:" + Tributary.Broker.Network.SslPrincipalMapper.Rfc2253(brokerCertificate.SubjectName);
        var settings = ClusterTestKit.Settings(
            ("listeners", "CLIENT://127.0.0.1:0,INTERNAL://127.0.0.1:0"),
            ("listener.security.protocol.map", "CLIENT:PLAINTEXT,INTERNAL:SSL"),
            ("inter.broker.listener.name", "INTERNAL"),
            ("listener.name.internal.ssl.keystore.location", keystore),
            ("listener.name.internal.ssl.truststore.location", _certificates.CaPath),
            ("listener.name.internal.ssl.client.auth", "required"),
            ("authorizer.class.name", "org.apache.kafka.metadata.authorizer.StandardAuthorizer"),
            ("super.users", brokerPrincipal));
        await using var cluster = await TributaryCluster.StartAsync(3, settings);

        // Granted through one broker's metadata store; every broker applies them from etcd. ALL on the topic covers
        // creating it too.
        await cluster.Brokers[0].MetadataStore.ChangeAclsAsync([
            new(Tributary.Broker.Security.AclResourceType.Topic, "guarded", Tributary.Broker.Security.AclPatternType.Literal, "User:ANONYMOUS", "*",
                Tributary.Broker.Security.AclOperation.All, Tributary.Broker.Security.AclPermission.Allow),
            new(Tributary.Broker.Security.AclResourceType.Cluster, "kafka-cluster", Tributary.Broker.Security.AclPatternType.Literal, "User:ANONYMOUS", "*",
                Tributary.Broker.Security.AclOperation.IdempotentWrite, Tributary.Broker.Security.AclPermission.Allow),
        ], [], CancellationToken.None);
        foreach (var broker in cluster.Brokers)
            await Eventually.TrueAsync(() => broker.MetadataStore.Image.Acls.Count == 2, Timeout, $"broker {broker.State.NodeId} applies the ACLs");
        await ClusterTestKit.CreateAsync(cluster, "guarded", 3, 3);
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig
        {
            BootstrapServers = cluster.BootstrapServers,
            Acks = Acks.All,
            EnableIdempotence = true,
            MessageTimeoutMs = 30_000,
        }).Build())
        {
            for (var i = 0; i < 300; i++) producer.Produce(new TopicPartition("guarded", i % 3), new Message<Null, string> { Value = "r" + i });
            Assert.Equal(0, producer.Flush(Timeout));
            // A topic without an ACL stays closed to the same client.
            var refused = await Assert.ThrowsAsync<ProduceException<Null, string>>(() => producer.ProduceAsync("unguarded", new Message<Null, string> { Value = "no" }));
            Assert.Equal(ErrorCode.TopicAuthorizationFailed, refused.Error.Code);
        }
        // acks=all answered means every in-sync replica fetched the records over the authorized inter-broker listener.
        await ClusterTestKit.ReplicasAgreeAsync(cluster, "guarded", 3);
        foreach (var broker in cluster.Brokers)
            for (var p = 0; p < 3; p++)
                Assert.Equal(100, broker.State.Topics.GetPartition("guarded", p)!.LogEndOffset);
    }
}
