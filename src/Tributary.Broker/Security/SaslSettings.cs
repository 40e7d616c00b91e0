using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace Tributary.Broker.Security;

/// <summary>
/// The SASL side of one SASL_PLAINTEXT or SASL_SSL listener, from Kafka's settings; each can be given for the listener
/// (<c>listener.name.&lt;name&gt;.</c>) and, where Kafka allows, for one mechanism
/// (<c>listener.name.&lt;name&gt;.&lt;mechanism&gt;.sasl.jaas.config</c>):
/// <list type="bullet">
/// <item><c>sasl.enabled.mechanisms</c>: what SaslHandshake offers (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER);</item>
/// <item>PLAIN users: <c>user_NAME="password"</c> options of the PLAIN mechanism's <c>sasl.jaas.config</c>, as Kafka's
/// PlainLoginModule reads them, and/or <c>sasl.plain.users.file</c> (name=password lines);</item>
/// <item>SCRAM credentials: in the cluster metadata, managed with AlterUserScramCredentials;</item>
/// <item>OAUTHBEARER: <see cref="OAuthBearerSettings"/>;</item>
/// <item><c>connections.max.reauth.ms</c> (KIP-368; 0: sessions do not expire) and
/// <c>connection.failed.authentication.delay.ms</c> (a failed login is answered after this long).</item>
/// </list>
/// </summary>
public sealed partial class SaslSettings
{
    private readonly Func<string, ScramCredential?>[] _scram;
    private readonly OAuthBearerSettings? _oauth;
    private readonly byte[] _fakeSaltKey = RandomNumberGenerator.GetBytes(32);

    private SaslSettings(BrokerSettings settings, string listener, Func<Cluster.MetadataImage> image, BrokerLog? log)
    {
        Listener = listener;
        var prefix = $"listener.name.{listener.ToLowerInvariant()}.";
        string? Get(string name) => settings.Get(prefix + name) ?? settings.Get(name);
        string? ForMechanism(string mechanism, string name) => settings.Get($"{prefix}{mechanism.ToLowerInvariant()}.{name}") ?? Get(name);

        Mechanisms = [.. (Get("sasl.enabled.mechanisms") ?? "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512")
            .Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(m => m.ToUpperInvariant())];
        foreach (var mechanism in Mechanisms)
            if (!SaslMechanisms.All.Contains(mechanism))
                throw new ArgumentException($"sasl.enabled.mechanisms: {mechanism} is not served (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER)");
        if (Mechanisms.Count == 0) throw new ArgumentException($"sasl.enabled.mechanisms: listener {listener} enables no mechanism");

        PlainUsers = Mechanisms.Contains(SaslMechanisms.Plain) ? PlainUsersOf(settings, listener) : new Dictionary<string, string>();
        _scram = [name => image().ScramCredential(name, SaslMechanisms.ScramSha256), name => image().ScramCredential(name, SaslMechanisms.ScramSha512)];
        if (Mechanisms.Contains(SaslMechanisms.OAuthBearer)) _oauth = new OAuthBearerSettings(name => ForMechanism(SaslMechanisms.OAuthBearer, name), log);
        MaxReauthMs = long.Parse(Get("connections.max.reauth.ms") ?? "0", System.Globalization.CultureInfo.InvariantCulture);
        FailedAuthenticationDelay = TimeSpan.FromMilliseconds(int.Parse(Get("connection.failed.authentication.delay.ms") ?? "100", System.Globalization.CultureInfo.InvariantCulture));
        ClientCredentials = JaasOptions(ForMechanism(Get("sasl.mechanism.inter.broker.protocol") ?? SaslMechanisms.Plain, "sasl.jaas.config"))
            .Where(o => o.Name is "username" or "password").ToDictionary(o => o.Name, o => o.Value);
    }

    /// <summary>The PLAIN users of a listener: its PLAIN jaas config's user_NAME options, then <c>sasl.plain.users.file</c>.</summary>
    public static IReadOnlyDictionary<string, string> PlainUsersOf(BrokerSettings settings, string listener)
    {
        var prefix = $"listener.name.{listener.ToLowerInvariant()}.";
        string? Get(string name) => settings.Get(prefix + name) ?? settings.Get(name);
        var users = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in JaasOptions(settings.Get($"{prefix}plain.sasl.jaas.config") ?? Get("sasl.jaas.config")))
            if (name.StartsWith("user_", StringComparison.Ordinal)) users[name[5..]] = value;
        if (Get("sasl.plain.users.file") is { Length: > 0 } file)
            foreach (var (name, value) in BrokerConfig.ParseProperties(File.ReadAllText(file))) users[name] = value;
        return users;
    }

    public static SaslSettings ForListener(BrokerSettings settings, string listener, Func<Cluster.MetadataImage> image, BrokerLog? log) =>
        new(settings, listener, image, log);

    public string Listener { get; }

    public IReadOnlyList<string> Mechanisms { get; }

    /// <summary>PLAIN's users and passwords.</summary>
    public IReadOnlyDictionary<string, string> PlainUsers { get; }

    /// <summary>KIP-368: sessions last at most this long (0: no limit), then the client must re-authenticate.</summary>
    public long MaxReauthMs { get; }

    public TimeSpan FailedAuthenticationDelay { get; }

    /// <summary>The username and password of the jaas config's login module: what this broker presents to the others.</summary>
    public IReadOnlyDictionary<string, string> ClientCredentials { get; }

    internal ISaslExchange Start(string mechanism) => mechanism switch
    {
        SaslMechanisms.Plain => new PlainExchange(PlainUsers),
        SaslMechanisms.ScramSha256 => new ScramExchange(mechanism, _scram[0], _fakeSaltKey),
        SaslMechanisms.ScramSha512 => new ScramExchange(mechanism, _scram[1], _fakeSaltKey),
        SaslMechanisms.OAuthBearer => new OAuthBearerExchange(_oauth!),
        _ => throw new ArgumentException(mechanism),
    };

    /// <summary>The key="value" options of a JAAS login module line (<c>Module required a="x" b="y";</c>).</summary>
    public static IEnumerable<(string Name, string Value)> JaasOptions(string? jaas)
    {
        if (string.IsNullOrWhiteSpace(jaas)) yield break;
        foreach (Match m in JaasOption().Matches(jaas))
            yield return (m.Groups[1].Value, m.Groups[2].Success ? Regex.Unescape(m.Groups[2].Value) : m.Groups[3].Value);
    }

    [GeneratedRegex("""([A-Za-z0-9_.\-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;]+))""")]
    private static partial Regex JaasOption();
}
