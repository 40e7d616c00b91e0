using System.Security.Cryptography;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Tributary.Broker;
using Tributary.Broker.Tests.Security;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>
/// One broker whose registry listens on https (a test CA's certificate) and plain http, takes HTTP Basic against a users
/// file and bearer JWTs signed by a test key, and authorizes by role: admin, writer and reader, a team that may write
/// only subjects starting with "orders-", and a token subject given the write role by name.
/// </summary>
public sealed class SecuredRegistryFixture : IAsyncLifetime
{
    public const string Issuer = "https://issuer.example";
    public const string Audience = "schema-registry";

    private readonly RSA _key = RSA.Create(2048);

    internal TestCertificates Certificates { get; } = new();

    public TributaryServer Server { get; private set; } = null!;

    /// <summary>What Confluent's .NET client needs as SslCaLocation: the server certificate's direct issuer.</summary>
    public string ClientCaLocation { get; private set; } = null!;

    public string HttpsUrl => Server.SchemaRegistryUrls.Single(u => u.StartsWith("https://", StringComparison.Ordinal));

    public string HttpUrl => Server.SchemaRegistryUrls.Single(u => u.StartsWith("http://", StringComparison.Ordinal));

    public async Task InitializeAsync()
    {
        var users = Path.Combine(Certificates.Directory, "registry-users.properties");
        await File.WriteAllTextAsync(users, """
            # Confluent's (Jetty's) property file: name: password,role...
            admin: admin-secret,admin
            writer: writer-secret,write
            reader: reader-secret,read
            orders: orders-secret,orders-team
            md5user: MD5:5f4dcc3b5aa765d61d8327deb882cf99,read
            noroles=noroles-secret
            """);
        var jwk = JsonWebKeyConverter.ConvertFromRSASecurityKey(new RsaSecurityKey(_key.ExportParameters(false)) { KeyId = "k1" });
        var jwks = Path.Combine(Certificates.Directory, "jwks.json");
        await File.WriteAllTextAsync(jwks, $$"""{"keys":[{"kty":"RSA","kid":"k1","use":"sig","alg":"RS256","n":"{{jwk.N}}","e":"{{jwk.E}}"}]}""");
        var (keystore, intermediate) = Certificates.ServerKeystoreViaIntermediate();
        ClientCaLocation = intermediate;
        Server = await TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string>
        {
            ["schema.registry.listeners"] = "https://127.0.0.1:0,http://127.0.0.1:0",
            ["schema.registry.ssl.keystore.location"] = keystore,
            ["schema.registry.ssl.truststore.location"] = Certificates.CaPath,
            ["schema.registry.authentication.method"] = "BASIC,BEARER",
            ["schema.registry.basic.auth.users.file"] = users,
            ["schema.registry.authorization.roles"] = "admin=admin;write=write;read=read;orders-team=write:orders-",
            ["schema.registry.authorization.user.roles"] = "service-a=write",
            ["schema.registry.oauthbearer.jwks.endpoint.url"] = new Uri(jwks).AbsoluteUri,
            ["schema.registry.oauthbearer.expected.issuer"] = Issuer,
            ["schema.registry.oauthbearer.expected.audience"] = Audience,
        });
        Assert.Equal(SchemaRegistryStatus.Running, Server.State.SchemaRegistryStatus);
    }

    /// <summary>A token signed by the JWKS's key (or <paramref name="with"/>), for <paramref name="subject"/>.</summary>
    public string Token(string subject, DateTime expires, string[]? groups = null, SecurityKey? with = null)
    {
        var claims = new Dictionary<string, object> { ["sub"] = subject };
        if (groups is not null) claims["groups"] = groups;
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = Issuer,
            Audience = Audience,
            Claims = claims,
            NotBefore = expires.AddHours(-2),
            IssuedAt = expires.AddHours(-2),
            Expires = expires,
            SigningCredentials = new SigningCredentials(with ?? new RsaSecurityKey(_key) { KeyId = "k1" }, SecurityAlgorithms.RsaSha256),
        });
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        Certificates.Dispose();
        _key.Dispose();
    }
}
