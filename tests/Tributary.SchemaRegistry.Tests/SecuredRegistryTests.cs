using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Avro.Generic;
using Confluent.Kafka;
using Confluent.Kafka.SyncOverAsync;
using Confluent.SchemaRegistry;
using Confluent.SchemaRegistry.Serdes;
using Microsoft.IdentityModel.Tokens;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>
/// The registry secured as Confluent's is: https with the broker's certificate loader, HTTP Basic and bearer tokens,
/// roles per subject; driven by Confluent's own .NET registry client and Avro serializer.
/// </summary>
public sealed class SecuredRegistryTests(SecuredRegistryFixture fixture) : IClassFixture<SecuredRegistryFixture>
{
    private static string Record(string name) =>
        $$"""{"type":"record","name":"{{name}}","namespace":"secured","fields":[{"name":"id","type":"string"}]}""";

    private static string Subject(string prefix = "secured-") => prefix + Guid.NewGuid().ToString("N")[..8] + "-value";

    private CachedSchemaRegistryClient Basic(string user, string password, string? url = null) => new(new SchemaRegistryConfig
    {
        Url = url ?? fixture.HttpsUrl,
        SslCaLocation = fixture.ClientCaLocation,
        BasicAuthCredentialsSource = AuthCredentialsSource.UserInfo,
        BasicAuthUserInfo = $"{user}:{password}",
    });

    private CachedSchemaRegistryClient BearerClient(string token) => new(new SchemaRegistryConfig
    {
        Url = fixture.HttpsUrl,
        SslCaLocation = fixture.ClientCaLocation,
        BearerAuthCredentialsSource = BearerAuthCredentialsSource.StaticToken,
        BearerAuthToken = token,
        // The client insists on Confluent Cloud's headers; Tributary ignores them.
        BearerAuthLogicalCluster = "lsrc-test",
        BearerAuthIdentityPoolId = "pool-test",
    });

    /// <summary>An HttpClient that trusts the test CA only (as the registry client does with SslCaLocation).</summary>
    private HttpClient Http(string? url = null)
    {
        var ca = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificateFromFile(fixture.Certificates.CaPath);
        var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, presented, _) =>
        {
            using var chain = new System.Security.Cryptography.X509Certificates.X509Chain();
            foreach (var element in presented!.ChainElements) chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            chain.ChainPolicy.TrustMode = System.Security.Cryptography.X509Certificates.X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(ca);
            chain.ChainPolicy.RevocationMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck;
            return certificate is not null && chain.Build(System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
        };
        return new HttpClient(handler) { BaseAddress = new Uri(url ?? fixture.HttpsUrl) };
    }

