namespace Tributary.Broker;

/// <summary>Broker settings under Kafka's own names (server.properties syntax), plus where to listen and store.</summary>
public sealed class BrokerConfig
{
    /// <summary>The first (metadata) data directory: the broker's own files live here.</summary>
    public string DataDir { get; set; } = "./data";

    /// <summary>The data directories after <see cref="DataDir"/> (the rest of <c>log.dirs</c>); partitions spread over all.</summary>
    public IReadOnlyList<string> MoreDataDirs { get; set; } = [];

    /// <summary>Every data directory (<c>log.dirs</c>), the metadata directory first.</summary>
    public IReadOnlyList<string> DataDirs => [DataDir, .. MoreDataDirs];

    /// <summary>
    /// The file system under the partition logs; null for the real one (with the log.max.open.files pool). Tests that
    /// embed a broker pass a fault-injecting one to fail a log directory.
    /// </summary>
    public Tributary.Storage.FileSystem.ISegmentFileSystem? StorageFileSystem { get; set; }

    /// <summary>
    /// Where the broker listens (<c>listeners</c>): one or more named listeners, the first being the one
    /// <see cref="ListenHost"/>/<see cref="ListenPort"/> and the embedding API speak of. An empty host means all interfaces.
    /// </summary>
    public List<ListenerAddress> Listeners { get; set; } = [new("PLAINTEXT", "0.0.0.0", 9092)];

    /// <summary>
    /// What each listener tells clients to connect to (<c>advertised.listeners</c>), by listener name; a listener not
    /// named here advertises its bound address (a wildcard host as "localhost").
    /// </summary>
    public List<ListenerAddress> AdvertisedListeners { get; set; } = [];

    /// <summary>The first listener's host.</summary>
    public string ListenHost
    {
        get => Listeners[0].Host;
        set => Listeners[0] = Listeners[0] with { Host = value };
    }

    /// <summary>The first listener's port (0: any free port).</summary>
    public int ListenPort
    {
        get => Listeners[0].Port;
        set => Listeners[0] = Listeners[0] with { Port = value };
    }

    /// <summary>The host the first listener advertises (null: its bound address).</summary>
    public string? AdvertisedHost
    {
        get => AdvertisedFor(Listeners[0].Name)?.Host is { Length: > 0 } host ? host : null;
        set => SetAdvertised(value ?? "", AdvertisedPort);
    }

    /// <summary>The port the first listener advertises (null: its bound port).</summary>
    public int? AdvertisedPort
    {
        get => AdvertisedFor(Listeners[0].Name) is { Port: > 0 } advertised ? advertised.Port : null;
        set => SetAdvertised(AdvertisedHost ?? "", value);
    }

    /// <summary>The advertised address of the listener <paramref name="name"/>, or null when it advertises its bound one.</summary>
    public ListenerAddress? AdvertisedFor(string name) =>
        AdvertisedListeners.FirstOrDefault(a => string.Equals(a.Name, name, StringComparison.OrdinalIgnoreCase));

    private void SetAdvertised(string host, int? port)
    {
        var name = Listeners[0].Name;
        AdvertisedListeners.RemoveAll(a => string.Equals(a.Name, name, StringComparison.OrdinalIgnoreCase));
        if (host.Length > 0 || port is > 0) AdvertisedListeners.Insert(0, new ListenerAddress(name, host, port ?? 0));
    }

    /// <summary>
    /// The broker's clock: timeouts, expirations, the transaction timer, connection idle checks. Tests that embed a
    /// broker pass a fake one so timeouts can be driven instead of waited for.
    /// </summary>
    public TimeProvider Time { get; set; } = TimeProvider.System;

    /// <summary>Kafka-named settings (log.retention.ms, num.partitions, ...); unknown names are kept and reported.</summary>
    public Dictionary<string, string> Settings { get; } = new(StringComparer.Ordinal);

    private bool _logDirsSet;

