using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Tributary.Broker;
using Tributary.Broker.Cluster;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;
using Tributary.SchemaRegistry;
using Tributary.SchemaRegistry.Security;

namespace Tributary.Server;

/// <summary>
/// The registry's <see cref="RegistrySecurity"/> from the broker's settings, with the broker's own pieces: the https
/// listeners' certificates through <see cref="TlsSettings"/> (<c>schema.registry.ssl.*</c>, reloaded when the files
/// change), Basic passwords checked against the users file, the PLAIN users of the SASL listeners and the SCRAM
/// credentials in the metadata (<c>schema.registry.basic.auth.sources</c>), bearer tokens validated as OAUTHBEARER
/// validates them (<c>schema.registry.oauthbearer.*</c>, else the broker's <c>sasl.oauthbearer.*</c>), client
/// certificates (method SSL) named through <c>schema.registry.ssl.principal.mapping.rules</c> as the broker names them.
/// <para>
/// A principal's roles: those of its users-file line, the values of the token's groups claim, and those given to its name
/// in <c>schema.registry.authorization.user.roles</c>.
/// </para>
/// </summary>
internal static class SchemaRegistrySecurity
{
    private const string Prefix = "schema.registry.";

    /// <summary>Null when the registry is plain http and open to all (the default).</summary>
    public static RegistrySecurity? Build(BrokerSettings settings, string listeners, BrokerConfig config, Func<MetadataImage> image, BrokerLog log)
    {
        var https = SchemaRegistryServer.ParseListeners(listeners).Any(l => l.Https);
        var methods = settings.Text(Prefix + "authentication.method").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(m => m.ToUpperInvariant()).Where(m => m != "NONE").ToHashSet(StringComparer.Ordinal);
        if (!https && methods.Count == 0) return null;
        var tls = https ? TlsSettings.WithPrefix(settings, Prefix, "schema registry", log) : null;
        if (methods.Contains("SSL") && tls?.ClientAuth is null or ClientAuth.None)
            throw new ArgumentException("schema.registry.authentication.method=SSL needs an https listener and schema.registry.ssl.client.auth=requested or required");
        if (!https && methods.Count > 0)
            log.Warn("schema registry: authentication over plain http sends passwords and tokens in clear; add an https listener to schema.registry.listeners");
        return new RegistrySecurity
        {
            ServerTls = tls is null ? null : () => tls.ServerOptions(),
            // TargetHost is set per request by the HTTP handler.
            ForwardingTls = tls?.ClientOptions(""),
            Authentication = methods.Count == 0 ? null : Authentication(settings, methods, tls, config, image, log),
        };
    }

    private static RegistryAuthentication Authentication(BrokerSettings settings, HashSet<string> methods, TlsSettings? tls, BrokerConfig config,
        Func<MetadataImage> image, BrokerLog log)
    {
        var userRoles = RegistryRoles.ParseEntries(settings.Text(Prefix + "authorization.user.roles"))
            .ToDictionary(e => e.Name, e => e.Values, StringComparer.Ordinal);
        RegistryPrincipal Principal(string name, IEnumerable<string> roles) =>
            RegistryPrincipal.Of(name, roles.Concat(userRoles.GetValueOrDefault(name) ?? []));
        var required = settings.Text(Prefix + "authentication.roles").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        return new RegistryAuthentication
        {
            Basic = methods.Contains("BASIC"),
            Bearer = methods.Contains("BEARER"),
            Realm = settings.Text(Prefix + "authentication.realm"),
            CheckPassword = methods.Contains("BASIC") ? PasswordCheck(settings, config, image, log, Principal) : null,
            ValidateToken = methods.Contains("BEARER") ? TokenCheck(settings, log, Principal) : null,
            CertificatePrincipal = methods.Contains("SSL") ? CertificateCheck(tls!.PrincipalMapper, Principal) : null,
            FailureDelay = TimeSpan.FromMilliseconds(settings.Int(Prefix + "authentication.failure.delay.ms")),
            Anonymous = settings.Bool(Prefix + "anonymous.access") ? Principal(settings.Text(Prefix + "anonymous.principal"), []) : null,
            RequiredRoles = required.Length == 0 || required.Contains("*") ? null : required.ToHashSet(StringComparer.Ordinal),
            Roles = settings.Bool(Prefix + "authorization.enable") ? RegistryRoles.Parse(settings.Text(Prefix + "authorization.roles")) : null,
        };
    }