    private static AuthenticationHeaderValue BasicHeader(string user, string password) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));

    [Fact]
    public async Task A_writer_registers_and_a_reader_reads_over_https_with_basic_auth()
    {
        var subject = Subject();
        using var writer = Basic("writer", "writer-secret");
        var id = await writer.RegisterSchemaAsync(subject, new Schema(Record("A"), SchemaType.Avro));
        using var reader = Basic("reader", "reader-secret");
        var byId = await reader.GetSchemaAsync(id);
        Assert.Contains("\"A\"", byId.SchemaString, StringComparison.Ordinal);
        var latest = await reader.GetLatestSchemaAsync(subject);
        Assert.Equal((id, 1), (latest.Id, latest.Version));
        Assert.Contains(subject, await reader.GetAllSubjectsAsync());
        // Jetty's MD5: form of a password in the users file.
        using var md5 = Basic("md5user", "password");
        Assert.Equal(id, (await md5.GetLatestSchemaAsync(subject)).Id);
        Assert.StartsWith("https://", fixture.Server.SchemaRegistryAdvertisedUrl, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Wrong_or_missing_credentials_are_401_with_a_challenge_and_Confluents_body()
    {
        using var wrong = Basic("writer", "not-the-password");
        var refused = await Assert.ThrowsAsync<SchemaRegistryException>(() => wrong.RegisterSchemaAsync(Subject(), new Schema(Record("B"), SchemaType.Avro)));
        Assert.Equal(HttpStatusCode.Unauthorized, refused.Status);
        Assert.Equal(401, refused.ErrorCode);
        using var unknown = Basic("mallory", "writer-secret");
        Assert.Equal(HttpStatusCode.Unauthorized, (await Assert.ThrowsAsync<SchemaRegistryException>(() => unknown.GetAllSubjectsAsync())).Status);

        using var http = Http();
        foreach (var header in new AuthenticationHeaderValue?[] { null, BasicHeader("reader", "wrong"), new("Basic", "%%%"), new("Digest", "x"), new("Bearer", "not-a-jwt") })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/subjects");
            request.Headers.Authorization = header;
            using var response = await http.SendAsync(request);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            var challenges = response.Headers.WwwAuthenticate.Select(h => h.ToString()).ToList();
            Assert.Equal(["Basic realm=\"SchemaRegistry\"", "Bearer realm=\"SchemaRegistry\""], challenges);
            var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
            Assert.Equal(401, (int)body["error_code"]!);
            Assert.StartsWith("Unauthorized", (string)body["message"]!, StringComparison.Ordinal);
        }

        // The plain http listener is secured the same way.
        using var plain = new HttpClient { BaseAddress = new Uri(fixture.HttpUrl) };
        Assert.Equal(HttpStatusCode.Unauthorized, (await plain.GetAsync("/subjects")).StatusCode);
        using var authorized = new HttpRequestMessage(HttpMethod.Get, "/subjects");
        authorized.Headers.Authorization = BasicHeader("reader", "reader-secret");
        Assert.Equal(HttpStatusCode.OK, (await plain.SendAsync(authorized)).StatusCode);
    }

    [Fact]
    public async Task Roles_decide_what_a_principal_may_do_403_otherwise()
    {
        var subject = Subject();
        using var admin = Basic("admin", "admin-secret");
        var id = await admin.RegisterSchemaAsync(subject, new Schema(Record("C"), SchemaType.Avro));

        using var reader = Basic("reader", "reader-secret");
        var denied = await Assert.ThrowsAsync<SchemaRegistryException>(() => reader.RegisterSchemaAsync(subject, new Schema(Record("C2"), SchemaType.Avro)));
        Assert.Equal(HttpStatusCode.Forbidden, denied.Status);
        Assert.Equal(403, denied.ErrorCode);
        Assert.Contains("reader", denied.Message, StringComparison.Ordinal);
        // A lookup only reads.
        Assert.Equal(id, await reader.GetSchemaIdAsync(subject, new Schema(Record("C"), SchemaType.Avro)));

        using var writer = Basic("writer", "writer-secret");
        Assert.Equal(HttpStatusCode.Forbidden, (await DeleteAsync(subject, BasicHeader("writer", "writer-secret"))).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await Assert.ThrowsAsync<SchemaRegistryException>(() => writer.UpdateCompatibilityAsync(Compatibility.None))).Status);
        Assert.Equal(Compatibility.Full, await writer.UpdateCompatibilityAsync(Compatibility.Full, subject));
        Assert.Equal(HttpStatusCode.Forbidden, (await Assert.ThrowsAsync<SchemaRegistryException>(() => reader.UpdateCompatibilityAsync(Compatibility.None, subject))).Status);

        // A team that may write only its own prefix.
        using var orders = Basic("orders", "orders-secret");
        await orders.RegisterSchemaAsync(Subject("orders-"), new Schema(Record("D"), SchemaType.Avro));
        Assert.Equal(HttpStatusCode.Forbidden,
            (await Assert.ThrowsAsync<SchemaRegistryException>(() => orders.RegisterSchemaAsync(Subject("payments-"), new Schema(Record("D"), SchemaType.Avro)))).Status);
        // A schema by id (what a deserializer asks) is readable to anyone who may read some subject.
        Assert.Contains("\"C\"", (await orders.GetSchemaAsync(id)).SchemaString, StringComparison.Ordinal);

        // A user without roles authenticates but may do nothing.
        using var none = Basic("noroles", "noroles-secret");
        Assert.Equal(HttpStatusCode.Forbidden, (await Assert.ThrowsAsync<SchemaRegistryException>(() => none.GetSchemaAsync(id))).Status);

        var deleted = await DeleteAsync(subject, BasicHeader("admin", "admin-secret"));
        Assert.Equal((HttpStatusCode.OK, "[1]"), (deleted.Status, deleted.Body));
    }

    [Fact]
    public async Task Listings_show_only_the_subjects_the_principal_may_read()
    {
        var ordersSubject = Subject("orders-");
        var paymentsSubject = Subject("payments-");
        var schema = new Schema(Record("Listed" + Guid.NewGuid().ToString("N")[..8]), SchemaType.Avro);
        using var admin = Basic("admin", "admin-secret");
        var id = await admin.RegisterSchemaAsync(ordersSubject, schema);
        Assert.Equal(id, await admin.RegisterSchemaAsync(paymentsSubject, schema));

        // Confluent's client lists through GET /subjects.
        using var orders = Basic("orders", "orders-secret");
        var listed = await orders.GetAllSubjectsAsync();
        Assert.Contains(ordersSubject, listed);
        Assert.All(listed, s => Assert.StartsWith("orders-", s, StringComparison.Ordinal));

        var team = BasicHeader("orders", "orders-secret");
        Assert.Equal([ordersSubject], Strings(await GetJsonAsync($"/schemas/ids/{id}/subjects", team)));
        Assert.Equal([ordersSubject], ((JsonArray)await GetJsonAsync($"/schemas/ids/{id}/versions", team)).Select(v => (string)v!["subject"]!));
        var schemas = (JsonArray)await GetJsonAsync("/schemas", team);
        Assert.Contains(schemas, s => (string)s!["subject"]! == ordersSubject);
        Assert.All(schemas, s => Assert.StartsWith("orders-", (string)s!["subject"]!, StringComparison.Ordinal));
        Assert.Equal(["."], Strings(await GetJsonAsync("/contexts", team)));

        // An unprefixed reader sees both; a principal that may read nothing gets empty lists, not 403.
        var reader = BasicHeader("reader", "reader-secret");
        Assert.Equal([ordersSubject, paymentsSubject], Strings(await GetJsonAsync($"/schemas/ids/{id}/subjects", reader)).Order(StringComparer.Ordinal));
        var nobody = BasicHeader("noroles", "noroles-secret");
        foreach (var path in new[] { "/subjects", "/schemas", $"/schemas/ids/{id}/subjects", $"/schemas/ids/{id}/versions", "/contexts" })
            Assert.Empty((JsonArray)await GetJsonAsync(path, nobody));
    }

    private static IEnumerable<string> Strings(JsonNode array) => ((JsonArray)array).Select(s => (string)s!);

    /// <summary>The JSON body of a GET that must succeed.</summary>
    private async Task<JsonNode> GetJsonAsync(string path, AuthenticationHeaderValue credentials)
    {
        using var http = Http();
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = credentials;
        using var response = await http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET {path}: {(int)response.StatusCode} {body}");
        return JsonNode.Parse(body)!;
    }

    private async Task<(HttpStatusCode Status, string Body)> DeleteAsync(string subject, AuthenticationHeaderValue credentials)
    {
        using var http = Http();
        using var request = new HttpRequestMessage(HttpMethod.Delete, "/subjects/" + subject);
        request.Headers.Authorization = credentials;
        using var response = await http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Bearer_tokens_are_validated_as_OAUTHBEARER_tokens()
    {
        var subject = Subject();
        // service-a has the write role by name (schema.registry.authorization.user.roles).
        using var service = BearerClient(fixture.Token("service-a", DateTime.UtcNow.AddHours(1)));
        var id = await service.RegisterSchemaAsync(subject, new Schema(Record("E"), SchemaType.Avro));
        // service-b gets its roles from the token's groups claim.
        using var groupReader = BearerClient(fixture.Token("service-b", DateTime.UtcNow.AddHours(1), ["read"]));
        Assert.Equal(id, (await groupReader.GetLatestSchemaAsync(subject)).Id);
        Assert.Equal(HttpStatusCode.Forbidden,
            (await Assert.ThrowsAsync<SchemaRegistryException>(() => groupReader.RegisterSchemaAsync(subject, new Schema(Record("E2"), SchemaType.Avro)))).Status);

        using var expired = BearerClient(fixture.Token("service-a", DateTime.UtcNow.AddMinutes(-5)));
        var refused = await Assert.ThrowsAsync<SchemaRegistryException>(() => expired.GetLatestSchemaAsync(subject));
        Assert.Equal(HttpStatusCode.Unauthorized, refused.Status);
        Assert.Contains("expired", refused.Message, StringComparison.Ordinal);
        using var other = RSA.Create(2048);
        using var forged = BearerClient(fixture.Token("service-a", DateTime.UtcNow.AddHours(1), with: new RsaSecurityKey(other) { KeyId = "k1" }));
        Assert.Equal(HttpStatusCode.Unauthorized, (await Assert.ThrowsAsync<SchemaRegistryException>(() => forged.GetLatestSchemaAsync(subject))).Status);
    }

    [Fact]
    public async Task The_Avro_serializer_produces_and_the_deserializer_consumes_through_the_secured_registry()
    {
        var topic = "secured-" + Guid.NewGuid().ToString("N")[..8];
        var schema = (global::Avro.RecordSchema)global::Avro.Schema.Parse(Record("Payment"));
        using (var reader = Basic("reader", "reader-secret"))
        using (var refused = new ProducerBuilder<Null, GenericRecord>(new ProducerConfig { BootstrapServers = fixture.Server.BootstrapServers })
            .SetValueSerializer(new AvroSerializer<GenericRecord>(reader)).Build())
        {
            var record = new GenericRecord(schema);
            record.Add("id", "no");
            var error = await Assert.ThrowsAsync<ProduceException<Null, GenericRecord>>(() => refused.ProduceAsync(topic, new Message<Null, GenericRecord> { Value = record }));
            Assert.Equal(HttpStatusCode.Forbidden, Assert.IsType<SchemaRegistryException>(error.InnerException).Status);
        }
        using var writer = Basic("writer", "writer-secret");
        using (var producer = new ProducerBuilder<Null, GenericRecord>(new ProducerConfig { BootstrapServers = fixture.Server.BootstrapServers })
            .SetValueSerializer(new AvroSerializer<GenericRecord>(writer)).Build())
        {
            var record = new GenericRecord(schema);
            record.Add("id", "p1");
            Assert.Equal(PersistenceStatus.Persisted, (await producer.ProduceAsync(topic, new Message<Null, GenericRecord> { Value = record })).Status);
        }
        using var readerClient = Basic("reader", "reader-secret");
        using var consumer = new ConsumerBuilder<Ignore, GenericRecord>(new ConsumerConfig
        {
            BootstrapServers = fixture.Server.BootstrapServers,
            GroupId = "secured-" + Guid.NewGuid().ToString("N"),
            AutoOffsetReset = AutoOffsetReset.Earliest,
        }).SetValueDeserializer(new AvroDeserializer<GenericRecord>(readerClient).AsSyncOverAsync()).Build();
        consumer.Subscribe(topic);
        var consumed = consumer.Consume(TimeSpan.FromSeconds(30));
        Assert.NotNull(consumed);
        Assert.Equal("p1", consumed.Message.Value["id"]);
    }
}
