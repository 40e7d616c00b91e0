using System.Diagnostics;
using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Tributary.Broker.Network;
using Tributary.Broker.Replication;
using Tributary.Server;

namespace Tributary.Broker.Tests.Security;

/// <summary>How many SCRAM logins a broker takes per second: a measurement, printed, with a loose bound that catches a broken exchange.</summary>
public sealed class SaslMeasurementTests
{
    [Fact]
    [Trait("Category", "Measurement")]
    public async Task Scram_connection_setup_rate()
    {
        await using var broker = await TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string>
        {
            ["listeners"] = "SASL_PLAINTEXT://127.0.0.1:0,ADMIN://127.0.0.1:0",
            ["listener.security.protocol.map"] = "SASL_PLAINTEXT:SASL_PLAINTEXT,ADMIN:PLAINTEXT",
            ["inter.broker.listener.name"] = "ADMIN",
            ["sasl.enabled.mechanisms"] = "SCRAM-SHA-256",
        });
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.BootstrapServersFor("ADMIN") }).Build())
            await admin.AlterUserScramCredentialsAsync([new UserScramCredentialUpsertion
            {
                User = "bench",
                ScramCredentialInfo = new ScramCredentialInfo { Mechanism = ScramMechanism.ScramSha256, Iterations = 4096 },
                Password = Encoding.UTF8.GetBytes("bench-secret"),
            }]);
        // The broker's own SCRAM client (what brokers log in to each other with) stands in for a client.
        var security = InterBrokerSecurity.Resolve(new BrokerSettings(new Dictionary<string, string>
        {
            ["listener.security.protocol.map"] = "SASL_PLAINTEXT:SASL_PLAINTEXT",
            ["sasl.mechanism.inter.broker.protocol"] = "SCRAM-SHA-256",
            ["listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config"] =
                "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"bench\" password=\"bench-secret\";",
        }), "SASL_PLAINTEXT", null);
        const int Logins = 400;
        async Task LoginAsync()
        {
            await using var channel = await BrokerChannel.ConnectAsync("127.0.0.1", broker.Port, "bench", security, CancellationToken.None);
        }
        await LoginAsync();
        foreach (var parallel in new[] { 1, 4 })
        {
            var clock = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, parallel).Select(_ => Task.Run(async () =>
            {
                for (var i = 0; i < Logins / parallel; i++) await LoginAsync();
            })));
            var rate = Logins / clock.Elapsed.TotalSeconds;
            Console.WriteLine($"SCRAM-SHA-256 (4096 iterations) logins, {parallel} at a time: {rate:F0}/s " +
                $"(connect, handshake, two SaslAuthenticate steps; the client's PBKDF2 is part of each)");
            Assert.True(rate > 10, $"{rate:F1} logins/s");
        }
    }
}
