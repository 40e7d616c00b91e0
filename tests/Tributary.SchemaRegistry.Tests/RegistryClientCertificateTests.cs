using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Confluent.SchemaRegistry;
using Tributary.Broker;
using Tributary.Broker.Tests.Security;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>
/// The registry's https listener with a PKCS12 keystore and required client certificates, and client certificates as
/// principals (authentication method SSL), driven by HttpClient and Confluent's .NET registry client.
/// </summary>
public sealed class RegistryClientCertificateTests : IDisposable
{
    private const string KeystorePassword = "store-secret";
    private const string ClientPassword = "client-secret";

    private readonly TestCertificates _certificates = new();

    /// <summary>What Confluent's .NET client needs as SslCaLocation: the server certificate's direct issuer.</summary>
    private string _intermediate = null!;

    public void Dispose() => _certificates.Dispose();

    private static Schema Record(string name) =>
        new($$"""{"type":"record","name":"{{name}}","namespace":"certs","fields":[{"name":"id","type":"string"}]}""", SchemaType.Avro);

    /// <summary>A broker whose registry serves https only, from a PKCS12 keystore, trusting the test CA for client certificates.</summary>
    private async Task<TributaryServer> StartAsync(params (string Name, string Value)[] more)
    {
        (var keystore, _intermediate) = _certificates.ServerPkcs12ViaIntermediate(KeystorePassword);
        var settings = new Dictionary<string, string>
        {
            ["schema.registry.listeners"] = "https://127.0.0.1:0",
            ["schema.registry.ssl.keystore.type"] = "PKCS12",
            ["schema.registry.ssl.keystore.location"] = keystore,
            ["schema.registry.ssl.keystore.password"] = KeystorePassword,
            ["schema.registry.ssl.truststore.location"] = _certificates.CaPath,
        };
        foreach (var (name, value) in more) settings[name] = value;
        var broker = await TributaryServer.StartEphemeralAsync(settings: settings);
        Assert.Equal(SchemaRegistryStatus.Running, broker.State.SchemaRegistryStatus);
        return broker;
    }

    /// <summary>An HttpClient trusting the test CA only, presenting <paramref name="keystore"/>'s certificate when given.</summary>
    private HttpClient Http(TributaryServer broker, string? keystore)
    {
        var ca = X509CertificateLoader.LoadCertificateFromFile(_certificates.CaPath);
        var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, presented, _) =>
        {
            using var chain = new X509Chain();
            foreach (var element in presented!.ChainElements) chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(ca);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            return certificate is not null && chain.Build(X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
        };
        if (keystore is not null)
            handler.SslOptions.ClientCertificates = [X509CertificateLoader.LoadPkcs12FromFile(keystore, ClientPassword)];
        return new HttpClient(handler) { BaseAddress = new Uri(broker.SchemaRegistryUrl!) };
    }

    private CachedSchemaRegistryClient Client(TributaryServer broker, string? keystore) => new(new SchemaRegistryConfig
    {
        Url = broker.SchemaRegistryUrl,
        SslCaLocation = _intermediate,
        SslKeystoreLocation = keystore,
        SslKeystorePassword = keystore is null ? null : ClientPassword,
    });