    /// <summary>
    /// The sources in order; the first that knows the user decides (a wrong password in the users file does not fall
    /// through to SCRAM). Every source compares in constant time.
    /// </summary>
    private static Func<string, string, RegistryPrincipal?> PasswordCheck(BrokerSettings settings, BrokerConfig config, Func<MetadataImage> image, BrokerLog log,
        Func<string, IEnumerable<string>, RegistryPrincipal> principal)
    {
        var checks = new List<PasswordSource>();
        foreach (var source in settings.Text(Prefix + "basic.auth.sources").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            switch (source.ToLowerInvariant())
            {
                case "file" when settings.Get(Prefix + "basic.auth.users.file") is { Length: > 0 } path:
                    checks.Add(new RegistryUsersFile(path, log.Error).Check);
                    break;
                case "plain":
                    var users = new Dictionary<string, byte[]>(StringComparer.Ordinal);
                    foreach (var listener in config.Listeners)
                        if (ListenerSecurity.ProtocolOf(settings, listener.Name) is SecurityProtocol.SaslPlaintext or SecurityProtocol.SaslSsl)
                            foreach (var (name, password) in SaslSettings.PlainUsersOf(settings, listener.Name))
                                users.TryAdd(name, SHA256.HashData(Encoding.UTF8.GetBytes(password)));
                    checks.Add((string name, string password, out bool known) =>
                    {
                        known = users.TryGetValue(name, out var digest);
                        return known && CryptographicOperations.FixedTimeEquals(digest, SHA256.HashData(Encoding.UTF8.GetBytes(password))) ? [] : null;
                    });
                    break;
                case "scram":
                    checks.Add(new ScramPasswords(image).Check);
                    break;
            }
        }
        if (checks.Count == 0)
            throw new ArgumentException("schema.registry.authentication.method=BASIC: no users; set schema.registry.basic.auth.users.file or include plain/scram in schema.registry.basic.auth.sources");
        return (name, password) =>
        {
            foreach (var check in checks)
            {
                var roles = check(name, password, out var known);
                if (known) return roles is null ? null : principal(name, roles);
            }
            // Hash anyway, so an unknown user takes as long as a known one with a wrong password.
            _ = SHA256.HashData(Encoding.UTF8.GetBytes(password));
            return null;
        };
    }

    /// <summary>A user's roles when the password is right, else null; <paramref name="known"/>: the source has the user.</summary>
    private delegate string[]? PasswordSource(string name, string password, out bool known);

    /// <summary>
    /// A verified client certificate's principal: its subject in RFC 2253 form through the mapping rules, as a TLS
    /// listener names its clients (without Kafka's <c>User:</c>, as the other registry principals).
    /// </summary>
    private static Func<X509Certificate2, RegistryPrincipal> CertificateCheck(SslPrincipalMapper mapper, Func<string, IEnumerable<string>, RegistryPrincipal> principal) =>
        certificate =>
        {
            try
            {
                return principal(mapper.Map(SslPrincipalMapper.Rfc2253(certificate.SubjectName)), []);
            }
            catch (ArgumentException e)
            {
                throw new RegistryAuthentication.InvalidCredentialsException("Unauthorized: " + e.Message);
            }
        };

    private static Func<string, RegistryPrincipal> TokenCheck(BrokerSettings settings, BrokerLog log, Func<string, IEnumerable<string>, RegistryPrincipal> principal)
    {
        var oauth = new OAuthBearerSettings(name => settings.Get(Prefix + name["sasl.".Length..]) ?? settings.Get(name), log);
        var groupsClaim = settings.Text(Prefix + "oauthbearer.groups.claim.name");
        return token =>
        {
            try
            {
                var (jwt, subject) = oauth.Validate(token);
                IEnumerable<string> groups = jwt.TryGetPayloadValue<string[]>(groupsClaim, out var list) ? list
                    : jwt.TryGetPayloadValue<string>(groupsClaim, out var one) ? [one] : [];
                return principal(subject, groups);
            }
            catch (SaslAuthenticationException e)
            {
                throw new RegistryAuthentication.InvalidCredentialsException(e.Message.Replace("Authentication failed: ", "Unauthorized: ", StringComparison.Ordinal));
            }
        };
    }

    /// <summary>
    /// Basic passwords checked against SCRAM credentials (SHA-256 first, then SHA-512): the password salted with the
    /// credential's salt and iterations must give its StoredKey. Salting costs thousands of hash rounds, so a verified
    /// password is remembered (by its digest) while the credential stays the same.
    /// </summary>
    private sealed class ScramPasswords(Func<MetadataImage> image)
    {
        private const int MaxRemembered = 10_000;
        private readonly ConcurrentDictionary<(string User, string Mechanism), (byte[] PasswordDigest, byte[] StoredKey)> _verified = new();

        public string[]? Check(string name, string password, out bool known)
        {
            var credential = Credential(name);
            known = credential is not null;
            if (credential is null) return null;
            var digest = SHA256.HashData(Encoding.UTF8.GetBytes(password));
            if (_verified.TryGetValue((name, credential.Mechanism), out var verified) && verified.StoredKey.AsSpan().SequenceEqual(credential.StoredKey)
                && CryptographicOperations.FixedTimeEquals(verified.PasswordDigest, digest))
                return [];
            var computed = ScramCredential.FromPassword(credential.Mechanism, password, credential.Salt, credential.Iterations);
            if (!CryptographicOperations.FixedTimeEquals(computed.StoredKey, credential.StoredKey)) return null;
            if (_verified.Count >= MaxRemembered) _verified.Clear();
            _verified[(name, credential.Mechanism)] = (digest, credential.StoredKey);
            return [];
        }

        private ScramCredential? Credential(string name) =>
            image().ScramCredential(name, SaslMechanisms.ScramSha256) ?? image().ScramCredential(name, SaslMechanisms.ScramSha512);
    }
}
