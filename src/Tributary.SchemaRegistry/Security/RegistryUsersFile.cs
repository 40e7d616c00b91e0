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
/// The file is read again when its modification time or size changes, as Jetty's login module reloads it, so users,
/// passwords and roles change without a restart. The check is one stat per request, beside a password digest, and it
/// makes a change count from the next request on; a file that no longer parses keeps the users read before.
/// </para>
/// </summary>
public sealed class RegistryUsersFile
{
    private static readonly byte[] UnknownUser = SHA256.HashData("no such user"u8);

    private readonly string _path;
    private readonly Action<string>? _reloadFailed;
    private readonly Lock _lock = new();
    private Loaded _loaded;

    /// <exception cref="FormatException">A line is not name: password[,role...], or uses an unsupported password form.</exception>
    public RegistryUsersFile(string path, Action<string>? reloadFailed = null)
    {
        _path = path;
        _reloadFailed = reloadFailed;
        _loaded = new Loaded(Stamp(path), Parse(File.ReadAllText(path)));
    }

    private sealed record User(byte[] PasswordDigest, bool Md5, string[] Roles);

    /// <summary>The users as read from the file when it had <see cref="Stamp"/>: replaced whole, so a request reads one version.</summary>
    private sealed record Loaded((DateTime Written, long Length) Stamp, Dictionary<string, User> Users);

    /// <summary>
    /// The user's roles when the password is right; null when it is wrong or the user unknown (<paramref name="known"/>
    /// false: the file does not name the user).
    /// </summary>
    public string[]? Check(string name, string password, out bool known)
    {
        known = Users().TryGetValue(name, out var user);
        var given = Encoding.UTF8.GetBytes(password);
        if (user?.Md5 == true) given = Encoding.ASCII.GetBytes(Convert.ToHexStringLower(MD5.HashData(given)));
        var matches = CryptographicOperations.FixedTimeEquals(known ? user!.PasswordDigest : UnknownUser, SHA256.HashData(given));
        return matches && known ? user!.Roles : null;
    }

    private static (DateTime, long) Stamp(string path)
    {
        var info = new FileInfo(path);
        return (info.LastWriteTimeUtc, info.Length);
    }

    private Dictionary<string, User> Users()
    {
        var loaded = Volatile.Read(ref _loaded);
        (DateTime, long) stamp;
        try
        {
            stamp = Stamp(_path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return loaded.Users;
        }
        if (stamp == loaded.Stamp) return loaded.Users;
        lock (_lock)
        {
            if (stamp == _loaded.Stamp) return _loaded.Users;
            try
            {
                Volatile.Write(ref _loaded, new Loaded(stamp, Parse(File.ReadAllText(_path))));
            }
            catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException)
            {
                // Remembered with the new stamp, so the broken file is reported once, not on every request.
                Volatile.Write(ref _loaded, _loaded with { Stamp = stamp });
                _reloadFailed?.Invoke($"schema registry: the users file {_path} does not load ({e.Message}); keeping the users read before");
            }
            return _loaded.Users;
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
