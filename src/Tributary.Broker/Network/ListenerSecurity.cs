namespace Tributary.Broker.Network;

/// <summary>Kafka's security protocols: how a listener's connections are carried and authenticated.</summary>
public enum SecurityProtocol
{
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

/// <summary>
/// Which security protocol each listener speaks (<c>listener.security.protocol.map</c>, Kafka's default mapping each
/// protocol's own name to itself) and which listener the brokers use among themselves (<c>inter.broker.listener.name</c>,
/// else the listener named by <c>security.inter.broker.protocol</c>, as Kafka resolves it).
/// </summary>
public static class ListenerSecurity
{
    public const string ProtocolMapSetting = "listener.security.protocol.map";
    public const string DefaultProtocolMap = "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL";

    /// <summary>The listener name → protocol map of the setting's value.</summary>
    public static IReadOnlyDictionary<string, SecurityProtocol> ParseMap(string value)
    {
        var map = new Dictionary<string, SecurityProtocol>(StringComparer.OrdinalIgnoreCase);
        foreach (var entry in value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var colon = entry.IndexOf(':');
            if (colon <= 0) throw new FormatException($"{ProtocolMapSetting}: expected NAME:PROTOCOL, got '{entry}'");
            var name = entry[..colon].Trim();
            if (!TryParseProtocol(entry[(colon + 1)..].Trim(), out var protocol))
                throw new FormatException($"{ProtocolMapSetting}: '{entry[(colon + 1)..]}' is not a security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)");
            if (!map.TryAdd(name, protocol)) throw new FormatException($"{ProtocolMapSetting}: the listener {name} is mapped twice");
        }
        return map;
    }

    public static bool TryParseProtocol(string text, out SecurityProtocol protocol)
    {
        protocol = text.ToUpperInvariant() switch
        {
            "PLAINTEXT" => SecurityProtocol.Plaintext,
            "SSL" => SecurityProtocol.Ssl,
            "SASL_PLAINTEXT" => SecurityProtocol.SaslPlaintext,
            "SASL_SSL" => SecurityProtocol.SaslSsl,
            _ => (SecurityProtocol)(-1),
        };
        return protocol >= 0;
    }

    public static string Name(SecurityProtocol protocol) => protocol switch
    {
        SecurityProtocol.Ssl => "SSL",
        SecurityProtocol.SaslPlaintext => "SASL_PLAINTEXT",
        SecurityProtocol.SaslSsl => "SASL_SSL",
        _ => "PLAINTEXT",
    };

    /// <summary>The protocol of a listener; a name the map lacks is a configuration error, as in Kafka.</summary>
    public static SecurityProtocol ProtocolOf(BrokerSettings settings, string listener)
    {
        var map = ParseMap(settings.Text(ProtocolMapSetting));
        return map.TryGetValue(listener, out var protocol) ? protocol
            : throw new ArgumentException($"{ProtocolMapSetting}: no security protocol for the listener {listener} (map it, e.g. {listener}:PLAINTEXT)");
    }

    /// <summary>
    /// The listener the brokers connect to each other through. Kafka requires it among the listeners; a broker with a
    /// single listener that names neither uses that one, so the embedded default needs no setting.
    /// </summary>
    public static string InterBrokerListener(BrokerSettings settings, IReadOnlyList<ListenerAddress> listeners)
    {
        var named = settings.Get("inter.broker.listener.name");
        var wanted = named ?? settings.Text("security.inter.broker.protocol");
        if (listeners.FirstOrDefault(l => string.Equals(l.Name, wanted, StringComparison.OrdinalIgnoreCase)) is { } found) return found.Name;
        if (named is null && listeners.Count == 1) return listeners[0].Name;
        throw new ArgumentException(named is not null
            ? $"inter.broker.listener.name: {named} is not one of the listeners ({string.Join(", ", listeners.Select(l => l.Name))})"
            : $"no listener is named {wanted} (security.inter.broker.protocol); set inter.broker.listener.name to one of {string.Join(", ", listeners.Select(l => l.Name))}");
    }
}
