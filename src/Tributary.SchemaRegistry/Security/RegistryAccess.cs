using Microsoft.AspNetCore.Http;

namespace Tributary.SchemaRegistry.Security;

/// <summary>What a role may do to a subject; each includes the ones before it.</summary>
public enum RegistryPermission
{
    Read = 1,
    Write = 2,
    Admin = 3,
}

/// <summary>
/// What one request needs: <see cref="Permission"/> on <see cref="Subject"/>, or on every subject
/// (<see cref="AllSubjects"/>: the global config and mode), or, for requests about no subject (a schema by id, the
/// schema types, metadata), the permission on any subject. A <see cref="Listing"/> (of subjects, schemas, the subjects of
/// an id, contexts) needs nothing: it is answered with only what the principal may read, as Confluent's RBAC filters.
/// </summary>
public readonly record struct RegistryAccess(RegistryPermission Permission, string? Subject, bool AllSubjects, bool Listing = false)
{
    /// <summary>
    /// The access a request needs, from its method and path, before routing (so a request is refused before it is
    /// forwarded to the leader):
    /// <list type="bullet">
    /// <item>read: every GET; POST /subjects/{s} (a lookup). GET /subjects, /schemas, /schemas/ids/{id}/subjects,
    /// /schemas/ids/{id}/versions and /contexts are listings, filtered to the subjects the principal may read;</item>
    /// <item>write: POST /subjects/{s}/versions (register), POST /compatibility/subjects/{s}/..., PUT /config/{s};</item>
    /// <item>admin: every DELETE, PUT /mode/{s}, and on all subjects PUT /config and PUT /mode.</item>
    /// </list>
    /// A request matching none of these (no such route) needs admin on all subjects, so nothing unforeseen slips through.
    /// The subject is the path segment as the routes see it.
    /// </summary>
    public static RegistryAccess Of(HttpRequest request)
    {
        var path = (request.Path.Value ?? "").Split('/', StringSplitOptions.RemoveEmptyEntries);
        var method = request.Method;
        if (HttpMethods.IsGet(method) || HttpMethods.IsHead(method))
        {
            return path switch
            {
                ["subjects"] or ["schemas"] or ["contexts"] or ["schemas", "ids", _, "subjects" or "versions"] => new(RegistryPermission.Read, null, false, Listing: true),
                ["subjects", var s, ..] => new(RegistryPermission.Read, s, false),
                ["config" or "mode", var s] => new(RegistryPermission.Read, s, false),
                _ => new(RegistryPermission.Read, null, false),
            };
        }
        if (HttpMethods.IsPost(method))
        {
            return path switch
            {
                ["subjects", var s] => new(RegistryPermission.Read, s, false),
                ["subjects", var s, "versions"] => new(RegistryPermission.Write, s, false),
                ["compatibility", "subjects", var s, "versions", ..] => new(RegistryPermission.Write, s, false),
                _ => new(RegistryPermission.Admin, null, AllSubjects: true),
            };
        }
        if (HttpMethods.IsPut(method))
        {
            return path switch
            {
                ["config", var s] => new(RegistryPermission.Write, s, false),
                ["mode", var s] => new(RegistryPermission.Admin, s, false),
                _ => new(RegistryPermission.Admin, null, AllSubjects: true),
            };
        }
        if (HttpMethods.IsDelete(method))
        {
            return path switch
            {
                ["subjects", var s, ..] => new(RegistryPermission.Admin, s, false),
                ["config" or "mode", var s] => new(RegistryPermission.Admin, s, false),
                _ => new(RegistryPermission.Admin, null, AllSubjects: true),
            };
        }
        return new(RegistryPermission.Admin, null, AllSubjects: true);
    }

    public override string ToString() =>
        $"{Permission} on {(Subject is not null ? $"subject {Subject}" : AllSubjects ? "all subjects" : Listing ? "the subjects listed" : "any subject")}";
}
