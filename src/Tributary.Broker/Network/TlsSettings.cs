using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace Tributary.Broker.Network;

/// <summary>Kafka's ssl.client.auth: whether a TLS listener asks for, or demands, a client certificate.</summary>
public enum ClientAuth
{
    None,
    Requested,
    Required,
}

/// <summary>
/// The TLS side of one listener, from Kafka's <c>ssl.*</c> settings (a <c>listener.name.&lt;name&gt;.ssl.*</c> setting wins
/// for that listener, as in Kafka):
/// <list type="bullet">
/// <item>the broker's certificate and key: <c>ssl.keystore.type</c> PEM (default) or PKCS12, from
/// <c>ssl.keystore.location</c> (a PEM file holding key and chain, or a PKCS12 file with <c>ssl.keystore.password</c>),
/// or inline PEM in <c>ssl.keystore.certificate.chain</c> and <c>ssl.keystore.key</c>, or librdkafka-style separate files
/// <c>ssl.certificate.location</c> and <c>ssl.key.location</c>; <c>ssl.key.password</c> decrypts an encrypted key;</item>
/// <item>the certificates trusted for client (and, inter-broker, server) certificates: <c>ssl.truststore.location</c>
/// (PEM or PKCS12), <c>ssl.truststore.certificates</c> (inline PEM) or <c>ssl.ca.location</c>; none means the system's;</item>
/// <item><c>ssl.client.auth</c>, <c>ssl.enabled.protocols</c> (TLSv1.2, TLSv1.3), <c>ssl.cipher.suites</c>,
/// <c>ssl.endpoint.identification.algorithm</c> (https: a broker connecting to another checks its host name) and
/// <c>ssl.principal.mapping.rules</c>.</item>
/// </list>
/// Certificate files are read again when they change (checked at most once a second, at a handshake), so a renewed
/// certificate is served without a restart; a file that no longer loads keeps the previous certificate and logs why.
/// </summary>
public sealed class TlsSettings
{
    private static readonly TimeSpan ReloadCheckInterval = TimeSpan.FromSeconds(1);

    private readonly Func<string, string?> _get;
    private readonly string _listener;
    private readonly BrokerLog? _log;
    private readonly Lock _lock = new();
    private Loaded _loaded;
    private long _nextCheck;

    /// <param name="listener">Names the endpoint in messages: "listener NAME", "schema registry".</param>
    private TlsSettings(Func<string, string?> get, string listener, BrokerLog? log)
    {
        _listener = listener;
        _log = log;
        _get = get;
        // Kafka's ssl.client.auth (required|requested|none), Confluent's registry ssl.client.authentication
        // (REQUIRED|REQUESTED|NONE) and its older boolean ssl.client.auth (true: required).
        var clientAuth = _get("ssl.client.authentication") ?? _get("ssl.client.auth") ?? "none";
        ClientAuth = clientAuth.ToLowerInvariant() switch
        {
            "required" or "true" => ClientAuth.Required,
            "requested" => ClientAuth.Requested,
            "none" or "false" => ClientAuth.None,
            var other => throw new ArgumentException($"ssl.client.auth: '{other}' is not one of required, requested, none"),
        };
        Protocols = ParseProtocols(_get("ssl.enabled.protocols") ?? "TLSv1.2,TLSv1.3");
        CipherSuites = ParseCipherSuites(_get("ssl.cipher.suites"));
        PrincipalMapper = SslPrincipalMapper.Parse(_get("ssl.principal.mapping.rules") ?? "DEFAULT");
        CheckHostName = !string.IsNullOrEmpty(_get("ssl.endpoint.identification.algorithm") ?? "https");
        _loaded = Load(previous: null) ?? throw new ArgumentException($"{listener}: no TLS certificate: set ssl.keystore.location (or ssl.keystore.certificate.chain and ssl.keystore.key)");
        _nextCheck = Environment.TickCount64 + (long)ReloadCheckInterval.TotalMilliseconds;
    }

    /// <summary>The settings of an SSL (or SASL_SSL) listener; throws naming the setting when one is wrong.</summary>
    public static TlsSettings ForListener(BrokerSettings settings, string listener, BrokerLog? log)
    {
        var prefix = $"listener.name.{listener.ToLowerInvariant()}.";
        return new(name => settings.Get(prefix + name) ?? settings.Get(name), $"listener {listener}", log);
    }

    /// <summary>
    /// The settings of a TLS endpoint whose <c>ssl.*</c> settings all carry <paramref name="prefix"/> (the schema registry's
    /// <c>schema.registry.ssl.*</c>); the broker's own <c>ssl.*</c> are not used for it.
    /// </summary>
    public static TlsSettings WithPrefix(BrokerSettings settings, string prefix, string endpoint, BrokerLog? log) =>
        new(name => settings.Get(prefix + name), endpoint, log);

    public ClientAuth ClientAuth { get; }

