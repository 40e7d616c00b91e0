using System.Net;

namespace Tributary.Broker.Quotas;

/// <summary>
/// A client-quota entity as Kafka names it (KIP-546): a user, a client id, or both; or, alone, an ip (KIP-612). Each part
/// is either a name or the default (null) for every user / client id / address without a quota of its own.
/// <see cref="Key"/> is how it is stored.
/// </summary>
public sealed record QuotaEntity(bool HasUser, string? User, bool HasClientId, string? ClientId)
{
    public const string UserType = "user", ClientIdType = "client-id", IpType = "ip", DefaultName = "<default>";

    /// <summary>The one quota key of ip entities: connections a second an address may open (KIP-612).</summary>
    public const string ConnectionCreationRate = "connection_creation_rate";

    /// <summary>The quota keys Kafka defines for users and client ids.</summary>
    public static readonly IReadOnlyList<string> Keys = ["producer_byte_rate", "consumer_byte_rate", "request_percentage", "controller_mutation_rate"];

    public bool HasIp { get; init; }

    /// <summary>The address in its canonical text (IPv4-mapped IPv6 as IPv4), or null for the default ip.</summary>
    public string? Ip { get; init; }

    public static QuotaEntity ForIp(IPAddress? address) =>
        new(false, null, false, null) { HasIp = true, Ip = address is null ? null : Network.ConnectionLimits.Normalize(address).ToString() };

    public string Key => string.Join(',', Parts().Select(p => $"{p.Type}={(p.Name is null ? DefaultName : Uri.EscapeDataString(p.Name))}"));

    public IEnumerable<(string Type, string? Name)> Parts()
    {
        if (HasUser) yield return (UserType, User);
        if (HasClientId) yield return (ClientIdType, ClientId);
        if (HasIp) yield return (IpType, Ip);
    }

    public static QuotaEntity Parse(string key)
    {
        bool hasUser = false, hasClient = false, hasIp = false;
        string? user = null, client = null, ip = null;
        foreach (var part in key.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=');
            var name = part[(eq + 1)..];
            var value = name == DefaultName ? null : Uri.UnescapeDataString(name);
            switch (part[..eq])
            {
                case UserType: (hasUser, user) = (true, value); break;
                case IpType: (hasIp, ip) = (true, value); break;
                default: (hasClient, client) = (true, value); break;
            }
        }
        return new QuotaEntity(hasUser, user, hasClient, client) { HasIp = hasIp, Ip = ip };
    }
}