    /// <summary>Reads Kafka server.properties syntax: name=value lines, '#' and '!' comments, '\' continuations.</summary>
    public static BrokerConfig FromPropertiesFile(string path)
    {
        var config = new BrokerConfig();
        foreach (var (name, value) in ParseProperties(File.ReadAllText(path)))
        {
            config.Apply(name, value);
        }
        return config;
    }

    /// <summary>Applies one "name=value" assignment (the `--set` flag).</summary>
    public void Set(string assignment)
    {
        ArgumentNullException.ThrowIfNull(assignment);
        var eq = assignment.IndexOf('=');
        if (eq <= 0)
        {
            throw new FormatException($"expected name=value, got '{assignment}'");
        }
        Apply(assignment[..eq].Trim(), assignment[(eq + 1)..].Trim());
    }

    /// <summary>
    /// Applies one Kafka-named setting. The names that say where to listen and store (<c>listeners</c>,
    /// <c>advertised.listeners</c>, <c>log.dirs</c>, <c>log.dir</c>) set the typed properties instead of
    /// landing in <see cref="Settings"/>; every other name is kept verbatim.
    /// </summary>
    public void Apply(string name, string value)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(value);
        switch (name)
        {
            case "listeners":
                Listeners = [.. ListenerAddress.ParseList(name, value).Select(l => l.Host.Length == 0 ? l with { Host = "0.0.0.0" } : l)];
                break;
            case "advertised.listeners":
                AdvertisedListeners = [.. ListenerAddress.ParseList(name, value)];
                break;
            case "log.dirs":
                (DataDir, MoreDataDirs) = Directories(name, value);
                _logDirsSet = true;
                break;
            case "log.dir":
                // Kafka lets log.dirs win over log.dir whatever their order in the file.
                if (!_logDirsSet)
                {
                    (DataDir, MoreDataDirs) = Directories(name, value);
                }
                break;
            default:
                Settings[name] = value;
                break;
        }
    }

    /// <summary>Parses "host:port", ":port" or "[v6addr]:port"; the host is returned without brackets.</summary>
    public static bool TryParseHostPort(string text, out string host, out int port)
    {
        host = "";
        port = 0;
        var colon = text.LastIndexOf(':');
        if (colon < 0 || !int.TryParse(text.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out port) || port > 65535)
        {
            return false;
        }
        host = text[..colon];
        if (host.StartsWith('['))
        {
            if (!host.EndsWith(']'))
            {
                return false;
            }
            host = host[1..^1];
        }
        else if (host.Contains(':'))
        {
            return false; // an IPv6 address without brackets is ambiguous
        }
        return true;
    }

    /// <summary>A comma-separated list of directories (Kafka's log.dirs): the first, and the rest.</summary>
    private static (string First, IReadOnlyList<string> Others) Directories(string name, string value)
    {
        var all = value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (all.Length == 0) throw new FormatException($"{name}: no directory given");
        if (all.Select(d => Path.TrimEndingDirectorySeparator(Path.GetFullPath(d))).Distinct(StringComparer.Ordinal).Count() != all.Length) throw new FormatException($"{name}: a directory is listed twice in '{value}'");
        return (all[0], all[1..]);
    }

    /// <summary>
    /// Parses java.util.Properties text: logical lines joined across a trailing odd number of backslashes,
    /// '#' or '!' comment lines, the key ending at the first unescaped '=', ':' or whitespace, and the
    /// escapes \t \n \r \f \uXXXX (any other escaped character stands for itself).
    /// </summary>
    public static IEnumerable<KeyValuePair<string, string>> ParseProperties(string text)
    {
        var lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n', '\r');
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].TrimStart(' ', '\t', '\f');
            if (line.Length == 0 || line[0] is '#' or '!')
            {
                continue;
            }
            var logical = new System.Text.StringBuilder();
            while (EndsWithContinuation(line) && i + 1 < lines.Length)
            {
                logical.Append(line, 0, line.Length - 1);
                line = lines[++i].TrimStart(' ', '\t', '\f');
            }
            if (EndsWithContinuation(line))
            {
                line = line[..^1];
            }
            logical.Append(line);
            yield return SplitEntry(logical.ToString());
        }
    }

    private static bool EndsWithContinuation(string line)
    {
        var backslashes = 0;
        for (var j = line.Length - 1; j >= 0 && line[j] == '\\'; j--)
        {
            backslashes++;
        }
        return backslashes % 2 == 1;
    }

    private static KeyValuePair<string, string> SplitEntry(string line)
    {
        var keyEnd = 0;
        while (keyEnd < line.Length && line[keyEnd] is not ('=' or ':' or ' ' or '\t' or '\f'))
        {
            keyEnd += line[keyEnd] == '\\' ? 2 : 1;
        }
        keyEnd = Math.Min(keyEnd, line.Length);
        var valueStart = keyEnd;
        while (valueStart < line.Length && line[valueStart] is ' ' or '\t' or '\f')
        {
            valueStart++;
        }
        if (valueStart < line.Length && line[valueStart] is '=' or ':')
        {
            valueStart++;
            while (valueStart < line.Length && line[valueStart] is ' ' or '\t' or '\f')
            {
                valueStart++;
            }
        }
        return new(Unescape(line[..keyEnd]), Unescape(line[valueStart..]));
    }

    private static string Unescape(string s)
    {
        if (!s.Contains('\\'))
        {
            return s;
        }
        var sb = new System.Text.StringBuilder(s.Length);
        for (var i = 0; i < s.Length; i++)
        {
            if (s[i] != '\\' || i + 1 == s.Length)
            {
                sb.Append(s[i]);
                continue;
            }
            var c = s[++i];
            switch (c)
            {
                case 't': sb.Append('\t'); break;
                case 'n': sb.Append('\n'); break;
                case 'r': sb.Append('\r'); break;
                case 'f': sb.Append('\f'); break;
                case 'u' when i + 4 < s.Length && ushort.TryParse(s.AsSpan(i + 1, 4), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out var code):
                    sb.Append((char)code);
                    i += 4;
                    break;
                default: sb.Append(c); break;
            }
        }
        return sb.ToString();
    }
}

