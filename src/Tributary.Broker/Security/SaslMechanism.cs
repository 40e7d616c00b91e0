namespace Tributary.Broker.Security;

/// <summary>
/// The server side of one SASL exchange (one mechanism, one authentication): each client token in, a challenge out,
/// until it succeeds (the principal is known) or fails (an <see cref="SaslAuthenticationException"/> with the message the
/// client is sent). A new one is made for every authentication, re-authentication included.
/// </summary>
internal interface ISaslExchange
{
    /// <summary>The next server token; <see cref="Complete"/> says whether the exchange ended with it.</summary>
    /// <exception cref="SaslAuthenticationException">The credentials are wrong, or the token is malformed.</exception>
    byte[] Evaluate(ReadOnlySpan<byte> response);

    bool Complete { get; }

    /// <summary>The authenticated user's name, once complete.</summary>
    string? User { get; }

    /// <summary>When the credential used stops being valid (an OAuth token's expiry); null when it does not expire.</summary>
    DateTimeOffset? CredentialExpires { get; }
}

/// <summary>A failed authentication: the message goes back to the client as SaslAuthenticate's error message.</summary>
public sealed class SaslAuthenticationException(string message) : Exception(message);

/// <summary>Kafka's SASL mechanism names.</summary>
public static class SaslMechanisms
{
    public const string Plain = "PLAIN";
    public const string ScramSha256 = "SCRAM-SHA-256";
    public const string ScramSha512 = "SCRAM-SHA-512";
    public const string OAuthBearer = "OAUTHBEARER";

    public static readonly IReadOnlyList<string> All = [Plain, ScramSha256, ScramSha512, OAuthBearer];

    public static bool IsScram(string mechanism) => mechanism is ScramSha256 or ScramSha512;
}
