using Confluent.Kafka;
using Tributary.Server;

namespace Tributary.Broker.Tests.Security;

/// <summary>Several named listeners on one broker: each client is told the addresses of the listener it came through.</summary>
public sealed class NamedListenerTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Metadata_answers_with_the_advertised_address_of_the_listener_the_client_used()
    {
        await using var broker = await TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string>
        {
            ["listeners"] = "INSIDE://127.0.0.1:0,OUTSIDE://127.0.0.1:0",
            ["advertised.listeners"] = "INSIDE://127.0.0.1:0,OUTSIDE://localhost:0",
            ["listener.security.protocol.map"] = "INSIDE:PLAINTEXT,OUTSIDE:PLAINTEXT",
            ["inter.broker.listener.name"] = "INSIDE",
        });
        var inside = broker.PortOf("INSIDE");
        var outside = broker.PortOf("OUTSIDE");
        Assert.NotEqual(inside, outside);

        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = $"127.0.0.1:{inside}" }).Build())
        {
            var seen = Assert.Single(admin.GetMetadata(Timeout).Brokers);
            Assert.Equal(("127.0.0.1", inside), (seen.Host, seen.Port));
        }
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = $"127.0.0.1:{outside}" }).Build())
        {
            var seen = Assert.Single(admin.GetMetadata(Timeout).Brokers);
            Assert.Equal(("localhost", outside), (seen.Host, seen.Port));
        }
        Assert.Equal($"localhost:{outside}", broker.BootstrapServersFor("OUTSIDE"));

        // A producer bootstrapped on the OUTSIDE listener stays on it (through "localhost") and is acknowledged.
        using var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = $"127.0.0.1:{outside}", MessageTimeoutMs = 10_000 }).Build();
        var delivered = await producer.ProduceAsync("two-listeners", new Message<Null, string> { Value = "v" });
        Assert.Equal(PersistenceStatus.Persisted, delivered.Status);
    }

    [Fact]
    public async Task Connection_limits_count_every_listener_together()
    {
        await using var broker = await TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string>
        {
            ["listeners"] = "ONE://127.0.0.1:0,TWO://127.0.0.1:0",
            ["listener.security.protocol.map"] = "ONE:PLAINTEXT,TWO:PLAINTEXT",
            ["inter.broker.listener.name"] = "ONE",
            ["max.connections.per.ip"] = "2",
        });
        var client = System.Net.IPAddress.Parse("127.0.0.9");
        await using var first = await RawKafkaClient.ConnectAsync($"127.0.0.1:{broker.PortOf("ONE")}", client);
        await using var second = await RawKafkaClient.ConnectAsync($"127.0.0.1:{broker.PortOf("TWO")}", client);
        foreach (var open in new[] { first, second })
            Assert.Equal(0, (await open.SendAsync<Tributary.Protocol.Messages.ApiVersionsResponse>(new Tributary.Protocol.Messages.ApiVersionsRequest(), 0)).ErrorCode);
        // A third from the same address is over max.connections.per.ip whichever listener it tries.
        await using var third = await RawKafkaClient.ConnectAsync($"127.0.0.1:{broker.PortOf("TWO")}", client);
        await third.WaitForCloseAsync(Timeout);
    }

    [Fact]
    public async Task Max_connection_creation_rate_spaces_out_accepts_except_on_the_inter_broker_listener()
    {
        await using var broker = await TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string>
        {
            ["listeners"] = "ONE://127.0.0.1:0,TWO://127.0.0.1:0",
            ["listener.security.protocol.map"] = "ONE:PLAINTEXT,TWO:PLAINTEXT",
            ["inter.broker.listener.name"] = "ONE",
            ["max.connection.creation.rate"] = "5",
        });
        async Task<TimeSpan> ConnectAllAsync(string listener, int count)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var clients = new List<RawKafkaClient>();
            try
            {
                for (var i = 0; i < count; i++) clients.Add(await RawKafkaClient.ConnectAsync($"127.0.0.1:{broker.PortOf(listener)}"));
                // Answered means accepted: a connection waiting in the backlog gets no answer until its turn.
                foreach (var client in clients)
                    Assert.Equal(0, (await client.SendAsync<Tributary.Protocol.Messages.ApiVersionsResponse>(new Tributary.Protocol.Messages.ApiVersionsRequest(), 0,
                        TimeSpan.FromSeconds(30))).ErrorCode);
                return clock.Elapsed;
            }
            finally
            {
                foreach (var client in clients) await client.DisposeAsync();
            }
        }
        // 20 at 5 a second, 5 at once: the last is accepted no sooner than 3 s after the first.
        var throttled = await ConnectAllAsync("TWO", 20);
        Assert.True(throttled >= TimeSpan.FromSeconds(2.5), $"20 connections at max.connection.creation.rate=5 were all accepted in {throttled.TotalSeconds:F2} s");
        // The inter-broker listener is not limited: brokers reconnecting after a failure are never held back.
        await ConnectAllAsync("ONE", 20);
    }

    [Theory]
    [InlineData("listeners", "INSIDE://127.0.0.1:0", "no security protocol for the listener INSIDE")]
    [InlineData("advertised.listeners", "OTHER://host:1", "OTHER is not one of the listeners")]
    [InlineData("inter.broker.listener.name", "NOPE", "NOPE is not one of the listeners")]
    public async Task A_listener_setting_that_does_not_add_up_stops_start_up_naming_it(string name, string value, string expected)
    {
        var failure = await Assert.ThrowsAsync<ArgumentException>(() =>
            TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string> { [name] = value }));
        Assert.Contains(expected, failure.Message);
    }
}
