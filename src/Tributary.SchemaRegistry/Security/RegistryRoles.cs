namespace Tributary.SchemaRegistry.Security;

/// <summary>One grant of a role: <see cref="Permission"/> on the subjects starting with <see cref="Prefix"/> ("" : all).</summary>
public sealed record RegistryGrant(RegistryPermission Permission, string Prefix);

/// <summary>
/// The registry's authorization model: roles, each a list of grants (<c>schema.registry.authorization.roles</c>, by default
/// <c>admin=admin;write=write;read=read</c>); a principal may do what any of its roles grants. Written
/// <c>role=grant[,grant...];...</c> where a grant is <c>read</c>, <c>write</c> or <c>admin</c>, optionally
/// <c>:PREFIX</c> to cover only the subjects starting with PREFIX (<c>orders=write:orders-</c>).
/// <para>
/// A request about one subject needs a grant that covers it; the global config or mode needs an unprefixed grant; a
/// request about no subject (a schema by id, as a deserializer asks) needs the permission on some subject. Listings are
/// not checked here but filtered subject by subject (<see cref="RegistryAuthentication.MayRead"/>).
/// </para>
/// </summary>
public sealed class RegistryRoles
{
    private readonly Dictionary<string, RegistryGrant[]> _grants;

    private RegistryRoles(Dictionary<string, RegistryGrant[]> grants) => _grants = grants;

    public const string Default = "admin=admin;write=write;read=read";

    /// <exception cref="FormatException">The text is not role=grant[,grant...];...</exception>
    public static RegistryRoles Parse(string text)
    {
        var grants = new Dictionary<string, RegistryGrant[]>(StringComparer.Ordinal);
        foreach (var (role, values) in ParseEntries(text))
        {
            grants[role] = [.. values.Select(value =>
            {
                var parts = value.Split(':', 2);
                var permission = parts[0].ToLowerInvariant() switch
                {
                    "read" => RegistryPermission.Read,
                    "write" => RegistryPermission.Write,
                    "admin" => RegistryPermission.Admin,
                    _ => throw new FormatException($"grant '{value}' of role {role} is not read, write or admin[:PREFIX]"),
                };
                var prefix = parts.Length > 1 ? parts[1] : "";
                return new RegistryGrant(permission, prefix == "*" ? "" : prefix);
            })];
        }
        return new RegistryRoles(grants);
    }

    /// <summary><c>name=value[,value...];...</c>, the format of the role map and of <c>schema.registry.authorization.user.roles</c>.</summary>
    public static IEnumerable<(string Name, string[] Values)> ParseEntries(string text)
    {
        foreach (var entry in text.Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = entry.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0) throw new FormatException($"'{entry}' is not name=value[,value...]");
            yield return (entry[..equals].Trim(), entry[(equals + 1)..].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
        }
    }

    public bool Allows(RegistryPrincipal principal, RegistryAccess access)
    {
        foreach (var role in principal.Roles)
        {
            if (!_grants.TryGetValue(role, out var grants)) continue;
            foreach (var grant in grants)
            {
                if (grant.Permission < access.Permission) continue;
                if (access.Subject is { } subject ? subject.StartsWith(grant.Prefix, StringComparison.Ordinal) : !access.AllSubjects || grant.Prefix.Length == 0)
                    return true;
            }
        }
        return false;
    }
}
