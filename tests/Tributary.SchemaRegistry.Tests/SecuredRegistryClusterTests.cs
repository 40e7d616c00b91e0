using System.Net;
using Confluent.SchemaRegistry;
using Tributary.Broker;
using Tributary.Broker.Tests.Security;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>
/// Writes forwarded between brokers' registries over https (the configured truststore), with the client's Basic
/// credentials checked again by the leader; and anonymous access as a configured principal.
/// </summary>
public sealed class SecuredRegistryClusterTests
{
    [Fact]
    [Trait("Category", "Cluster")]
    public async Task Writes_through_a_follower_are_forwarded_to_the_leader_over_https()
    {
        using var certificates = new TestCertificates();
        var (keystore, intermediate) = certificates.ServerKeystoreViaIntermediate();
        var users = Path.Combine(certificates.Directory, "users.properties");
        await File.WriteAllTextAsync(users, "writer: writer-secret,write\nreader: reader-secret,read\n");
        await using var cluster = await TributaryCluster.StartAsync(2, new Dictionary<string, string>
        {
            ["schema.registry.listeners"] = "https://127.0.0.1:0",
            ["schema.registry.ssl.keystore.location"] = keystore,
            ["schema.registry.ssl.truststore.location"] = certificates.CaPath,
            ["schema.registry.authentication.method"] = "BASIC",
            ["schema.registry.basic.auth.users.file"] = users,
            ["schema.registry.topic.replication.factor"] = "2",
        });
        CachedSchemaRegistryClient Client(TributaryServer broker, string user, string password) => new(new SchemaRegistryConfig
        {
            Url = broker.SchemaRegistryUrl,
            SslCaLocation = intermediate,
            BasicAuthCredentialsSource = AuthCredentialsSource.UserInfo,
            BasicAuthUserInfo = $"{user}:{password}",
        });
        var schema = new Schema("""{"type":"record","name":"Forwarded","fields":[{"name":"id","type":"string"}]}""", SchemaType.Avro);
        // The first write creates _schemas; the next ones, through each broker, reach its leader.
        var ids = new List<int>();
        foreach (var broker in cluster.Brokers)
        {
            Assert.StartsWith("https://", broker.SchemaRegistryAdvertisedUrl, StringComparison.Ordinal);
            using var writer = Client(broker, "writer", "writer-secret");
            ids.Add(await writer.RegisterSchemaAsync("forwarded-value", schema));
        }
        Assert.Single(ids.Distinct());
        var leader = cluster.Brokers[0].State.Topics.Image.Partition("_schemas", 0)!.Leader;
        var follower = cluster.Brokers.Single(b => b.State.NodeId != leader);
        using (var writer = Client(follower, "writer", "writer-secret"))
            await writer.RegisterSchemaAsync("forwarded-2-value", schema);
        // The follower refuses a reader's write itself; the leader would too.
        using var reader = Client(follower, "reader", "reader-secret");
        var denied = await Assert.ThrowsAsync<SchemaRegistryException>(() => reader.RegisterSchemaAsync("forwarded-3-value", schema));
        Assert.Equal(HttpStatusCode.Forbidden, denied.Status);
        Assert.Contains("forwarded-2-value", await reader.GetAllSubjectsAsync());
    }

    [Fact]
    public async Task Anonymous_access_acts_as_the_configured_principal()
    {
        using var certificates = new TestCertificates();
        var users = Path.Combine(certificates.Directory, "users.properties");
        await File.WriteAllTextAsync(users, "writer: writer-secret,write\n");
        await using var broker = await TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string>
        {
            ["schema.registry.authentication.method"] = "BASIC",
            ["schema.registry.basic.auth.users.file"] = users,
            ["schema.registry.anonymous.access"] = "true",
            ["schema.registry.anonymous.principal"] = "guest",
            ["schema.registry.authorization.user.roles"] = "guest=read",
        });
        Assert.Equal(SchemaRegistryStatus.Running, broker.State.SchemaRegistryStatus);
        using var writer = new CachedSchemaRegistryClient(new SchemaRegistryConfig
        {
            Url = broker.SchemaRegistryUrl,
            BasicAuthCredentialsSource = AuthCredentialsSource.UserInfo,
            BasicAuthUserInfo = "writer:writer-secret",
        });
        var schema = new Schema("""{"type":"record","name":"Open","fields":[{"name":"id","type":"string"}]}""", SchemaType.Avro);
        var id = await writer.RegisterSchemaAsync("open-value", schema);
        using var anonymous = new CachedSchemaRegistryClient(new SchemaRegistryConfig { Url = broker.SchemaRegistryUrl });
        Assert.Equal(id, (await anonymous.GetLatestSchemaAsync("open-value")).Id);
        var denied = await Assert.ThrowsAsync<SchemaRegistryException>(() => anonymous.RegisterSchemaAsync("open-2-value", schema));
        Assert.Equal(HttpStatusCode.Forbidden, denied.Status);
        Assert.Contains("guest", denied.Message, StringComparison.Ordinal);
        // Credentials that are given must still be right: a wrong password is not anonymous.
        using var wrong = new CachedSchemaRegistryClient(new SchemaRegistryConfig
        {
            Url = broker.SchemaRegistryUrl,
            BasicAuthCredentialsSource = AuthCredentialsSource.UserInfo,
            BasicAuthUserInfo = "writer:nope",
        });
        Assert.Equal(HttpStatusCode.Unauthorized, (await Assert.ThrowsAsync<SchemaRegistryException>(() => wrong.GetLatestSchemaAsync("open-value"))).Status);
    }
}
