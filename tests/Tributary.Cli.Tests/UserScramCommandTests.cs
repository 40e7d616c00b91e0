using Confluent.Kafka;
using Tributary.Broker;
using Tributary.Cli.Kafka;
using Tributary.Server;

namespace Tributary.Cli.Tests;

/// <summary>
/// <c>tributary user scram set | describe | delete</c> as the real executable, over a SASL listener (a PLAIN admin
/// given in a --command-config file), and a SCRAM login by librdkafka with the credential it set.
/// </summary>
[Trait("Category", "Slow")]
public sealed class UserScramCommandTests
{
    [Fact]
    public async Task SetDescribeAndDeleteAScramCredentialOverASaslListener()
    {
        NativeLibrdkafka.EnsureLoaded();
        await using var server = await TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string>
        {
            ["listeners"] = "SASL_PLAINTEXT://127.0.0.1:0",
            ["sasl.enabled.mechanisms"] = "PLAIN,SCRAM-SHA-512",
            ["listener.name.sasl_plaintext.plain.sasl.jaas.config"] =
                "org.apache.kafka.common.security.plain.PlainLoginModule required user_admin=\"admin-secret\";",
        });
        var properties = Path.GetTempFileName();
        await File.WriteAllTextAsync(properties, "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.username=admin\nsasl.password=admin-secret\n");
        try
        {
            var brokers = server.BootstrapServers;
            var set = await CliProcess.RunAsync(brokers, ["user", "scram", "set", "erin", "-m", "SCRAM-SHA-512", "-p", "erin-secret", "--iterations", "5000", "--command-config", properties]);
            Assert.True(set.Exit == 0, set.Err);
            var described = await CliProcess.RunAsync(brokers, ["user", "scram", "describe", "--command-config", properties]);
            Assert.True(described.Exit == 0, described.Err);
            Assert.Matches(@"erin\s+SCRAM-SHA-512\s+5000", described.Out);

            using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig
            {
                BootstrapServers = brokers,
                SecurityProtocol = SecurityProtocol.SaslPlaintext,
                SaslMechanism = SaslMechanism.ScramSha512,
                SaslUsername = "erin",
                SaslPassword = "erin-secret",
                MessageTimeoutMs = 8000,
            }).Build())
                Assert.Equal(PersistenceStatus.Persisted, (await producer.ProduceAsync("erin-topic", new Message<Null, string> { Value = "v" })).Status);

            var deleted = await CliProcess.RunAsync(brokers, ["user", "scram", "delete", "erin", "-m", "SCRAM-SHA-512", "--command-config", properties]);
            Assert.True(deleted.Exit == 0, deleted.Err);
            Assert.Empty(server.State.Topics.Image.ScramCredentials);
            var again = await CliProcess.RunAsync(brokers, ["user", "scram", "describe", "erin", "--command-config", properties]);
            Assert.NotEqual(0, again.Exit);
            Assert.Contains("does not exist", again.Err);
        }
        finally
        {
            File.Delete(properties);
        }
    }
}
