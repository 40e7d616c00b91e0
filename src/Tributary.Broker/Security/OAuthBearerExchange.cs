using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Tributary.Broker.Security;

/// <summary>
/// SASL OAUTHBEARER (RFC 7628) as Kafka's OAuthBearerValidatorCallbackHandler validates it: the client's first message
/// carries "auth=Bearer &lt;JWT&gt;"; the token's signature is checked against the JWKS (<see cref="JwksSource"/>), and its
/// issuer, audience and expiry against the settings; the principal is the token's subject claim. The token's expiry
/// bounds the session (KIP-368).
/// </summary>
internal sealed class OAuthBearerExchange(OAuthBearerSettings settings) : ISaslExchange
{
    public bool Complete { get; private set; }

    public string? User { get; private set; }

    public DateTimeOffset? CredentialExpires { get; private set; }

    public byte[] Evaluate(ReadOnlySpan<byte> response)
    {
        // gs2-header "n,[a=authzid]," then kvpairs separated by 0x01, ending in 0x01 0x01.
        var text = Encoding.UTF8.GetString(response);
        if (Complete) throw new SaslAuthenticationException("Unexpected OAUTHBEARER message after authentication");
        var parts = text.Split('\u0001');
        if (parts.Length < 3 || !parts[0].StartsWith("n,", StringComparison.Ordinal))
            throw new SaslAuthenticationException("Invalid OAUTHBEARER client first message");
        string? token = null;
        foreach (var pair in parts.Skip(1))
        {
            if (pair.StartsWith("auth=", StringComparison.Ordinal))
            {
                var value = pair[5..];
                if (!value.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) throw new SaslAuthenticationException("Invalid OAUTHBEARER auth value: expected 'Bearer <token>'");
                token = value[7..].Trim();
            }
        }
        if (string.IsNullOrEmpty(token)) throw new SaslAuthenticationException("Invalid OAUTHBEARER client first message: no token");
        var (jwt, subject) = settings.Validate(token);
        var authorizationId = parts[0].Length > 2 && parts[0][2..].StartsWith("a=", StringComparison.Ordinal) ? parts[0][4..].TrimEnd(',') : "";
        if (authorizationId.Length > 0 && authorizationId != subject)
            throw new SaslAuthenticationException("Authentication failed: the authorization id differs from the token's subject");
        User = subject;
        CredentialExpires = jwt.ValidTo == DateTime.MinValue ? null : new DateTimeOffset(jwt.ValidTo, TimeSpan.Zero);
        Complete = true;
        return [];
    }
}

/// <summary>
/// Kafka's OAUTHBEARER validation settings: <c>sasl.oauthbearer.jwks.endpoint.url</c> (https://, http:// or file:), its
/// refresh interval <c>sasl.oauthbearer.jwks.endpoint.refresh.ms</c>, <c>sasl.oauthbearer.expected.issuer</c>,
/// <c>sasl.oauthbearer.expected.audience</c> (a list), <c>sasl.oauthbearer.sub.claim.name</c> and
/// <c>sasl.oauthbearer.clock.skew.seconds</c>. The key set is loaded at start and again every refresh interval (a
/// file also when it changes); a failed refresh keeps the keys it had.
/// </summary>
internal sealed class OAuthBearerSettings
{
    private readonly Func<string, string?> _get;
    private readonly string _url;
    private readonly TimeSpan _refresh;
    private readonly Lock _lock = new();
    private readonly BrokerLog? _log;
    private IList<SecurityKey> _keys;
    private DateTime _loaded;
    private DateTime _fileStamp;

    public OAuthBearerSettings(Func<string, string?> get, BrokerLog? log)
    {
        _get = get;
        _log = log;
        _url = get("sasl.oauthbearer.jwks.endpoint.url")
            ?? throw new ArgumentException("sasl.oauthbearer.jwks.endpoint.url: required for OAUTHBEARER (the JWKS that signs the tokens)");
        _refresh = TimeSpan.FromMilliseconds(long.Parse(get("sasl.oauthbearer.jwks.endpoint.refresh.ms") ?? "3600000", System.Globalization.CultureInfo.InvariantCulture));
        SubjectClaim = get("sasl.oauthbearer.sub.claim.name") ?? "sub";
        _keys = Load();
        _loaded = DateTime.UtcNow;
    }

