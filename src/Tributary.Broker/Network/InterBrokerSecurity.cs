using System.Security.Cryptography;
using System.Text;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Network;

/// <summary>
/// How this broker connects to the others through the inter-broker listener: TLS when it is SSL or SASL_SSL (with the
/// listener's ssl.* settings), then SASL when it is SASL_PLAINTEXT or SASL_SSL, with
/// <c>sasl.mechanism.inter.broker.protocol</c> (PLAIN or SCRAM) and the username and password of that mechanism's
/// <c>sasl.jaas.config</c> on the listener, as Kafka's brokers log in to each other.
/// </summary>
public sealed class InterBrokerSecurity
{
    private InterBrokerSecurity(TlsSettings? tls, string? mechanism, string? user, string? password)
    {
        Tls = tls;
        Mechanism = mechanism;
        _user = user;
        _password = password;
    }

    private readonly string? _user;
    private readonly string? _password;

    public TlsSettings? Tls { get; }

    /// <summary>The SASL mechanism to log in with; null on a listener without SASL.</summary>
    public string? Mechanism { get; }

    /// <summary>Null when the inter-broker listener is PLAINTEXT (nothing to do).</summary>
    public static InterBrokerSecurity? Resolve(BrokerSettings settings, string listener, BrokerLog? log)
    {
        var protocol = ListenerSecurity.ProtocolOf(settings, listener);
        if (protocol == SecurityProtocol.Plaintext) return null;
        var tls = protocol is SecurityProtocol.Ssl or SecurityProtocol.SaslSsl ? TlsSettings.ForListener(settings, listener, log) : null;
        if (protocol is SecurityProtocol.Ssl) return new InterBrokerSecurity(tls, null, null, null);
        var mechanism = settings.Text("sasl.mechanism.inter.broker.protocol").ToUpperInvariant();
        var prefix = $"listener.name.{listener.ToLowerInvariant()}.";
        var jaas = settings.Get($"{prefix}{mechanism.ToLowerInvariant()}.sasl.jaas.config") ?? settings.Get(prefix + "sasl.jaas.config") ?? settings.Get("sasl.jaas.config");
        var options = SaslSettings.JaasOptions(jaas).ToDictionary(o => o.Name, o => o.Value, StringComparer.Ordinal);
        if (!options.TryGetValue("username", out var user) || !options.TryGetValue("password", out var password))
            throw new ArgumentException($"listener {listener} is the inter-broker listener and uses SASL: its {mechanism.ToLowerInvariant()}.sasl.jaas.config needs username and password for the brokers to log in to each other");
        return new InterBrokerSecurity(tls, mechanism, user, password);
    }

    /// <summary>Logs in over a freshly connected channel (SaslHandshake v1, then SaslAuthenticate steps).</summary>
    internal async Task AuthenticateAsync(Replication.BrokerChannel channel, CancellationToken cancellationToken)
    {
        if (Mechanism is null) return;
        var handshake = await channel.SendAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = Mechanism }, 1, cancellationToken).ConfigureAwait(false);
        if (handshake.ErrorCode != 0) throw new IOException($"SASL handshake for {Mechanism} refused ({(ErrorCode)handshake.ErrorCode}); the listener offers {string.Join(", ", handshake.Mechanisms)}");
        if (Mechanism == SaslMechanisms.Plain)
        {
            await StepAsync(channel, Encoding.UTF8.GetBytes($"\0{_user}\0{_password}"), cancellationToken).ConfigureAwait(false);
            return;
        }
        var hash = ScramCredential.Hash(Mechanism);
        var clientNonce = Convert.ToBase64String(RandomNumberGenerator.GetBytes(24));
        var clientFirstBare = $"n={_user!.Replace("=", "=3D", StringComparison.Ordinal).Replace(",", "=2C", StringComparison.Ordinal)},r={clientNonce}";
        var serverFirst = Encoding.UTF8.GetString(await StepAsync(channel, Encoding.UTF8.GetBytes("n,," + clientFirstBare), cancellationToken).ConfigureAwait(false));
        var attributes = serverFirst.Split(',').Where(p => p.Length > 2 && p[1] == '=').ToDictionary(p => p[..1], p => p[2..], StringComparer.Ordinal);
        if (!attributes.TryGetValue("r", out var nonce) || !nonce.StartsWith(clientNonce, StringComparison.Ordinal)
            || !attributes.TryGetValue("s", out var salt) || !attributes.TryGetValue("i", out var iterations))
            throw new IOException("SCRAM: the broker's first message is malformed");
        var saltedPassword = ScramCredential.SaltedPassword(Mechanism, _password!, Convert.FromBase64String(salt), int.Parse(iterations, System.Globalization.CultureInfo.InvariantCulture));
        var withoutProof = $"c=biws,r={nonce}";
        var authMessage = Encoding.UTF8.GetBytes($"{clientFirstBare},{serverFirst},{withoutProof}");
        var clientKey = ScramCredential.Hmac(hash, saltedPassword, "Client Key"u8);
        var signature = ScramCredential.Hmac(hash, ScramCredential.Digest(hash, clientKey), authMessage);
        for (var i = 0; i < clientKey.Length; i++) clientKey[i] ^= signature[i];
        var serverFinal = Encoding.UTF8.GetString(await StepAsync(channel, Encoding.UTF8.GetBytes($"{withoutProof},p={Convert.ToBase64String(clientKey)}"), cancellationToken).ConfigureAwait(false));
        var expected = "v=" + Convert.ToBase64String(ScramCredential.Hmac(hash, ScramCredential.Hmac(hash, saltedPassword, "Server Key"u8), authMessage));
        if (serverFinal != expected) throw new IOException("SCRAM: the broker's signature is wrong");
    }

    private static async Task<byte[]> StepAsync(Replication.BrokerChannel channel, byte[] token, CancellationToken cancellationToken)
    {
        var response = await channel.SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest { AuthBytes = token }, 1, cancellationToken).ConfigureAwait(false);
        if (response.ErrorCode != 0) throw new IOException($"SASL authentication to another broker failed: {response.ErrorMessage}");
        return response.AuthBytes;
    }
}
