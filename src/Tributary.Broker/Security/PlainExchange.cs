using System.Security.Cryptography;
using System.Text;

namespace Tributary.Broker.Security;

/// <summary>
/// SASL PLAIN (RFC 4616): one message "authzid NUL user NUL password". The password is checked against the configured
/// users in constant time, and an unknown user costs the same as a known one, so timing tells nothing.
/// </summary>
internal sealed class PlainExchange(IReadOnlyDictionary<string, string> users) : ISaslExchange
{
    private static readonly byte[] UnknownUser = SHA256.HashData("no such user"u8);

    public bool Complete { get; private set; }

    public string? User { get; private set; }

    public DateTimeOffset? CredentialExpires => null;

    public byte[] Evaluate(ReadOnlySpan<byte> response)
    {
        var text = Encoding.UTF8.GetString(response);
        var parts = text.Split('\0');
        if (parts.Length != 3) throw new SaslAuthenticationException("Invalid SASL/PLAIN response: expected 3 tokens");
        var (authorizationId, user, password) = (parts[0], parts[1], parts[2]);
        if (user.Length == 0) throw new SaslAuthenticationException("Authentication failed: username not specified");
        if (password.Length == 0) throw new SaslAuthenticationException("Authentication failed: password not specified");
        var expected = users.TryGetValue(user, out var known) ? SHA256.HashData(Encoding.UTF8.GetBytes(known)) : UnknownUser;
        var given = SHA256.HashData(Encoding.UTF8.GetBytes(password));
        if (!CryptographicOperations.FixedTimeEquals(expected, given) || known is null)
            throw new SaslAuthenticationException("Authentication failed: Invalid username or password");
        if (authorizationId.Length > 0 && authorizationId != user)
            throw new SaslAuthenticationException("Authentication failed: Client requested an authorization id that is different from username");
        User = user;
        Complete = true;
        return [];
    }
}
