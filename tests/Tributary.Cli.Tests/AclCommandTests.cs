using Tributary.Cli.Kafka;

namespace Tributary.Cli.Tests;

/// <summary>
/// <c>tributary acl create | list | delete</c> as the real executable against a broker with an authorizer (its
/// PLAINTEXT principal, User:ANONYMOUS, a super user): what it prints, and what the broker's metadata then holds.
/// </summary>
[Trait("Category", "Slow")]
public sealed class AclCommandTests
{
    [Fact]
    public async Task CreateListAndDeleteAcls()
    {
        NativeLibrdkafka.EnsureLoaded();
        await using var server = await TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string>
        {
            ["authorizer.class.name"] = "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            ["super.users"] = "User:ANONYMOUS",
        });
        var brokers = server.BootstrapServers;
        const string AliceReads = @"TOPIC\s+orders\s+LITERAL\s+User:alice\s+\*\s+READ\s+ALLOW";
        const string BobWrites = @"TOPIC\s+orders-\s+PREFIXED\s+User:bob\s+\*\s+WRITE\s+ALLOW";

        var literal = await CliProcess.RunAsync(brokers, ["acl", "create", "--topic", "orders", "--allow-principal", "User:alice", "--operation", "Read"]);
        Assert.True(literal.Exit == 0, literal.Err);
        Assert.Matches(AliceReads, literal.Out);
        var prefixed = await CliProcess.RunAsync(brokers,
            ["acl", "create", "--topic", "orders-", "--resource-pattern-type", "prefixed", "--allow-principal", "User:bob", "--operation", "Write"]);
        Assert.True(prefixed.Exit == 0, prefixed.Err);
        Assert.Equal(2, server.State.Topics.Image.Acls.Count);

        // kafka-acls' check: an operation the resource type does not have is refused before anything is sent.
        var unsupported = await CliProcess.RunAsync(brokers, ["acl", "create", "--topic", "orders", "--allow-principal", "User:alice", "--operation", "CreateTokens"]);
        Assert.NotEqual(0, unsupported.Exit);
        Assert.Contains("ResourceType TOPIC only supports operations [READ, WRITE, CREATE, DESCRIBE, DELETE, ALTER, DESCRIBE_CONFIGS, ALTER_CONFIGS, ALL]",
            unsupported.Err);
        Assert.Equal(2, server.State.Topics.Image.Acls.Count);

        var listed = await CliProcess.RunAsync(brokers, ["acl", "list"]);
        Assert.True(listed.Exit == 0, listed.Err);
        Assert.Matches(AliceReads, listed.Out);
        Assert.Matches(BobWrites, listed.Out);
        // MATCH lists what applies to one topic: the prefixed binding covers orders-eu, the literal one does not.
        var matching = await CliProcess.RunAsync(brokers, ["acl", "list", "--topic", "orders-eu", "--resource-pattern-type", "match"]);
        Assert.True(matching.Exit == 0, matching.Err);
        Assert.Matches(BobWrites, matching.Out);
        Assert.DoesNotMatch(AliceReads, matching.Out);

        var deleted = await CliProcess.RunAsync(brokers, ["acl", "delete", "--topic", "orders-", "--resource-pattern-type", "prefixed", "--allow-principal", "User:bob"]);
        Assert.True(deleted.Exit == 0, deleted.Err);
        Assert.Matches(BobWrites, deleted.Out);
        Assert.Contains("deleted 1 ACL(s)", deleted.Out + deleted.Err);

        var after = await CliProcess.RunAsync(brokers, ["acl", "list"]);
        Assert.True(after.Exit == 0, after.Err);
        Assert.Matches(AliceReads, after.Out);
        Assert.DoesNotMatch(BobWrites, after.Out);
        Assert.Equal("orders", Assert.Single(server.State.Topics.Image.Acls).ResourceName);
    }
}
