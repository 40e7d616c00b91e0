namespace Tributary.Broker.Quotas;

/// <summary>
/// A client-quota entity as Kafka names it (KIP-546): a user, a client id, or both; each part either a name or the
/// default (null) for every user / client id without a quota of its own. <see cref="Key"/> is how it is stored.
/// </summary>
public sealed record QuotaEntity(bool HasUser, string? User, bool HasClientId, string? ClientId)
{
    public const string UserType = "user", ClientIdType = "client-id", DefaultName = "<default>";

    /// <summary>The quota keys Kafka defines for users and client ids.</summary>
    public static readonly IReadOnlyList<string> Keys = ["producer_byte_rate", "consumer_byte_rate", "request_percentage", "controller_mutation_rate"];

    public string Key => string.Join(',', Parts().Select(p => $"{p.Type}={(p.Name is null ? DefaultName : Uri.EscapeDataString(p.Name))}"));

    public IEnumerable<(string Type, string? Name)> Parts()
    {
        if (HasUser) yield return (UserType, User);
        if (HasClientId) yield return (ClientIdType, ClientId);
    }

    public static QuotaEntity Parse(string key)
    {
        bool hasUser = false, hasClient = false;
        string? user = null, client = null;
        foreach (var part in key.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=');
            var name = part[(eq + 1)..];
            var value = name == DefaultName ? null : Uri.UnescapeDataString(name);
            if (part[..eq] == UserType) (hasUser, user) = (true, value);
            else (hasClient, client) = (true, value);
        }
        return new QuotaEntity(hasUser, user, hasClient, client);
    }
}
