using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Confluent.Kafka;
using Tributary.Broker.Network;
using Tributary.Protocol.Messages;
using Tributary.Server;

namespace Tributary.Broker.Tests.Security;

/// <summary>
/// SSL listeners with real clients: librdkafka (Confluent.Kafka) over TLS with and without a client certificate,
/// ssl.client.auth, plaintext and stalled handshakes on a TLS port, certificate reload, and a cluster whose brokers
/// replicate over a TLS inter-broker listener while clients use a plaintext one.
/// </summary>
public sealed class TlsListenerTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly TestCertificates _certificates = new();

    public void Dispose() => _certificates.Dispose();

    private Dictionary<string, string> SslSettings(string clientAuth, params (string Name, string Value)[] more)
    {
        var settings = new Dictionary<string, string>
        {
            ["listeners"] = "SSL://127.0.0.1:0",
            ["ssl.keystore.location"] = _certificates.ServerKeystore(),
            ["ssl.truststore.location"] = _certificates.CaPath,
            ["ssl.client.auth"] = clientAuth,
        };
        foreach (var (name, value) in more) settings[name] = value;
        return settings;
    }

    private ProducerConfig SslProducer(TributaryServer broker, (string Certificate, string Key)? client = null)
    {
        var config = new ProducerConfig
        {
            BootstrapServers = broker.BootstrapServers,
            SecurityProtocol = Confluent.Kafka.SecurityProtocol.Ssl,
            SslCaLocation = _certificates.CaPath,
            MessageTimeoutMs = 10_000,
            Acks = Acks.All,
        };
        if (client is { } c)
        {
            config.SslCertificateLocation = c.Certificate;
            config.SslKeyLocation = c.Key;
        }
        return config;
    }

    private ConsumerConfig SslConsumer(TributaryServer broker, (string Certificate, string Key) client) => new()
    {
        BootstrapServers = broker.BootstrapServers,
        SecurityProtocol = Confluent.Kafka.SecurityProtocol.Ssl,
        SslCaLocation = _certificates.CaPath,
        SslCertificateLocation = client.Certificate,
        SslKeyLocation = client.Key,
        GroupId = "tls-" + Guid.NewGuid().ToString("N"),
        AutoOffsetReset = AutoOffsetReset.Earliest,
        EnableAutoCommit = false,
    };

    [Fact]
    public async Task A_librdkafka_client_produces_and_consumes_over_tls_with_a_client_certificate()
    {
        await using var broker = await TributaryServer.StartEphemeralAsync(settings: SslSettings("required"));
        var client = _certificates.Client("CN=writer,OU=apps,O=Example");
        using (var producer = new ProducerBuilder<Null, string>(SslProducer(broker, client)).Build())
        {
            for (var i = 0; i < 100; i++) producer.Produce("tls-topic", new Message<Null, string> { Value = "record-" + i });
            Assert.Equal(0, producer.Flush(Timeout));
        }
        using var consumer = new ConsumerBuilder<Ignore, string>(SslConsumer(broker, client)).Build();
        consumer.Subscribe("tls-topic");
        var seen = new List<string>();
        var deadline = DateTime.UtcNow + Timeout;
        while (seen.Count < 100 && DateTime.UtcNow < deadline)
            if (consumer.Consume(TimeSpan.FromSeconds(1)) is { } r) seen.Add(r.Message.Value);
        Assert.Equal(Enumerable.Range(0, 100).Select(i => "record-" + i), seen);
    }

    [Fact]
    public async Task Without_a_client_certificate_a_required_listener_refuses_and_a_requested_one_serves()
    {
        await using (var required = await TributaryServer.StartEphemeralAsync(settings: SslSettings("required")))
        {
            using var producer = new ProducerBuilder<Null, string>(SslProducer(required)).Build();
            var failed = await Assert.ThrowsAsync<ProduceException<Null, string>>(() =>
                producer.ProduceAsync("refused", new Message<Null, string> { Value = "x" }));
            Assert.True(failed.Error.IsError);
            Assert.DoesNotContain(required.State.Topics.Topics, t => t.Name == "refused");
        }
        await using var requested = await TributaryServer.StartEphemeralAsync(settings: SslSettings("requested"));
        using var anonymous = new ProducerBuilder<Null, string>(SslProducer(requested)).Build();
        var delivered = await anonymous.ProduceAsync("anonymous", new Message<Null, string> { Value = "x" });
        Assert.Equal(PersistenceStatus.Persisted, delivered.Status);
    }

    [Fact]
    public async Task A_certificate_from_another_authority_is_refused_even_when_only_requested()
    {
        await using var broker = await TributaryServer.StartEphemeralAsync(settings: SslSettings("requested"));
        using var stranger = new TestCertificates("Some Other CA");
        var client = stranger.Client("CN=intruder");
        using var producer = new ProducerBuilder<Null, string>(SslProducer(broker, client)).Build();
        await Assert.ThrowsAsync<ProduceException<Null, string>>(() => producer.ProduceAsync("intruded", new Message<Null, string> { Value = "x" }));
        Assert.DoesNotContain(broker.State.Topics.Topics, t => t.Name == "intruded");
    }

    [Fact]
    public async Task Plaintext_sent_to_a_tls_listener_closes_that_connection_and_others_are_served()
    {
        await using var broker = await TributaryServer.StartEphemeralAsync(settings: SslSettings("none"));
        await using var raw = await RawKafkaClient.ConnectAsync($"127.0.0.1:{broker.Port}");
        await raw.SendRawAsync(RawKafkaClient.Frame((short)ApiKey.ApiVersions, 3, 1, RawKafkaClient.Body(new ApiVersionsRequest
        {
            ClientSoftwareName = "raw",
            ClientSoftwareVersion = "1",
        }, 3)));
        await raw.WaitForCloseAsync(Timeout);

        using var producer = new ProducerBuilder<Null, string>(SslProducer(broker)).Build();
        var delivered = await producer.ProduceAsync("after-garbage", new Message<Null, string> { Value = "x" });
        Assert.Equal(PersistenceStatus.Persisted, delivered.Status);
    }

    [Fact]
    public async Task A_client_that_stalls_the_handshake_is_closed_after_the_receive_timeout()
    {
        await using var broker = await TributaryServer.StartEphemeralAsync(settings: SslSettings("none", ("socket.request.receive.timeout.ms", "300")));
        await using var stalled = await RawKafkaClient.ConnectAsync($"127.0.0.1:{broker.Port}");
        await stalled.SendRawAsync(new byte[] { 0x16, 0x03, 0x01 }); // the start of a ClientHello, and nothing more
        await stalled.WaitForCloseAsync(Timeout);
    }

    [Fact]
    public async Task A_renewed_certificate_file_is_served_without_a_restart()
    {
        var settings = SslSettings("none");
        var keystore = settings["ssl.keystore.location"];
        await using var broker = await TributaryServer.StartEphemeralAsync(settings: settings);
        Assert.Equal("CN=localhost, O=Tributary", (await ServedCertificateAsync(broker.Port)).Subject);

        var renewed = _certificates.ServerKeystore("renewed", "CN=localhost,O=Renewed");
        File.Copy(renewed, keystore, overwrite: true);
        File.SetLastWriteTimeUtc(keystore, DateTime.UtcNow.AddMinutes(1));
        // The files are looked at again at most once a second, at a handshake: poll handshakes until the new one shows.
        var deadline = DateTime.UtcNow + Timeout;
        string subject;
        do subject = (await ServedCertificateAsync(broker.Port)).Subject;
        while (subject != "CN=localhost, O=Renewed" && DateTime.UtcNow < deadline);
        Assert.Equal("CN=localhost, O=Renewed", subject);
    }

    private async Task<X509Certificate2> ServedCertificateAsync(int port)
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync("127.0.0.1", port);
        await using var tls = new SslStream(new NetworkStream(socket, ownsSocket: false));
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            RemoteCertificateValidationCallback = (_, _, _, errors) => errors == SslPolicyErrors.None,
            CertificateChainPolicy = TrustingTheTestCa(),
        });
        return new X509Certificate2(tls.RemoteCertificate!);
    }

    private X509ChainPolicy TrustingTheTestCa()
    {
        var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
        policy.CustomTrustStore.ImportFromPemFile(_certificates.CaPath);
        return policy;
    }

    [Fact]
    public async Task An_oauthbearer_listener_without_a_jwks_is_refused_at_start_with_a_clear_message()
    {
        var failure = await Assert.ThrowsAsync<ArgumentException>(() => TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string>
        {
            ["listeners"] = "SASL_PLAINTEXT://127.0.0.1:0",
            ["sasl.enabled.mechanisms"] = "OAUTHBEARER",
        }));
        Assert.Contains("sasl.oauthbearer.jwks.endpoint.url", failure.Message);
    }

    [Fact]
    public void Principal_mapping_rules_work_as_kafkas()
    {
        var mapper = SslPrincipalMapper.Parse("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, RULE:^CN=([^,]*),.*$/$1/, DEFAULT");
        Assert.Equal("kafka-writer", mapper.Map("CN=Kafka-Writer,OU=ServiceUsers,O=Example"));
        Assert.Equal("Reader", mapper.Map("CN=Reader,O=Example"));
        Assert.Equal("O=OnlyOrg", mapper.Map("O=OnlyOrg"));
        Assert.Throws<ArgumentException>(() => SslPrincipalMapper.Parse("RULE:^CN=(.*)$/$1/").Map("O=NoCn"));

        // Encoded country first, as openssl -subj /C=DE/O=.../CN=writer makes it; RFC 2253 (Java's getName) prints it backwards.
        // The builder encodes the parts in the reverse of the order they are added.
        var builder = new X500DistinguishedNameBuilder();
        builder.AddCommonName("writer");
        builder.AddOrganizationalUnitName("apps");
        builder.AddOrganizationName("Example, Inc");
        builder.AddCountryOrRegion("DE");
        var name = builder.Build();
        Assert.Equal("2.5.4.6", name.EnumerateRelativeDistinguishedNames(reversed: false).First().GetSingleElementType().Value);
        Assert.Equal("CN=writer,OU=apps,O=Example\\, Inc,C=DE", SslPrincipalMapper.Rfc2253(name));
        // A subject as .NET writes it parses to the same encoding and prints back the same.
        Assert.Equal("CN=writer,O=Example", SslPrincipalMapper.Rfc2253(new X500DistinguishedName("CN=writer,O=Example")));
    }

    [Fact]
    public async Task Brokers_replicate_over_a_tls_inter_broker_listener_while_clients_use_plaintext()
    {
        var keystore = _certificates.ServerKeystore();
        var settings = ClusterTestKit.Settings(
            ("listeners", "CLIENT://127.0.0.1:0,INTERNAL://127.0.0.1:0"),
            ("listener.security.protocol.map", "CLIENT:PLAINTEXT,INTERNAL:SSL"),
            ("inter.broker.listener.name", "INTERNAL"),
            ("listener.name.internal.ssl.keystore.location", keystore),
            ("listener.name.internal.ssl.truststore.location", _certificates.CaPath),
            ("listener.name.internal.ssl.client.auth", "required"));
        await using var cluster = await TributaryCluster.StartAsync(3, settings);
        // Every follower fetched the records over TLS.
        await ClusterTestKit.ProduceToEveryReplicaAsync(cluster, "over-tls");
        // Clients only ever see the CLIENT listener's addresses.
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.BootstrapServers }).Build();
        var metadata = admin.GetMetadata(Timeout);
        Assert.Equal(3, metadata.Brokers.Count);
        Assert.All(metadata.Brokers, b => Assert.Equal(cluster.Broker(b.BrokerId)!.PortOf("CLIENT"), b.Port));
    }
}