    [Fact]
    public async Task A_PKCS12_keystore_serves_https_and_REQUIRED_client_auth_refuses_clients_without_a_certificate()
    {
        await using var broker = await StartAsync(("schema.registry.ssl.client.auth", "REQUIRED"));
        var keystore = _certificates.ClientPkcs12("CN=app,O=Tributary", ClientPassword);

        using (var anonymous = Http(broker, keystore: null))
            await Assert.ThrowsAsync<HttpRequestException>(() => anonymous.GetAsync("/subjects"));
        using (var withCertificate = Http(broker, keystore))
        {
            using var response = await withCertificate.GetAsync("/subjects");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        using var client = Client(broker, keystore);
        var id = await client.RegisterSchemaAsync("certs-value", Record("A"));
        Assert.Equal(id, (await client.GetLatestSchemaAsync("certs-value")).Id);
        using var without = Client(broker, keystore: null);
        await Assert.ThrowsAsync<HttpRequestException>(() => without.GetLatestSchemaAsync("certs-value"));

        // A certificate from another CA is refused as well: only the truststore's signatures count.
        using var stranger = new TestCertificates("Stranger CA");
        using var foreign = Http(broker, stranger.ClientPkcs12("CN=app,O=Tributary", ClientPassword));
        await Assert.ThrowsAsync<HttpRequestException>(() => foreign.GetAsync("/subjects"));
    }

    [Fact]
    public async Task With_method_SSL_the_mapped_certificate_subject_is_the_principal()
    {
        var users = Path.Combine(_certificates.Directory, "users.properties");
        await File.WriteAllTextAsync(users, "admin: admin-secret,admin\n");
        await using var broker = await StartAsync(
            ("schema.registry.ssl.client.auth", "required"),
            ("schema.registry.authentication.method", "SSL,BASIC"),
            ("schema.registry.basic.auth.users.file", users),
            ("schema.registry.ssl.principal.mapping.rules", "RULE:^CN=([^,]+),O=Tributary$/$1/L"),
            ("schema.registry.authorization.user.roles", "writer-app=write;reader-app=read"));

        using var writer = Client(broker, _certificates.ClientPkcs12("CN=Writer-App,O=Tributary", ClientPassword, "writer"));
        var id = await writer.RegisterSchemaAsync("mapped-value", Record("B"));

        using var reader = Client(broker, _certificates.ClientPkcs12("CN=Reader-App,O=Tributary", ClientPassword, "reader"));
        Assert.Equal(id, (await reader.GetLatestSchemaAsync("mapped-value")).Id);
        var denied = await Assert.ThrowsAsync<SchemaRegistryException>(() => reader.RegisterSchemaAsync("mapped-value", Record("B2")));
        Assert.Equal(HttpStatusCode.Forbidden, denied.Status);
        Assert.Contains("User reader-app is denied", denied.Message, StringComparison.Ordinal);

        // A subject no rule maps is not a principal: 401, as a broker listener refuses the connection.
        using var unmapped = Client(broker, _certificates.ClientPkcs12("CN=app,O=Elsewhere", ClientPassword, "unmapped"));
        var refused = await Assert.ThrowsAsync<SchemaRegistryException>(() => unmapped.GetLatestSchemaAsync("mapped-value"));
        Assert.Equal(HttpStatusCode.Unauthorized, refused.Status);
        Assert.Contains("CN=app,O=Elsewhere", refused.Message, StringComparison.Ordinal);

        // Credentials in an Authorization header win over the certificate, as SASL does over TLS on a broker listener.
        using var http = Http(broker, _certificates.ClientPkcs12("CN=Reader-App,O=Tributary", ClientPassword, "reader-http"));
        using var delete = new HttpRequestMessage(HttpMethod.Delete, "/subjects/mapped-value");
        delete.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("admin:admin-secret")));
        using var deleted = await http.SendAsync(delete);
        Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
    }

    [Fact]
    public async Task Method_SSL_without_client_certificates_does_not_start_the_registry()
    {
        await using var broker = await TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string>
        {
            ["schema.registry.listeners"] = "https://127.0.0.1:0",
            ["schema.registry.ssl.keystore.type"] = "PKCS12",
            ["schema.registry.ssl.keystore.location"] = _certificates.ServerPkcs12ViaIntermediate(KeystorePassword).Keystore,
            ["schema.registry.ssl.keystore.password"] = KeystorePassword,
            ["schema.registry.authentication.method"] = "SSL",
        });
        Assert.Equal(SchemaRegistryStatus.Failed, broker.State.SchemaRegistryStatus);
    }
}
