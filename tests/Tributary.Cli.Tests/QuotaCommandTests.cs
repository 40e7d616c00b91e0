using Tributary.Cli.Kafka;
using Tributary.Server;

namespace Tributary.Cli.Tests;

/// <summary><c>tributary quota set | describe</c> as the real executable; the broker's metadata is checked, not the CLI's output alone.</summary>
[Trait("Category", "Slow")]
public sealed class QuotaCommandTests
{
    [Fact]
    public async Task SetDescribeAndRemoveQuotas()
    {
        NativeLibrdkafka.EnsureLoaded();
        await using var server = await TributaryServer.StartEphemeralAsync();
        var brokers = server.BootstrapServers;
        var set = await CliProcess.RunAsync(brokers, ["quota", "set", "--user", "alice", "--client-id", "<default>", "--add", "producer_byte_rate=1048576", "-a", "consumer_byte_rate=2097152"]);
        Assert.True(set.Exit == 0, set.Err);
        Assert.Equal(1048576, server.State.Quotas.QuotaFor("producer_byte_rate", "User:alice", "any"));

        var described = await CliProcess.RunAsync(brokers, ["quota", "describe", "--user", "alice"]);
        Assert.True(described.Exit == 0, described.Err);
        Assert.Matches(@"user alice, client-id <default>\s+consumer_byte_rate\s+2097152", described.Out);

        var bad = await CliProcess.RunAsync(brokers, ["quota", "set", "--client-id", "x", "--add", "no_such_quota=1"]);
        Assert.NotEqual(0, bad.Exit);
        Assert.Contains("Invalid configuration key", bad.Err);

        var ip = await CliProcess.RunAsync(brokers, ["quota", "set", "--ip", "10.0.0.7", "--add", "connection_creation_rate=5"]);
        Assert.True(ip.Exit == 0, ip.Err);
        var ips = await CliProcess.RunAsync(brokers, ["quota", "describe", "--ip", "10.0.0.7"]);
        Assert.Matches(@"ip 10\.0\.0\.7\s+connection_creation_rate\s+5", ips.Out);
        var ipRemoved = await CliProcess.RunAsync(brokers, ["quota", "set", "--ip", "10.0.0.7", "-d", "connection_creation_rate"]);
        Assert.True(ipRemoved.Exit == 0, ipRemoved.Err);

        var removed = await CliProcess.RunAsync(brokers, ["quota", "set", "--user", "alice", "--client-id", "<default>", "-d", "producer_byte_rate", "-d", "consumer_byte_rate"]);
        Assert.True(removed.Exit == 0, removed.Err);
        Assert.Empty(server.State.Topics.Image.ClientQuotas);
    }
}