    public SslProtocols Protocols { get; }

    public IReadOnlyList<TlsCipherSuite>? CipherSuites { get; }

    public SslPrincipalMapper PrincipalMapper { get; }

    /// <summary>Whether a broker connecting over this listener checks the other broker's host name against its certificate.</summary>
    public bool CheckHostName { get; }

    /// <summary>The broker's certificate (the leaf), as served now.</summary>
    public X509Certificate2 Certificate => Current().Context.TargetCertificate;

    /// <summary>Options for one server handshake, with the certificate as it is now on disk.</summary>
    /// <param name="rejected">Told why a client certificate was refused, for the line that closes the connection.</param>
    public SslServerAuthenticationOptions ServerOptions(Action<string>? rejected = null)
    {
        var loaded = Current();
        var options = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = loaded.Context,
            ClientCertificateRequired = ClientAuth != ClientAuth.None,
            EnabledSslProtocols = Protocols,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = (_, certificate, chain, errors) =>
            {
                if (ValidateClient(certificate, errors)) return true;
                rejected?.Invoke(certificate is null ? "no client certificate (ssl.client.auth=required)"
                    : $"client certificate '{certificate.Subject}' refused: {errors}{ChainProblems(chain)}");
                return false;
            },
        };
        if (loaded.Trust is { } trust) options.CertificateChainPolicy = TrustPolicy(trust);
        if (CipherSuites is { } suites && !OperatingSystem.IsWindows()) options.CipherSuitesPolicy = new CipherSuitesPolicy(suites);
        return options;
    }

    /// <summary>Options for a broker connecting to another broker at <paramref name="host"/>.</summary>
    public SslClientAuthenticationOptions ClientOptions(string host)
    {
        var loaded = Current();
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = host,
            EnabledSslProtocols = Protocols,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            ClientCertificateContext = loaded.Context,
            RemoteCertificateValidationCallback = (_, _, _, errors) =>
                (CheckHostName ? errors : errors & ~SslPolicyErrors.RemoteCertificateNameMismatch) == SslPolicyErrors.None,
        };
        if (loaded.Trust is { } trust) options.CertificateChainPolicy = TrustPolicy(trust);
        if (CipherSuites is { } suites && !OperatingSystem.IsWindows()) options.CipherSuitesPolicy = new CipherSuitesPolicy(suites);
        return options;
    }

    private bool ValidateClient(X509Certificate? certificate, SslPolicyErrors errors)
    {
        if (certificate is null) return ClientAuth != ClientAuth.Required;
        // A client that offers a certificate must offer a valid one, even when it was only requested (as Java's engine).
        return (errors & ~SslPolicyErrors.RemoteCertificateNotAvailable) == SslPolicyErrors.None;
    }

    private static string ChainProblems(X509Chain? chain) =>
        chain is null || chain.ChainStatus.Length == 0 ? "" : " (" + string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Distinct()) + ")";

    private static X509ChainPolicy TrustPolicy(X509Certificate2Collection trust)
    {
        var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
        policy.CustomTrustStore.AddRange(trust);
        return policy;
    }

    private Loaded Current()
    {
        var now = Environment.TickCount64;
        if (now < Volatile.Read(ref _nextCheck)) return Volatile.Read(ref _loaded);
        lock (_lock)
        {
            if (now < _nextCheck) return _loaded;
            _nextCheck = now + (long)ReloadCheckInterval.TotalMilliseconds;
            if (_loaded.Stamp != Stamp())
            {
                try
                {
                    if (Load(_loaded) is { } reloaded)
                    {
                        _loaded = reloaded;
                        _log?.Info($"{_listener}: TLS certificate reloaded ({reloaded.Context.TargetCertificate.Subject}, valid until {reloaded.Context.TargetCertificate.NotAfter:u})");
                    }
                }
                catch (Exception e)
                {
                    // Keep serving the certificate that worked; the next change of the files is tried again.
                    _loaded = _loaded with { Stamp = Stamp() };
                    _log?.Error($"{_listener}: the changed TLS certificate files do not load ({e.Message}); still serving the previous certificate");
                }
            }
            return _loaded;
        }
    }

    /// <summary>When each certificate file was last written: a change means a reload.</summary>
    private string Stamp() => string.Join('|', new[] { "ssl.keystore.location", "ssl.certificate.location", "ssl.key.location", "ssl.truststore.location", "ssl.ca.location" }
        .Select(_get).Where(p => p is { Length: > 0 }).Select(p => File.Exists(p) ? File.GetLastWriteTimeUtc(p!).Ticks.ToString(System.Globalization.CultureInfo.InvariantCulture) : "-"));

    private Loaded? Load(Loaded? previous)
    {
        var stamp = Stamp();
        var certificate = LoadKeystore();
        if (certificate is null) return previous;
        var (leaf, chain) = certificate.Value;
        var trust = LoadTruststore();
        return new Loaded(SslStreamCertificateContext.Create(leaf, chain, offline: true), trust, stamp);
    }

    private (X509Certificate2 Leaf, X509Certificate2Collection Chain)? LoadKeystore()
    {
        var type = (_get("ssl.keystore.type") ?? "PEM").ToUpperInvariant();
        var keyPassword = _get("ssl.key.password");
        string? certificatePem = null, keyPem = null;
        if (_get("ssl.keystore.location") is { Length: > 0 } location)
        {
            switch (type)
            {
                case "PKCS12":
                    var pkcs12 = X509CertificateLoader.LoadPkcs12CollectionFromFile(location, _get("ssl.keystore.password"), X509KeyStorageFlags.Exportable);
                    var leaf = pkcs12.FirstOrDefault(c => c.HasPrivateKey) ?? throw new ArgumentException($"ssl.keystore.location: {location} holds no private key");
                    var rest = new X509Certificate2Collection();
                    foreach (var c in pkcs12) if (!ReferenceEquals(c, leaf)) rest.Add(c);
                    return (leaf, rest);
                case "PEM":
                    certificatePem = keyPem = File.ReadAllText(location);
                    break;
                default:
                    throw new ArgumentException($"ssl.keystore.type: {type} is not supported; use PEM or PKCS12 (keytool -importkeystore -deststoretype PKCS12 converts a JKS store)");
            }
        }
        else if (_get("ssl.keystore.certificate.chain") is { Length: > 0 } chainPem)
        {
            certificatePem = chainPem;
            keyPem = _get("ssl.keystore.key") ?? throw new ArgumentException("ssl.keystore.key: required with ssl.keystore.certificate.chain");
        }
        else if (_get("ssl.certificate.location") is { Length: > 0 } certificatePath)
        {
            certificatePem = File.ReadAllText(certificatePath);
            keyPem = File.ReadAllText(_get("ssl.key.location") ?? throw new ArgumentException("ssl.key.location: required with ssl.certificate.location"));
        }
        if (certificatePem is null || keyPem is null) return null;
        var certificates = new X509Certificate2Collection();
        certificates.ImportFromPem(certificatePem);
        if (certificates.Count == 0) throw new ArgumentException("the TLS keystore holds no certificate");
        var withKey = keyPassword is { Length: > 0 }
            ? X509Certificate2.CreateFromEncryptedPem(certificates[0].ExportCertificatePem(), keyPem, keyPassword)
            : X509Certificate2.CreateFromPem(certificates[0].ExportCertificatePem(), keyPem);
        // Through PKCS#12 so the key is a persisted one: Windows' TLS cannot use an ephemeral key.
        using (withKey)
        {
            var exported = X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null, X509KeyStorageFlags.Exportable);
            var chain = new X509Certificate2Collection();
            for (var i = 1; i < certificates.Count; i++) chain.Add(certificates[i]);
            return (exported, chain);
        }
    }

    private X509Certificate2Collection? LoadTruststore()
    {
        var trust = new X509Certificate2Collection();
        if (_get("ssl.truststore.location") is { Length: > 0 } location)
        {
            if ((_get("ssl.truststore.type") ?? "PEM").Equals("PKCS12", StringComparison.OrdinalIgnoreCase))
                trust.AddRange(X509CertificateLoader.LoadPkcs12CollectionFromFile(location, _get("ssl.truststore.password")));
            else trust.ImportFromPemFile(location);
        }
        if (_get("ssl.truststore.certificates") is { Length: > 0 } inline) trust.ImportFromPem(inline);
        if (_get("ssl.ca.location") is { Length: > 0 } ca) trust.ImportFromPemFile(ca);
        return trust.Count > 0 ? trust : null;
    }

    private static SslProtocols ParseProtocols(string value)
    {
        var protocols = SslProtocols.None;
        foreach (var name in value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            protocols |= name.ToUpperInvariant() switch
            {
                "TLSV1.2" => SslProtocols.Tls12,
                "TLSV1.3" => SslProtocols.Tls13,
                _ => throw new ArgumentException($"ssl.enabled.protocols: {name} is not offered; use TLSv1.2 and/or TLSv1.3"),
            };
        }
        return protocols == SslProtocols.None ? throw new ArgumentException("ssl.enabled.protocols: no protocol given") : protocols;
    }

    private static IReadOnlyList<TlsCipherSuite>? ParseCipherSuites(string? value)
    {
        if (string.IsNullOrWhiteSpace(value)) return null;
        return [.. value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(name =>
            Enum.TryParse<TlsCipherSuite>(name, ignoreCase: true, out var suite) ? suite : throw new ArgumentException($"ssl.cipher.suites: {name} is not a cipher suite name"))];
    }

    private sealed record Loaded(SslStreamCertificateContext Context, X509Certificate2Collection? Trust, string Stamp);
}
