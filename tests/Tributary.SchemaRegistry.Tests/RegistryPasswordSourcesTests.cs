using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Tributary.Broker;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>
/// Where Basic passwords come from (the users file, read again when it changes; the PLAIN users of SASL listeners; the
/// SCRAM credentials in the metadata), and the delay before a wrong one is refused, over plain http.
/// </summary>
public sealed class RegistryPasswordSourcesTests : IDisposable
{
    private const string PlainJaas = "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"admin-secret\" " +
        "user_admin=\"admin-secret\" user_alice=\"alice-secret\";";

    private readonly string _dir = Path.Combine(Path.GetTempPath(), "tributary-registry-passwords-" + Guid.NewGuid().ToString("N"));

    public RegistryPasswordSourcesTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static async Task<TributaryServer> StartAsync(params (string Name, string Value)[] more)
    {
        var settings = new Dictionary<string, string>
        {
            ["schema.registry.listeners"] = "http://127.0.0.1:0",
            ["schema.registry.authentication.method"] = "BASIC",
        };
        foreach (var (name, value) in more) settings[name] = value;
        var broker = await TributaryServer.StartEphemeralAsync(settings: settings);
        Assert.Equal(SchemaRegistryStatus.Running, broker.State.SchemaRegistryStatus);
        return broker;
    }

    /// <summary>The status of GET /schemas/types, which needs read on some subject.</summary>
    private static async Task<HttpStatusCode> GetAsync(TributaryServer broker, string user, string password)
    {
        using var http = new HttpClient { BaseAddress = new Uri(broker.SchemaRegistryUrl!) };
        using var request = new HttpRequestMessage(HttpMethod.Get, "/schemas/types");
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));
        using var response = await http.SendAsync(request);
        return response.StatusCode;
    }

    [Fact]
    public async Task The_PLAIN_users_of_a_SASL_listener_log_in_with_Basic()
    {
        await using var broker = await StartAsync(
            ("listeners", "SASL_PLAINTEXT://127.0.0.1:0,ADMIN://127.0.0.1:0"),
            ("listener.security.protocol.map", "SASL_PLAINTEXT:SASL_PLAINTEXT,ADMIN:PLAINTEXT"),
            ("inter.broker.listener.name", "ADMIN"),
            ("sasl.enabled.mechanisms", "PLAIN"),
            ("listener.name.sasl_plaintext.plain.sasl.jaas.config", PlainJaas),
            ("schema.registry.basic.auth.sources", "plain"),
            ("schema.registry.authorization.user.roles", "alice=read"));
        Assert.Equal(HttpStatusCode.OK, await GetAsync(broker, "alice", "alice-secret"));
        Assert.Equal(HttpStatusCode.Unauthorized, await GetAsync(broker, "alice", "bob-secret"));
        Assert.Equal(HttpStatusCode.Unauthorized, await GetAsync(broker, "mallory", "alice-secret"));
    }

    [Fact]
    public async Task SCRAM_credentials_in_the_metadata_log_in_with_Basic()
    {
        await using var broker = await StartAsync(("schema.registry.basic.auth.sources", "scram"), ("schema.registry.authorization.user.roles", "bob=read;carol=read"));
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.BootstrapServers }).Build();
        await admin.AlterUserScramCredentialsAsync([
            new UserScramCredentialUpsertion
            {
                User = "bob",
                ScramCredentialInfo = new ScramCredentialInfo { Mechanism = ScramMechanism.ScramSha256, Iterations = 4096 },
                Password = "bob-secret"u8.ToArray(),
            },
            new UserScramCredentialUpsertion
            {
                User = "carol",
                ScramCredentialInfo = new ScramCredentialInfo { Mechanism = ScramMechanism.ScramSha512, Iterations = 4096 },
                Password = "carol-secret"u8.ToArray(),
            },
        ]);
        Assert.Equal(HttpStatusCode.OK, await GetAsync(broker, "bob", "bob-secret"));
        // Twice: the second check is answered from the remembered verification, and must agree.
        Assert.Equal(HttpStatusCode.OK, await GetAsync(broker, "bob", "bob-secret"));
        Assert.Equal(HttpStatusCode.OK, await GetAsync(broker, "carol", "carol-secret"));
        Assert.Equal(HttpStatusCode.Unauthorized, await GetAsync(broker, "bob", "carol-secret"));
        Assert.Equal(HttpStatusCode.Unauthorized, await GetAsync(broker, "dave", "bob-secret"));

        await admin.AlterUserScramCredentialsAsync([new UserScramCredentialDeletion { User = "bob", Mechanism = ScramMechanism.ScramSha256 }]);
        Assert.Equal(HttpStatusCode.Unauthorized, await GetAsync(broker, "bob", "bob-secret"));
    }

    [Fact]
    public async Task A_changed_users_file_counts_from_the_next_request_without_a_restart()
    {
        var users = Path.Combine(_dir, "users.properties");
        await File.WriteAllTextAsync(users, "alice: old-secret,read\nbob: bob-secret,read\n");
        var written = DateTime.UtcNow.AddMinutes(-10);
        File.SetLastWriteTimeUtc(users, written);
        await using var broker = await StartAsync(("schema.registry.basic.auth.users.file", users));
        Assert.Equal(HttpStatusCode.OK, await GetAsync(broker, "alice", "old-secret"));

        await File.WriteAllTextAsync(users, "alice: new-secret,read\ncarol: carol-key,read\n");
        File.SetLastWriteTimeUtc(users, written.AddSeconds(1));
        Assert.Equal(HttpStatusCode.Unauthorized, await GetAsync(broker, "alice", "old-secret"));
        Assert.Equal(HttpStatusCode.OK, await GetAsync(broker, "alice", "new-secret"));
        Assert.Equal(HttpStatusCode.Unauthorized, await GetAsync(broker, "bob", "bob-secret"));
        Assert.Equal(HttpStatusCode.OK, await GetAsync(broker, "carol", "carol-key"));

        // Changed roles too: carol may no longer read.
        await File.WriteAllTextAsync(users, "alice: new-secret,read\ncarol: carol-key\n");
        File.SetLastWriteTimeUtc(users, written.AddSeconds(2));
        Assert.Equal(HttpStatusCode.Forbidden, await GetAsync(broker, "carol", "carol-key"));
    }

    [Fact]
    public async Task Wrong_credentials_are_refused_after_the_failure_delay()
    {
        var users = Path.Combine(_dir, "users.properties");
        await File.WriteAllTextAsync(users, "alice: alice-secret,read\n");
        await using var broker = await StartAsync(
            ("schema.registry.basic.auth.users.file", users),
            ("schema.registry.authentication.failure.delay.ms", "300"));
        // Less a timer's granularity: Task.Delay may fire a millisecond or so early by the Stopwatch's clock.
        var atLeast = TimeSpan.FromMilliseconds(300 - 20);
        var watch = Stopwatch.StartNew();
        Assert.Equal(HttpStatusCode.Unauthorized, await GetAsync(broker, "alice", "wrong"));
        Assert.True(watch.Elapsed >= atLeast, $"refused after {watch.Elapsed.TotalMilliseconds} ms");
        watch.Restart();
        Assert.Equal(HttpStatusCode.Unauthorized, await GetAsync(broker, "nobody", "alice-secret"));
        Assert.True(watch.Elapsed >= atLeast, $"refused after {watch.Elapsed.TotalMilliseconds} ms");
    }
}
