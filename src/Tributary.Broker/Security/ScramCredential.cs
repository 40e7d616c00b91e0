using System.Security.Cryptography;
using System.Text;

namespace Tributary.Broker.Security;

/// <summary>
/// A SCRAM credential as stored (RFC 5802): salt, iterations, StoredKey and ServerKey. The password and the salted
/// password are never kept: the salted password a client sends to AlterUserScramCredentials (KIP-554) is turned into
/// these two keys at once.
/// </summary>
public sealed record ScramCredential(string Mechanism, byte[] Salt, int Iterations, byte[] StoredKey, byte[] ServerKey)
{
    /// <summary>Kafka's bounds on iterations (ScramMechanism's minimum, and the most AlterUserScramCredentials accepts).</summary>
    public const int MinIterations = 4096, MaxIterations = 16384;

    public static HashAlgorithmName Hash(string mechanism) => mechanism switch
    {
        SaslMechanisms.ScramSha256 => HashAlgorithmName.SHA256,
        SaslMechanisms.ScramSha512 => HashAlgorithmName.SHA512,
        _ => throw new ArgumentException($"{mechanism} is not a SCRAM mechanism"),
    };

    /// <summary>The credential of a salted password (what a client computes as Hi(password, salt, iterations)).</summary>
    public static ScramCredential FromSaltedPassword(string mechanism, byte[] salt, int iterations, byte[] saltedPassword)
    {
        var hash = Hash(mechanism);
        var clientKey = Hmac(hash, saltedPassword, "Client Key"u8);
        return new ScramCredential(mechanism, salt, iterations, Digest(hash, clientKey), Hmac(hash, saltedPassword, "Server Key"u8));
    }

    /// <summary>The credential of a password: for the CLI and tests, which hold the password.</summary>
    public static ScramCredential FromPassword(string mechanism, string password, byte[] salt, int iterations) =>
        FromSaltedPassword(mechanism, salt, iterations, SaltedPassword(mechanism, password, salt, iterations));

    public static byte[] SaltedPassword(string mechanism, string password, byte[] salt, int iterations)
    {
        var hash = Hash(mechanism);
        return Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, hash, hash == HashAlgorithmName.SHA256 ? 32 : 64);
    }

    internal static byte[] Hmac(HashAlgorithmName hash, ReadOnlySpan<byte> key, ReadOnlySpan<byte> data) =>
        hash == HashAlgorithmName.SHA256 ? HMACSHA256.HashData(key, data) : HMACSHA512.HashData(key, data);

    internal static byte[] Digest(HashAlgorithmName hash, ReadOnlySpan<byte> data) =>
        hash == HashAlgorithmName.SHA256 ? SHA256.HashData(data) : SHA512.HashData(data);
}
