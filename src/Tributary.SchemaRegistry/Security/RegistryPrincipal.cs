namespace Tributary.SchemaRegistry.Security;

/// <summary>Who a registry request acts as: a user name (or a token's subject) and the roles that say what it may do.</summary>
public sealed record RegistryPrincipal(string Name, IReadOnlySet<string> Roles)
{
    public static RegistryPrincipal Of(string name, IEnumerable<string> roles) => new(name, roles.ToHashSet(StringComparer.Ordinal));
}
