using Tributary.Protocol.Messages;

namespace Tributary.Broker.Security;

/// <summary>
/// One connection's SASL state on a SASL listener, as Kafka's SaslServerAuthenticator keeps it: a handshake names the
/// mechanism, then tokens go back and forth (in SaslAuthenticate requests after a v1 handshake, or as bare size-prefixed
/// frames after a v0 one) until the exchange succeeds or fails. Until then only ApiVersions, SaslHandshake and
/// SaslAuthenticate are served. With <c>connections.max.reauth.ms</c> (or an expiring OAuth token) the session has a
/// lifetime (KIP-368): the client re-authenticates on the same connection with the same mechanism and principal, and a
/// request after expiry closes the connection. The connection calls in from its reader only, one frame at a time.
/// </summary>
internal sealed class SaslSession(SaslSettings settings, TimeProvider time, Diagnostics.BrokerMetrics? metrics)
{
    private ISaslExchange? _exchange;
    private string? _mechanism;
    private long _expiresAt = long.MaxValue;

    public SaslSettings Settings => settings;

    /// <summary>The authenticated principal ("User:name"); null until the first authentication succeeds.</summary>
    public string? Principal { get; private set; }

    public bool Authenticated => Principal is not null;

    /// <summary>True after a handshake v0 while the exchange runs: the next frames are bare tokens.</summary>
    public bool ExpectsRawTokens { get; private set; }

    /// <summary>Set when the authentication failed: the connection closes once the answer is sent.</summary>
    public bool Failed { get; private set; }

    /// <summary>Why it failed, for the connection's log line.</summary>
    public string? Failure { get; private set; }

    public bool Expired => time.GetUtcNow().ToUnixTimeMilliseconds() >= _expiresAt;

    public SaslHandshakeResponse Handshake(string mechanism, short version)
    {
        var response = new SaslHandshakeResponse { Mechanisms = [.. settings.Mechanisms] };
        if (_exchange is not null && !_exchange.Complete)
            return Fail(response, ErrorCode.IllegalSaslState, "SaslHandshake while an authentication is in progress");
        if (!settings.Mechanisms.Contains(mechanism))
            return Fail(response, ErrorCode.UnsupportedSaslMechanism, $"unsupported SASL mechanism {mechanism}");
        if (_mechanism is not null && _mechanism != mechanism)
            return Fail(response, ErrorCode.IllegalSaslState, $"re-authentication must use {_mechanism}, not {mechanism}");
        _mechanism = mechanism;
        _exchange = settings.Start(mechanism);
        ExpectsRawTokens = version == 0;
        return response;
    }

    private SaslHandshakeResponse Fail(SaslHandshakeResponse response, ErrorCode error, string why)
    {
        Failed = true;
        Failure = why;
        response.ErrorCode = (short)error;
        return response;
    }

    /// <summary>One client token: the server's token, or the error that ends the connection.</summary>
    public (ErrorCode Error, string? Message, byte[] Token, long SessionLifetimeMs) Authenticate(ReadOnlySpan<byte> token)
    {
        if (_exchange is null || _exchange.Complete)
        {
            Failed = true;
            Failure = "SaslAuthenticate without a SaslHandshake before it";
            return (ErrorCode.IllegalSaslState, "Unexpected SaslAuthenticate: send SaslHandshake first", [], 0);
        }
        byte[] reply;
        try
        {
            reply = _exchange.Evaluate(token);
        }
        catch (SaslAuthenticationException e)
        {
            return AuthenticationFailed(e.Message);
        }
        if (!_exchange.Complete) return (ErrorCode.None, null, reply, 0);
        var principal = "User:" + _exchange.User;
        if (Principal is not null && Principal != principal)
            return AuthenticationFailed($"Cannot change principals during re-authentication from {Principal}: {principal}");
        Principal = principal;
        ExpectsRawTokens = false;
        metrics?.Authenticated(success: true);
        var now = time.GetUtcNow();
        var lifetime = settings.MaxReauthMs > 0 ? settings.MaxReauthMs : long.MaxValue;
        if (_exchange.CredentialExpires is { } expires) lifetime = Math.Min(lifetime, Math.Max(0, (long)(expires - now).TotalMilliseconds));
        _expiresAt = lifetime == long.MaxValue ? long.MaxValue : now.ToUnixTimeMilliseconds() + lifetime;
        return (ErrorCode.None, null, reply, lifetime == long.MaxValue ? 0 : lifetime);
    }

    private (ErrorCode, string?, byte[], long) AuthenticationFailed(string message)
    {
        Failed = true;
        Failure = $"authentication with {_mechanism} failed: {message}";
        metrics?.Authenticated(success: false);
        return (ErrorCode.SaslAuthenticationFailed, message, [], 0);
    }
}