/// <summary>
/// One entry of <c>listeners</c> or <c>advertised.listeners</c>: <c>NAME://host:port</c>. The name (letters, digits and
/// '_') says which listener it is and, through <c>listener.security.protocol.map</c>, how it is secured; a bare
/// <c>host:port</c> is the PLAINTEXT listener. IPv6 hosts come in brackets and are kept without them.
/// </summary>
public sealed record ListenerAddress(string Name, string Host, int Port)
{
    /// <summary>Parses a comma-separated list; listener names must be unique (case-insensitively, as Kafka's).</summary>
    public static IReadOnlyList<ListenerAddress> ParseList(string setting, string value)
    {
        var entries = value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (entries.Length == 0) throw new FormatException($"{setting}: no listener in '{value}'");
        var parsed = new List<ListenerAddress>();
        foreach (var entry in entries)
        {
            var scheme = entry.IndexOf("://", StringComparison.Ordinal);
            var name = scheme >= 0 ? entry[..scheme].ToUpperInvariant() : "PLAINTEXT";
            if (name.Length == 0 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
                throw new FormatException($"{setting}: '{entry}' has no valid listener name (NAME://host:port, NAME of letters, digits and _)");
            if (!BrokerConfig.TryParseHostPort(scheme >= 0 ? entry[(scheme + 3)..] : entry, out var host, out var port))
                throw new FormatException($"{setting}: expected NAME://host:port, got '{entry}'");
            if (parsed.Any(p => p.Name == name)) throw new FormatException($"{setting}: the listener name {name} is used twice in '{value}'");
            parsed.Add(new ListenerAddress(name, host, port));
        }
        return parsed;
    }

    public override string ToString() => $"{Name}://{(Host.Contains(':') ? $"[{Host}]" : Host)}:{Port}";
}
