using System.Security.Cryptography;
using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;
using Tributary.Server;
using ErrorCode = Confluent.Kafka.ErrorCode;
using WireError = Tributary.Protocol.Messages.ErrorCode;

namespace Tributary.Broker.Tests.Security;

/// <summary>
/// SASL listeners with real clients (librdkafka through Confluent.Kafka): PLAIN, SCRAM-SHA-256/512 with credentials
/// managed by AlterUserScramCredentials, OAUTHBEARER with JWTs checked against a JWKS file, re-authentication, a
/// cluster whose brokers log in to each other, and the bad input of the issue (garbage, wrong proofs, replayed nonces,
/// expired and badly signed tokens), each closing only its own connection.
/// </summary>
public sealed class SaslTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private const string PlainJaas = "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"admin-secret\" " +
        "user_admin=\"admin-secret\" user_alice=\"alice-secret\";";
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "tributary-sasl-" + Guid.NewGuid().ToString("N"));

    public SaslTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>A SASL_PLAINTEXT listener (first) and a PLAINTEXT one named ADMIN, for setting SCRAM credentials.</summary>
    private static Dictionary<string, string> Settings(string mechanisms, params (string Name, string Value)[] more)
    {
        var settings = new Dictionary<string, string>
        {
            ["listeners"] = "SASL_PLAINTEXT://127.0.0.1:0,ADMIN://127.0.0.1:0",
            ["listener.security.protocol.map"] = "SASL_PLAINTEXT:SASL_PLAINTEXT,ADMIN:PLAINTEXT",
            ["inter.broker.listener.name"] = "ADMIN",
            ["sasl.enabled.mechanisms"] = mechanisms,
            ["listener.name.sasl_plaintext.plain.sasl.jaas.config"] = PlainJaas,
            ["connection.failed.authentication.delay.ms"] = "10",
        };
        foreach (var (name, value) in more) settings[name] = value;
        return settings;
    }

    private static ProducerConfig Producer(TributaryServer broker, SaslMechanism mechanism, string user, string password) => new()
    {
        BootstrapServers = broker.BootstrapServers,
        SecurityProtocol = SecurityProtocol.SaslPlaintext,
        SaslMechanism = mechanism,
        SaslUsername = user,
        SaslPassword = password,
        MessageTimeoutMs = 8000,
    };

    private static async Task<DeliveryResult<Null, string>> ProduceOnceAsync(ProducerConfig config, string topic)
    {
        using var producer = new ProducerBuilder<Null, string>(config).SetLogHandler((_, _) => { }).Build();
        return await producer.ProduceAsync(topic, new Message<Null, string> { Value = "v" });
    }

    [Fact]
    public async Task Plain_accepts_the_configured_users_and_refuses_a_wrong_password()
    {
        await using var broker = await TributaryServer.StartEphemeralAsync(settings: Settings("PLAIN"));
        var delivered = await ProduceOnceAsync(Producer(broker, SaslMechanism.Plain, "alice", "alice-secret"), "plain-topic");
        Assert.Equal(PersistenceStatus.Persisted, delivered.Status);

        var refused = await Assert.ThrowsAsync<ProduceException<Null, string>>(() =>
            ProduceOnceAsync(Producer(broker, SaslMechanism.Plain, "alice", "wrong"), "plain-refused"));
        Assert.True(refused.Error.IsError);
        Assert.DoesNotContain(broker.State.Topics.Topics, t => t.Name == "plain-refused");
    }

    [Theory]
    [InlineData(SaslMechanism.ScramSha256, ScramMechanism.ScramSha256)]
    [InlineData(SaslMechanism.ScramSha512, ScramMechanism.ScramSha512)]
    public async Task Scram_logs_in_with_credentials_set_by_AlterUserScramCredentials(SaslMechanism mechanism, ScramMechanism scram)
    {
        await using var broker = await TributaryServer.StartEphemeralAsync(settings: Settings("SCRAM-SHA-256,SCRAM-SHA-512"));
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.BootstrapServersFor("ADMIN") }).Build();
        await admin.AlterUserScramCredentialsAsync([new UserScramCredentialUpsertion
        {
            User = "bob",
            ScramCredentialInfo = new ScramCredentialInfo { Mechanism = scram, Iterations = 8192 },
            Password = Encoding.UTF8.GetBytes("bob-secret"),
        }]);
        var described = await admin.DescribeUserScramCredentialsAsync(["bob"]);
        var info = Assert.Single(Assert.Single(described.UserScramCredentialsDescriptions).ScramCredentialInfos);
        Assert.Equal((scram, 8192), (info.Mechanism, info.Iterations));

        var delivered = await ProduceOnceAsync(Producer(broker, mechanism, "bob", "bob-secret"), "scram-topic");
        Assert.Equal(PersistenceStatus.Persisted, delivered.Status);
        await Assert.ThrowsAsync<ProduceException<Null, string>>(() => ProduceOnceAsync(Producer(broker, mechanism, "bob", "not-bobs"), "scram-wrong"));
        await Assert.ThrowsAsync<ProduceException<Null, string>>(() => ProduceOnceAsync(Producer(broker, mechanism, "nobody", "x"), "scram-nobody"));

        // Deleted: the same password no longer logs in.
        await admin.AlterUserScramCredentialsAsync([new UserScramCredentialDeletion { User = "bob", Mechanism = scram }]);
        await Assert.ThrowsAsync<ProduceException<Null, string>>(() => ProduceOnceAsync(Producer(broker, mechanism, "bob", "bob-secret"), "scram-deleted"));
        Assert.DoesNotContain(broker.State.Topics.Topics, t => t.Name is "scram-wrong" or "scram-nobody" or "scram-deleted");
    }

    [Fact]
    public async Task Scram_credentials_follow_kafkas_rules_and_survive_a_restart()
    {
        var dataDir = Path.Combine(_dir, "data");
        await using (var broker = await TributaryServer.StartEphemeralAsync(dataDir, Settings("SCRAM-SHA-256")))
        {
            using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.BootstrapServersFor("ADMIN") }).Build();
            var failure = await Assert.ThrowsAsync<AlterUserScramCredentialsException>(() => admin.AlterUserScramCredentialsAsync([
                new UserScramCredentialUpsertion { User = "few", ScramCredentialInfo = new ScramCredentialInfo { Mechanism = ScramMechanism.ScramSha256, Iterations = 1000 }, Password = "p"u8.ToArray() },
                new UserScramCredentialDeletion { User = "ghost", Mechanism = ScramMechanism.ScramSha256 },
                new UserScramCredentialUpsertion { User = "carol", ScramCredentialInfo = new ScramCredentialInfo { Mechanism = ScramMechanism.ScramSha256, Iterations = 4096 }, Password = "carol-secret"u8.ToArray() },
            ]));
            var byUser = failure.Results.ToDictionary(r => r.User, r => r.Error.Code);
            Assert.Equal(ErrorCode.UnacceptableCredential, byUser["few"]);
            Assert.Equal(ErrorCode.ResourceNotFound, byUser["ghost"]);
            Assert.Equal(ErrorCode.NoError, byUser["carol"]);
        }
        await using var restarted = await TributaryServer.StartEphemeralAsync(dataDir, Settings("SCRAM-SHA-256"));
        var delivered = await ProduceOnceAsync(Producer(restarted, SaslMechanism.ScramSha256, "carol", "carol-secret"), "after-restart");
        Assert.Equal(PersistenceStatus.Persisted, delivered.Status);
        // Only keys are stored, never the password.
        Assert.DoesNotContain("carol-secret", await File.ReadAllTextAsync(Path.Combine(dataDir, "scram-credentials.json")));
    }

    [Fact]
    public async Task Oauthbearer_accepts_a_signed_token_and_refuses_expired_and_forged_ones()
    {
        using var key = RSA.Create(2048);
        var signing = new RsaSecurityKey(key) { KeyId = "k1" };
        var jwk = JsonWebKeyConverter.ConvertFromRSASecurityKey(new RsaSecurityKey(key.ExportParameters(false)) { KeyId = "k1" });
        var jwks = Path.Combine(_dir, "jwks.json");
        await File.WriteAllTextAsync(jwks, $$"""{"keys":[{"kty":"RSA","kid":"k1","use":"sig","alg":"RS256","n":"{{jwk.N}}","e":"{{jwk.E}}"}]}""");
        await using var broker = await TributaryServer.StartEphemeralAsync(settings: Settings("OAUTHBEARER",
            ("sasl.oauthbearer.jwks.endpoint.url", new Uri(jwks).AbsoluteUri),
            ("sasl.oauthbearer.expected.issuer", "https://issuer.example"),
            ("sasl.oauthbearer.expected.audience", "tributary")));

        string Token(SecurityKey with, DateTime expires, string audience = "tributary") => new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = "https://issuer.example",
            Audience = audience,
            Claims = new Dictionary<string, object> { ["sub"] = "service-a" },
            NotBefore = expires.AddHours(-2),
            IssuedAt = expires.AddHours(-2),
            Expires = expires,
            SigningCredentials = new SigningCredentials(with, SecurityAlgorithms.RsaSha256),
        });

        async Task<DeliveryResult<Null, string>> ProduceWithAsync(string token, string topic)
        {
            var config = new ProducerConfig
            {
                BootstrapServers = broker.BootstrapServers,
                SecurityProtocol = SecurityProtocol.SaslPlaintext,
                SaslMechanism = SaslMechanism.OAuthBearer,
                MessageTimeoutMs = 8000,
            };
            using var producer = new ProducerBuilder<Null, string>(config).SetLogHandler((_, _) => { })
                .SetOAuthBearerTokenRefreshHandler((client, _) =>
                    client.OAuthBearerSetToken(token, DateTimeOffset.UtcNow.AddMinutes(10).ToUnixTimeMilliseconds(), "service-a"))
                .Build();
            return await producer.ProduceAsync(topic, new Message<Null, string> { Value = "v" });
        }

        Assert.Equal(PersistenceStatus.Persisted, (await ProduceWithAsync(Token(signing, DateTime.UtcNow.AddHours(1)), "oauth-ok")).Status);
        await Assert.ThrowsAsync<ProduceException<Null, string>>(() => ProduceWithAsync(Token(signing, DateTime.UtcNow.AddMinutes(-5)), "oauth-expired"));
        using var other = RSA.Create(2048);
        await Assert.ThrowsAsync<ProduceException<Null, string>>(() => ProduceWithAsync(Token(new RsaSecurityKey(other) { KeyId = "k1" }, DateTime.UtcNow.AddHours(1)), "oauth-forged"));
        await Assert.ThrowsAsync<ProduceException<Null, string>>(() => ProduceWithAsync(Token(signing, DateTime.UtcNow.AddHours(1), "someone-else"), "oauth-audience"));
        Assert.DoesNotContain(broker.State.Topics.Topics, t => t.Name.StartsWith("oauth-", StringComparison.Ordinal) && t.Name != "oauth-ok");
    }

    [Fact]
    public async Task A_producer_keeps_producing_across_reauthentications()
    {
        await using var broker = await TributaryServer.StartEphemeralAsync(settings: Settings("PLAIN", ("connections.max.reauth.ms", "1500")));
        using var producer = new ProducerBuilder<Null, string>(Producer(broker, SaslMechanism.Plain, "alice", "alice-secret")).Build();
        var started = DateTime.UtcNow;
        var sent = 0;
        // Produce for more than three session lifetimes: each expiry is met by a re-authentication on the same connection.
        while (DateTime.UtcNow - started < TimeSpan.FromSeconds(5))
        {
            var delivered = await producer.ProduceAsync("reauth", new Message<Null, string> { Value = "v" + sent });
            Assert.Equal(PersistenceStatus.Persisted, delivered.Status);
            Assert.Equal(sent++, delivered.Offset.Value);
        }
    }

    [Fact]
    public async Task Bad_sasl_input_gets_a_clear_error_and_a_closed_connection_and_others_are_served()
    {
        await using var broker = await TributaryServer.StartEphemeralAsync(settings: Settings("PLAIN,SCRAM-SHA-256"));
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.BootstrapServersFor("ADMIN") }).Build())
            await admin.AlterUserScramCredentialsAsync([new UserScramCredentialUpsertion
            {
                User = "dave",
                ScramCredentialInfo = new ScramCredentialInfo { Mechanism = ScramMechanism.ScramSha256, Iterations = 4096 },
                Password = "dave-secret"u8.ToArray(),
            }]);
        var address = $"127.0.0.1:{broker.Port}";

        // A request before authenticating.
        await using (var early = await RawKafkaClient.ConnectAsync(address))
        {
            await early.SendRawAsync(RawKafkaClient.Frame((short)ApiKey.Metadata, 12, 1, RawKafkaClient.Body(new MetadataRequest(), 12)));
            await early.WaitForCloseAsync(Timeout);
        }
        // Garbage in SaslAuthenticate before any handshake.
        await using (var garbage = await RawKafkaClient.ConnectAsync(address))
        {
            var answer = await garbage.SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest { AuthBytes = RandomNumberGenerator.GetBytes(64) }, 1);
            Assert.Equal((short)WireError.IllegalSaslState, answer.ErrorCode);
            await garbage.WaitForCloseAsync(Timeout);
        }
        // A mechanism not enabled.
        await using (var unsupported = await RawKafkaClient.ConnectAsync(address))
        {
            var answer = await unsupported.SendAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = "GSSAPI" }, 1);
            Assert.Equal((short)WireError.UnsupportedSaslMechanism, answer.ErrorCode);
            Assert.Equal(["PLAIN", "SCRAM-SHA-256"], answer.Mechanisms);
            await unsupported.WaitForCloseAsync(Timeout);
        }
        // PLAIN garbage, then a SCRAM client-final with a wrong proof, then one replaying another exchange's nonce.
        await using (var plain = await RawKafkaClient.ConnectAsync(address))
        {
            await plain.SendAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = "PLAIN" }, 1);
            var answer = await plain.SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest { AuthBytes = [1, 2, 3] }, 1);
            Assert.Equal((short)WireError.SaslAuthenticationFailed, answer.ErrorCode);
            Assert.Contains("Invalid SASL/PLAIN", answer.ErrorMessage);
            await plain.WaitForCloseAsync(Timeout);
        }
        var (firstNonce, _) = await ScramFinalAsync(address, "dave", "wrong-password", replayNonce: null, WireError.SaslAuthenticationFailed);
        await ScramFinalAsync(address, "dave", "dave-secret", replayNonce: firstNonce, WireError.SaslAuthenticationFailed);
        // librdkafka before 2.6.1 (Debian's kcat) repeats its own nonce in front of the server's; Kafka 3.9 accepts that.
        var (_, accepted) = await ScramFinalAsync(address, "dave", "dave-secret", replayNonce: null, WireError.None, doubleClientNonce: true);
        Assert.StartsWith("v=", Encoding.UTF8.GetString(accepted.AuthBytes));
        // And the right password still works, through a real client.
        var delivered = await ProduceOnceAsync(Producer(broker, SaslMechanism.ScramSha256, "dave", "dave-secret"), "after-bad-input");
        Assert.Equal(PersistenceStatus.Persisted, delivered.Status);
    }

    /// <summary>Runs a SCRAM-SHA-256 exchange by hand; with <paramref name="replayNonce"/> the final message carries that nonce instead of this exchange's.</summary>
    private static async Task<(string Nonce, SaslAuthenticateResponse Final)> ScramFinalAsync(string address, string user, string password, string? replayNonce,
        WireError expected, bool doubleClientNonce = false)
    {
        await using var client = await RawKafkaClient.ConnectAsync(address);
        await client.SendAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = "SCRAM-SHA-256" }, 1);
        var clientNonce = $"clientnonce{Guid.NewGuid():N}";
        var clientFirstBare = $"n={user},r={clientNonce}";
        var first = await client.SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest { AuthBytes = Encoding.UTF8.GetBytes("n,," + clientFirstBare) }, 1);
        Assert.Equal(0, first.ErrorCode);
        var serverFirst = Encoding.UTF8.GetString(first.AuthBytes);
        var parts = serverFirst.Split(',').ToDictionary(p => p[..1], p => p[2..]);
        var nonce = replayNonce ?? (doubleClientNonce ? clientNonce + parts["r"] : parts["r"]);
        var salted = ScramCredential.SaltedPassword("SCRAM-SHA-256", password, Convert.FromBase64String(parts["s"]), int.Parse(parts["i"]));
        var withoutProof = $"c=biws,r={nonce}";
        var clientKey = HMACSHA256.HashData(salted, "Client Key"u8);
        var signature = HMACSHA256.HashData(SHA256.HashData(clientKey), Encoding.UTF8.GetBytes($"{clientFirstBare},{serverFirst},{withoutProof}"));
        for (var i = 0; i < clientKey.Length; i++) clientKey[i] ^= signature[i];
        var final = await client.SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest
        {
            AuthBytes = Encoding.UTF8.GetBytes($"{withoutProof},p={Convert.ToBase64String(clientKey)}"),
        }, 1);
        Assert.Equal((short)expected, final.ErrorCode);
        if (expected != WireError.None) await client.WaitForCloseAsync(Timeout);
        return (parts["r"], final);
    }

    [Fact]
    public async Task Brokers_log_in_to_each_other_over_a_sasl_inter_broker_listener()
    {
        var settings = ClusterTestKit.Settings(
            ("listeners", "CLIENT://127.0.0.1:0,INTERNAL://127.0.0.1:0"),
            ("listener.security.protocol.map", "CLIENT:PLAINTEXT,INTERNAL:SASL_PLAINTEXT"),
            ("inter.broker.listener.name", "INTERNAL"),
            ("sasl.mechanism.inter.broker.protocol", "PLAIN"),
            ("listener.name.internal.sasl.enabled.mechanisms", "PLAIN"),
            ("listener.name.internal.plain.sasl.jaas.config", PlainJaas));
        await using var cluster = await TributaryCluster.StartAsync(3, settings);
        await ClusterTestKit.ProduceToEveryReplicaAsync(cluster, "over-sasl");
    }
}
