using System.Security.Cryptography;
using System.Text;

namespace Tributary.Broker.Security;

/// <summary>
/// The server side of SCRAM-SHA-256/512 (RFC 5802, RFC 7677) as Kafka speaks it: client-first, server-first with a
/// fresh server nonce, client-final with the proof, server-final with the server signature. A user without a
/// credential gets a made-up salt that is the same every time (derived from a per-broker secret), and fails only at
/// the proof, so neither the answer nor its timing says whether the user exists. A client-final whose nonce does not
/// end with this exchange's (a replay) fails.
/// </summary>
internal sealed class ScramExchange(string mechanism, Func<string, ScramCredential?> credentials, byte[] fakeSaltKey) : ISaslExchange
{
    private readonly HashAlgorithmName _hash = ScramCredential.Hash(mechanism);
    private int _step;
    private string? _user;
    private string? _clientFirstBare;
    private string? _serverFirst;
    private string? _nonce;
    private string? _gs2Header;
    private ScramCredential? _credential;

    public bool Complete { get; private set; }

    public string? User => Complete ? _user : null;

    public DateTimeOffset? CredentialExpires => null;

    public byte[] Evaluate(ReadOnlySpan<byte> response)
    {
        var text = Encoding.UTF8.GetString(response);
        return _step++ switch
        {
            0 => ServerFirst(text),
            1 => ServerFinal(text),
            _ => throw new SaslAuthenticationException("Unexpected SCRAM message after the exchange completed"),
        };
    }

    private byte[] ServerFirst(string clientFirst)
    {
        // gs2-header: "n," or "y," (no channel binding), then an optional "a=authzid", then ",".
        if (clientFirst.Length < 3 || clientFirst[0] is not ('n' or 'y') || clientFirst[1] != ',')
            throw new SaslAuthenticationException("Invalid SCRAM client first message: channel binding is not supported");
        var headerEnd = clientFirst.IndexOf(',', 2);
        if (headerEnd < 0) throw new SaslAuthenticationException("Invalid SCRAM client first message");
        var authorizationId = clientFirst[2..headerEnd];
        _gs2Header = clientFirst[..(headerEnd + 1)];
        _clientFirstBare = clientFirst[(headerEnd + 1)..];
        var attributes = Attributes(_clientFirstBare);
        if (!attributes.TryGetValue("n", out var escaped) || !attributes.TryGetValue("r", out var clientNonce) || clientNonce.Length == 0)
            throw new SaslAuthenticationException("Invalid SCRAM client first message: username or nonce missing");
        if (attributes.TryGetValue("tokenauth", out var tokenAuth) && tokenAuth == "true")
            throw new SaslAuthenticationException("Authentication failed: delegation tokens are not supported");
        _user = Unescape(escaped);
        if (authorizationId.Length > 0 && Unescape(authorizationId[(authorizationId.IndexOf('=') + 1)..]) != _user)
            throw new SaslAuthenticationException("Authentication failed: Client requested an authorization id that is different from username");
        _credential = credentials(_user);
        var salt = _credential?.Salt ?? FakeSalt(_user);
        var iterations = _credential?.Iterations ?? ScramCredential.MinIterations;
        _nonce = clientNonce + Convert.ToBase64String(RandomNumberGenerator.GetBytes(24)).Replace('/', '_').Replace('+', '-').TrimEnd('=');
        _serverFirst = $"r={_nonce},s={Convert.ToBase64String(salt)},i={iterations}";
        return Encoding.UTF8.GetBytes(_serverFirst);
    }

    private byte[] ServerFinal(string clientFinal)
    {
        var proofAt = clientFinal.LastIndexOf(",p=", StringComparison.Ordinal);
        if (proofAt < 0) throw new SaslAuthenticationException("Invalid SCRAM client final message: proof missing");
        var withoutProof = clientFinal[..proofAt];
        var attributes = Attributes(withoutProof);
        // librdkafka before 2.6.1 sends its own nonce twice (client nonce + the server's, which starts with it); Kafka
        // 3.8.1-3.9 accept a nonce that ends with this exchange's, and so does this. A replay carries another one.
        if (!attributes.TryGetValue("r", out var nonce) || !nonce.EndsWith(_nonce!, StringComparison.Ordinal))
            throw new SaslAuthenticationException("Invalid SCRAM client final message: the nonce is not this exchange's");
        if (!attributes.TryGetValue("c", out var binding) || binding != Convert.ToBase64String(Encoding.UTF8.GetBytes(_gs2Header!)))
            throw new SaslAuthenticationException("Invalid SCRAM client final message: channel binding does not match");
        byte[] proof;
        try
        {
            proof = Convert.FromBase64String(clientFinal[(proofAt + 3)..]);
        }
        catch (FormatException)
        {
            throw new SaslAuthenticationException("Invalid SCRAM client final message: proof is not base64");
        }
        var authMessage = Encoding.UTF8.GetBytes($"{_clientFirstBare},{_serverFirst},{withoutProof}");
        // The same work whether or not the user exists: a stand-in key that no proof matches.
        var storedKey = _credential?.StoredKey ?? ScramCredential.Digest(_hash, FakeSalt(_user! + "/key"));
        var signature = ScramCredential.Hmac(_hash, storedKey, authMessage);
        var valid = proof.Length == signature.Length;
        var clientKey = new byte[signature.Length];
        for (var i = 0; i < clientKey.Length; i++) clientKey[i] = (byte)(signature[i] ^ (i < proof.Length ? proof[i] : 0));
        valid &= CryptographicOperations.FixedTimeEquals(ScramCredential.Digest(_hash, clientKey), storedKey) && _credential is not null;
        if (!valid) throw new SaslAuthenticationException($"Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}");
        Complete = true;
        return Encoding.UTF8.GetBytes("v=" + Convert.ToBase64String(ScramCredential.Hmac(_hash, _credential!.ServerKey, authMessage)));
    }

    private byte[] FakeSalt(string user) => HMACSHA256.HashData(fakeSaltKey, Encoding.UTF8.GetBytes(mechanism + "/" + user))[..16];

    private static Dictionary<string, string> Attributes(string message)
    {
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var part in message.Split(','))
        {
            var eq = part.IndexOf('=');
            if (eq <= 0) throw new SaslAuthenticationException($"Invalid SCRAM message: '{part}' is not an attribute");
            attributes.TryAdd(part[..eq], part[(eq + 1)..]);
        }
        return attributes;
    }

    private static string Unescape(string name) => name.Replace("=2C", ",", StringComparison.Ordinal).Replace("=3D", "=", StringComparison.Ordinal);
}
