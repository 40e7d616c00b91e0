using System.Security.Cryptography;
using System.Text;

namespace Tributary.SchemaRegistry.Security;

/// <summary>
/// The users of HTTP Basic authentication, from the property file Confluent's registry gives Jetty's
/// PropertyFileLoginModule: one <c>name: password[,role...]</c> line per user (<c>name=password</c> too; <c>#</c> and
/// <c>!</c> start comments). A password written <c>MD5:hex</c> is compared as its MD5 digest, Jetty's form for a
/// password not kept in clear; Jetty's <c>OBF:</c> and <c>CRYPT:</c> are refused at load.
/// <para>
/// Passwords are compared in constant time as SHA-256 digests, and an unknown user costs the same as a known one.
/// The file is read again when it changes (checked at most once a second), so users are added without a restart; a
/// file that no longer parses keeps the users read before.
/// </para>
/// </summary>
public sealed class RegistryUsersFile
{
    private static readonly byte[] UnknownUser = SHA256.HashData("no such user"u8);
    private static readonly TimeSpan ReloadCheckInterval = TimeSpan.FromSeconds(1);

    private readonly string _path;
    private readonly Action<string>? _reloadFailed;
    private readonly Lock _lock = new();
    private Dictionary<string, User> _users;
    private DateTime _stamp;
    private long _nextCheck;

    /// <exception cref="FormatException">A line is not name: password[,role...], or uses an unsupported password form.</exception>
    public RegistryUsersFile(string path, Action<string>? reloadFailed = null)
    {
        _path = path;
        _reloadFailed = reloadFailed;
        _stamp = File.GetLastWriteTimeUtc(path);
        _users = Parse(File.ReadAllText(path));
        _nextCheck = Environment.TickCount64 + (long)ReloadCheckInterval.TotalMilliseconds;
    }

    private sealed record User(byte[] PasswordDigest, bool Md5, string[] Roles);

    /// <summary>True when the file names this user (the password is not checked).</summary>
    public bool Contains(string name) => Users().ContainsKey(name);

    /// <summary>The user's roles when the password is right; null when it is wrong or the user unknown.</summary>
    public string[]? Check(string name, string password)
    {
        var known = Users().TryGetValue(name, out var user);
        var given = Encoding.UTF8.GetBytes(password);
        if (user?.Md5 == true) given = Encoding.ASCII.GetBytes(Convert.ToHexStringLower(MD5.HashData(given)));
        var matches = CryptographicOperations.FixedTimeEquals(known ? user!.PasswordDigest : UnknownUser, SHA256.HashData(given));
        return matches && known ? user!.Roles : null;
    }

    private Dictionary<string, User> Users()
    {
        var now = Environment.TickCount64;
        if (now < Volatile.Read(ref _nextCheck)) return Volatile.Read(ref _users);
        lock (_lock)
        {
            _nextCheck = now + (long)ReloadCheckInterval.TotalMilliseconds;
            try
            {
                var stamp = File.GetLastWriteTimeUtc(_path);
                if (stamp != _stamp)
                {
                    _stamp = stamp;
                    Volatile.Write(ref _users, Parse(File.ReadAllText(_path)));
                }
            }
            catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException)
            {
                _reloadFailed?.Invoke($"schema registry: the users file {_path} does not load ({e.Message}); keeping the users read before");
            }
            return _users;
        }
    }

    private static Dictionary<string, User> Parse(string text)
    {
        var users = new Dictionary<string, User>(StringComparer.Ordinal);
        var number = 0;
        foreach (var raw in text.Split('\n'))
        {
            number++;
            var line = raw.Trim();
            if (line.Length == 0 || line[0] is '#' or '!') continue;
            var separator = line.IndexOfAny([':', '=']);
            if (separator <= 0) throw new FormatException($"line {number}: expected name: password[,role...]");
            var name = line[..separator].Trim();
            var values = line[(separator + 1)..].Split(',', StringSplitOptions.TrimEntries);
            var password = values[0];
            var md5 = false;
            if (password.StartsWith("MD5:", StringComparison.Ordinal))
            {
                md5 = true;
                password = password[4..].ToLowerInvariant();
            }
            else if (password.StartsWith("OBF:", StringComparison.Ordinal) || password.StartsWith("CRYPT:", StringComparison.Ordinal))
            {
                throw new FormatException($"line {number}: user {name}: OBF: and CRYPT: passwords are not supported; use the password or MD5:<hex digest>");
            }
            if (password.Length == 0) throw new FormatException($"line {number}: user {name} has no password");
            users[name] = new User(SHA256.HashData(Encoding.UTF8.GetBytes(password)), md5, [.. values.Skip(1).Where(r => r.Length > 0)]);
        }
        return users;
    }
}