    public string SubjectClaim { get; }

    /// <summary>A token's signature, times, issuer and audience checked; the token and its subject claim.</summary>
    /// <exception cref="SaslAuthenticationException">The token is not valid; the message says why.</exception>
    public (JsonWebToken Token, string Subject) Validate(string token)
    {
        var result = new JsonWebTokenHandler().ValidateTokenAsync(token, ValidationParameters()).GetAwaiter().GetResult();
        if (!result.IsValid)
            throw new SaslAuthenticationException($"Authentication failed: the OAuth token is not valid ({Reason(result.Exception)})");
        var jwt = (JsonWebToken)result.SecurityToken;
        if (!jwt.TryGetPayloadValue<string>(SubjectClaim, out var subject) || string.IsNullOrEmpty(subject))
            throw new SaslAuthenticationException($"Authentication failed: the OAuth token has no '{SubjectClaim}' claim");
        return (jwt, subject);
    }

    private static string Reason(Exception? e) => e switch
    {
        SecurityTokenExpiredException => "expired",
        SecurityTokenNotYetValidException => "not yet valid",
        SecurityTokenInvalidSignatureException or SecurityTokenSignatureKeyNotFoundException => "bad signature",
        SecurityTokenInvalidIssuerException => "wrong issuer",
        SecurityTokenInvalidAudienceException => "wrong audience",
        SecurityTokenMalformedException or ArgumentException => "malformed",
        null => "rejected",
        _ => e.GetType().Name.Replace("Exception", "", StringComparison.Ordinal),
    };

    public TokenValidationParameters ValidationParameters()
    {
        var audiences = (_get("sasl.oauthbearer.expected.audience") ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var issuer = _get("sasl.oauthbearer.expected.issuer");
        return new TokenValidationParameters
        {
            IssuerSigningKeys = Keys(),
            ValidateIssuerSigningKey = true,
            RequireSignedTokens = true,
            RequireExpirationTime = true,
            ValidateLifetime = true,
            ClockSkew = TimeSpan.FromSeconds(int.Parse(_get("sasl.oauthbearer.clock.skew.seconds") ?? "30", System.Globalization.CultureInfo.InvariantCulture)),
            ValidateIssuer = issuer is { Length: > 0 },
            ValidIssuer = issuer,
            ValidateAudience = audiences.Length > 0,
            ValidAudiences = audiences,
        };
    }

    private IList<SecurityKey> Keys()
    {
        lock (_lock)
        {
            var fileChanged = FilePath() is { } path && File.Exists(path) && File.GetLastWriteTimeUtc(path) != _fileStamp;
            if (DateTime.UtcNow - _loaded < _refresh && !fileChanged) return _keys;
            _loaded = DateTime.UtcNow;
            try
            {
                _keys = Load();
            }
            catch (Exception e)
            {
                _log?.Error($"OAUTHBEARER: reloading the JWKS from {_url} failed ({e.Message}); keeping the {_keys.Count} keys loaded before");
            }
            return _keys;
        }
    }

    private string? FilePath() => _url.StartsWith("file:", StringComparison.OrdinalIgnoreCase) ? new Uri(_url).LocalPath : null;

    private IList<SecurityKey> Load()
    {
        string json;
        if (FilePath() is { } path)
        {
            _fileStamp = File.GetLastWriteTimeUtc(path);
            json = File.ReadAllText(path);
        }
        else
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            json = http.GetStringAsync(_url).GetAwaiter().GetResult();
        }
        var keys = new JsonWebKeySet(json).GetSigningKeys();
        if (keys.Count == 0) throw new ArgumentException($"sasl.oauthbearer.jwks.endpoint.url: {_url} holds no signing key");
        return keys;
    }
}
