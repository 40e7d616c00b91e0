using System.Net;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Tests.Hostile;

/// <summary>
/// max.connections.per.ip (with its overrides) closes a connection over its address's limit right after accept;
/// max.connections makes the listener wait until a connection closes. A normal client keeps working within them.
/// </summary>
public sealed class ConnectionLimitTests
{
    private static readonly IPAddress SecondLoopback = IPAddress.Parse("127.0.0.2");

    private static async Task<short> ApiVersionsErrorAsync(RawKafkaClient client) =>
        (await client.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest(), 0)).ErrorCode;

    [Fact]
    public async Task AConnectionOverItsAddressLimitIsClosedRightAfterAccept()
    {
        var server = await TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string>
        {
            ["max.connections.per.ip"] = "4",
            ["max.connections.per.ip.overrides"] = "127.0.0.2:1",
        });
        var held = new List<RawKafkaClient>();
        try
        {
            var bootstrap = server.BootstrapServers;
            held.Add(await RawKafkaClient.ConnectAsync(bootstrap, SecondLoopback));
            Assert.Equal(0, await ApiVersionsErrorAsync(held[^1]));
            await using (var overOverride = await RawKafkaClient.ConnectAsync(bootstrap, SecondLoopback))
                Assert.Equal(0, await overOverride.WaitForCloseAsync());

            for (var i = 0; i < 4; i++)
            {
                held.Add(await RawKafkaClient.ConnectAsync(bootstrap));
                Assert.Equal(0, await ApiVersionsErrorAsync(held[^1]));
            }
            await using (var fifth = await RawKafkaClient.ConnectAsync(bootstrap))
                Assert.Equal(0, await fifth.WaitForCloseAsync());

            // Room for the two connections a client uses (bootstrap and broker): it produces and reads back.
            for (var i = 0; i < 3; i++) await held[^(i + 1)].DisposeAsync();
            held.RemoveRange(held.Count - 3, 3);
            await NormalClient.RoundTripAsync(bootstrap);
            Assert.Equal(0, await ApiVersionsErrorAsync(held[0]));
        }
        finally
        {
            foreach (var client in held) await client.DisposeAsync();
            await server.StopAsync();
        }
    }

    [Fact]
    public async Task AtMaxConnectionsTheListenerAcceptsAgainOnlyOnceAConnectionCloses()
    {
        var server = await TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string> { ["max.connections"] = "3" });
        var held = new List<RawKafkaClient>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                held.Add(await RawKafkaClient.ConnectAsync(server.BootstrapServers));
                Assert.Equal(0, await ApiVersionsErrorAsync(held[^1]));
            }
            // The handshake completes in the kernel's backlog, but the broker does not take the connection yet.
            await using var waiting = await RawKafkaClient.ConnectAsync(server.BootstrapServers);
            var answer = ApiVersionsErrorAsync(waiting);
            Assert.NotSame(answer, await Task.WhenAny(answer, Task.Delay(TimeSpan.FromMilliseconds(500))));

            await held[0].DisposeAsync();
            held.RemoveAt(0);
            Assert.Equal(0, await answer);
        }
        finally
        {
            foreach (var client in held) await client.DisposeAsync();
            await server.StopAsync();
        }
    }

    [Theory]
    [InlineData("max.connections.per.ip", "0", "max.connections.per.ip can be set to zero only if max.connections.per.ip.overrides property is set")]
    [InlineData("max.connections", "0", "max.connections: invalid value '0': must be at least 1")]
    [InlineData("max.connections.per.ip.overrides", "127.0.0.1", "is not host:count")]
    public void InvalidLimitsAreRefusedAtStart(string name, string value, string message)
    {
        var e = Assert.Throws<ArgumentException>(() => new BrokerSettings(new Dictionary<string, string> { [name] = value }));
        Assert.Contains(message, e.Message);
    }
}
