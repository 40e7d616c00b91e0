using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Tributary.SchemaRegistry.Security;
using static Tributary.SchemaRegistry.Http.RegistryJson;

namespace Tributary.SchemaRegistry.Http;

/// <summary>
/// Confluent Schema Registry's REST API over a <see cref="SchemaStore"/>: the routes, query parameters, bodies and
/// error codes of Confluent's API reference. Responses to <c>GET /schemas/ids/{id}</c> (the deserializer's hot path)
/// are cached as bytes until the id changes.
/// </summary>
internal sealed class RegistryEndpoints(SchemaStore store, string? kafkaClusterId)
{
    /// <summary>Confluent's default <c>schema.registry.group.id</c>, which its metadata route reports as the registry's cluster.</summary>
    private const string RegistryClusterId = "schema-registry";

    private readonly ConcurrentDictionary<int, byte[]> _idResponses = new();

    public void Map(WebApplication app)
    {
        store.IdChanged += id => _idResponses.TryRemove(id, out _);
        Get(app, "/", c => WriteAsync(c, new JsonObject()));
        Get(app, "/schemas/types", c => WriteAsync(c, new JsonArray(store.SchemaTypeNames.Order(StringComparer.Ordinal).Select(t => (JsonNode)JsonValue.Create(t)).ToArray())));
        Get(app, "/contexts", c =>
        {
            var prefix = c.Request.Query["contextPrefix"].FirstOrDefault() ?? "";
            // The default context holds every subject: listed to whoever may read some.
            var contexts = RegistryAuthentication.MayReadSome(c) ? new[] { "." } : [];
            return WriteAsync(c, Page(c, contexts.Where(x => x.StartsWith(prefix, StringComparison.Ordinal)).Select(x => (JsonNode)JsonValue.Create(x))));
        });
        Get(app, "/v1/metadata/id", c => WriteAsync(c, new JsonObject
        {
            ["scope"] = new JsonObject
            {
                ["path"] = new JsonArray(),
                ["clusters"] = new JsonObject { ["kafka-cluster"] = kafkaClusterId, ["schema-registry-cluster"] = RegistryClusterId },
            },
        }));
        Get(app, "/v1/metadata/version", c => WriteAsync(c, ServerVersion()));
        Get(app, "/schemas", ListSchemas);
        Get(app, "/schemas/ids/{id}", SchemaById);
        Get(app, "/schemas/ids/{id}/schema", c => WriteRawSchema(c, Text(c, Id(c), store.GetById(Id(c)))));
        Get(app, "/schemas/ids/{id}/subjects", c => WriteAsync(c, Page(c, VersionsOfId(c).Select(v => v.Subject).Distinct().Select(s => (JsonNode)JsonValue.Create(s)))));
        Get(app, "/schemas/ids/{id}/versions", c => WriteAsync(c, Page(c, VersionsOfId(c).Select(v => (JsonNode)new JsonObject { ["subject"] = v.Subject, ["version"] = v.Version }))));

        Get(app, "/subjects", c => WriteAsync(c, Page(c, store.Subjects(Flag(c, "deleted"), Flag(c, "deletedOnly"), c.Request.Query["subjectPrefix"].FirstOrDefault())
            .Where(s => RegistryAuthentication.MayRead(c, s)).Select(s => (JsonNode)JsonValue.Create(s)))));
        app.MapPost("/subjects/{subject}", LookupAsync);
        app.MapDelete("/subjects/{subject}", async c =>
        {
            var deleted = await store.DeleteSubjectAsync(Route(c, "subject"), Flag(c, "permanent"), c.RequestAborted).ConfigureAwait(false);
            await WriteAsync(c, Ints(deleted)).ConfigureAwait(false);
        });
        Get(app, "/subjects/{subject}/versions", c =>
        {
            var subject = Route(c, "subject");
            var deletedOnly = Flag(c, "deletedOnly");
            if (store.Versions(subject, Flag(c, "deleted") || deletedOnly).Count == 0) throw RegistryException.SubjectNotFound(subject);
            // deletedAsNegative lists every version, the soft-deleted ones negated (Confluent's DELETED_AS_NEGATIVE filter)
            IEnumerable<int> versions = Flag(c, "deletedAsNegative")
                ? store.Versions(subject, deleted: true).Select(v => store.IsDeleted(subject, v) ? -v : v)
                : store.Versions(subject, Flag(c, "deleted"), deletedOnly);
            return WriteAsync(c, Page(c, versions.Select(v => (JsonNode)JsonValue.Create(v))));
        });
        app.MapPost("/subjects/{subject}/versions", RegisterAsync);
        Get(app, "/subjects/{subject}/metadata", LatestWithMetadata);
        Get(app, "/subjects/{subject}/versions/{version}", c =>
        {
            var v = Version(c);
            return WriteAsync(c, VersionToJson(v, Text(c, v.Id, v.Content)));
        });
        Get(app, "/subjects/{subject}/versions/{version}/schema", c =>
        {
            var v = Version(c);
            return WriteRawSchema(c, Text(c, v.Id, v.Content));
        });
        Get(app, "/subjects/{subject}/versions/{version}/referencedby", c =>
        {
            var subject = Route(c, "subject");
            var version = Route(c, "version");
            if (version is not ("latest" or "-1")) SchemaStore.ParseVersion(version);
            if (store.Versions(subject, deleted: true).Count == 0) throw RegistryException.SubjectNotFound(subject);
            return WriteAsync(c, Page(c, store.ReferencedBy(subject, version, Flag(c, "deleted")).Select(id => (JsonNode)JsonValue.Create(id)), SchemaSearchLimit));
        });
        app.MapDelete("/subjects/{subject}/versions/{version}", async c =>
        {
            var version = await store.DeleteVersionAsync(Route(c, "subject"), Route(c, "version"), Flag(c, "permanent"), c.RequestAborted).ConfigureAwait(false);
            await WriteAsync(c, JsonValue.Create(version)).ConfigureAwait(false);
        });

        app.MapPost("/compatibility/subjects/{subject}/versions/{version}", c => CompatibilityAsync(c, Route(c, "version")));
        app.MapPost("/compatibility/subjects/{subject}/versions", c => CompatibilityAsync(c, null));

        Get(app, "/config", c => WriteAsync(c, store.GlobalConfig()));
        app.MapPut("/config", c => PutConfigAsync(c, null));
        app.MapDelete("/config", async c => await WriteAsync(c, await store.SetConfigAsync(null, null, c.RequestAborted).ConfigureAwait(false)).ConfigureAwait(false));
        Get(app, "/config/{subject}", c =>
        {
            var subject = Route(c, "subject");
            var config = store.SubjectConfig(subject) ?? (Flag(c, "defaultToGlobal") ? store.GlobalConfig() : throw RegistryException.SubjectCompatibilityNotConfigured(subject));
            return WriteAsync(c, config);
        });
        app.MapPut("/config/{subject}", c => PutConfigAsync(c, Route(c, "subject")));
        app.MapDelete("/config/{subject}", async c =>
        {
            var subject = Route(c, "subject");
            if (store.SubjectConfig(subject) is null) throw RegistryException.SubjectNotFound(subject);
            await WriteAsync(c, await store.SetConfigAsync(subject, null, c.RequestAborted).ConfigureAwait(false)).ConfigureAwait(false);
        });

        Get(app, "/mode", c => WriteAsync(c, new JsonObject { ["mode"] = store.GlobalMode() }));
        app.MapPut("/mode", c => PutModeAsync(c, null));
        app.MapDelete("/mode", async c =>
        {
            var previous = await store.SetModeAsync(null, null, force: true, c.RequestAborted).ConfigureAwait(false);
            await WriteAsync(c, new JsonObject { ["mode"] = previous }).ConfigureAwait(false);
        });
        Get(app, "/mode/{subject}", c =>
        {
            var subject = Route(c, "subject");
            var mode = store.SubjectMode(subject) ?? (Flag(c, "defaultToGlobal") ? store.GlobalMode() : throw RegistryException.SubjectModeNotConfigured(subject));
            return WriteAsync(c, new JsonObject { ["mode"] = mode });
        });
        app.MapPut("/mode/{subject}", c => PutModeAsync(c, Route(c, "subject")));
        app.MapDelete("/mode/{subject}", async c =>
        {
            var subject = Route(c, "subject");
            if (store.SubjectMode(subject) is null) throw RegistryException.SubjectNotFound(subject);
            var previous = await store.SetModeAsync(subject, null, force: true, c.RequestAborted).ConfigureAwait(false);
            await WriteAsync(c, new JsonObject { ["mode"] = previous }).ConfigureAwait(false);
        });
    }

    private static void Get(WebApplication app, string pattern, RequestDelegate handler) => app.MapGet(pattern, handler);

    /// <summary>
    /// The versions an id is registered as, under the subjects the principal may read; Confluent answers an unknown id
    /// here with the message that names none.
    /// </summary>
    private IEnumerable<SubjectVersion> VersionsOfId(HttpContext c)
    {
        var id = Id(c);
        if (!store.TryGetById(id, out _)) throw RegistryException.SchemaNotFound();
        return store.VersionsOfId(id, Flag(c, "deleted"), c.Request.Query["subject"].FirstOrDefault()).Where(v => RegistryAuthentication.MayRead(c, v.Subject));
    }


    private static JsonObject ServerVersion()
    {
        var info = typeof(RegistryEndpoints).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion ?? "0.0.0";
        var plus = info.IndexOf('+', StringComparison.Ordinal);
        return new JsonObject { ["version"] = plus < 0 ? info : info[..plus], ["commitId"] = plus < 0 ? "" : info[(plus + 1)..] };
    }

    /// <summary>
    /// An integer path or query parameter. JAX-RS answers one that does not convert with 404 before the resource runs,
    /// so Confluent does too.
    /// </summary>
    private static int Int(string? text) =>
        int.TryParse(text, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var n)
            ? n
            : throw new RegistryException(404, "HTTP 404 Not Found");

    private static int Id(HttpContext c) => Int(Route(c, "id"));

    /// <summary>
    /// Confluent's rule for a subject that is written to: no control characters, and not one of the names its
    /// <c>_schemas</c> keys reserve for the global config and mode (<c>__GLOBAL</c>, <c>__EMPTY</c>).
    /// </summary>
    private static string ValidSubject(string subject) =>
        subject is "__GLOBAL" or "__EMPTY" || subject.Any(char.IsControl) ? throw RegistryException.InvalidSubject(subject) : subject;

    private SubjectVersion Version(HttpContext c)
    {
        var subject = Route(c, "subject");
        var version = Route(c, "version");
        if (version is not ("latest" or "-1")) SchemaStore.ParseVersion(version);
        var deleted = Flag(c, "deleted");
        if (store.Versions(subject, deleted).Count == 0) throw RegistryException.SubjectNotFound(subject);
        return store.GetVersion(subject, version, deleted);
    }

    /// <summary>The schema text in the request's <c>format</c>.</summary>
    private string Text(HttpContext c, int id, SchemaContent content) => store.Formatted(id, content, c.Request.Query["format"].FirstOrDefault());

    private static JsonArray Ints(IEnumerable<int> values) => new(values.Select(v => (JsonNode)JsonValue.Create(v)).ToArray());

    /// <summary>Confluent's <c>schema.search.default.limit</c> and <c>schema.search.max.limit</c>: lists of schemas stop at 1000.</summary>
    public const int SchemaSearchLimit = 1000;

    /// <summary>
    /// offset/limit as Confluent's normalizeLimit: a limit outside 1..<paramref name="maxLimit"/> (or none) means the
    /// default, which is the maximum (all, for subjects, versions and contexts; 1000 for lists of schemas).
    /// </summary>
    private static JsonArray Page(HttpContext c, IEnumerable<JsonNode> items, int maxLimit = int.MaxValue)
    {
        var offset = c.Request.Query.TryGetValue("offset", out var o) ? Math.Max(0, Int(o)) : 0;
        var limit = c.Request.Query.TryGetValue("limit", out var l) && Int(l) is > 0 and var n && n <= maxLimit ? n : maxLimit;
        return new JsonArray(items.Skip(offset).Take(limit).ToArray());
    }

    private static Task WriteRawSchema(HttpContext c, string schema)
    {
        // Confluent returns the schema itself: JSON for AVRO and JSON schemas, text for PROTOBUF.
        var bytes = System.Text.Encoding.UTF8.GetBytes(schema);
        c.Response.StatusCode = 200;
        c.Response.ContentType = ResponseType(c.Request) ?? ContentType;
        return c.Response.Body.WriteAsync(bytes, c.RequestAborted).AsTask();
    }

    private Task SchemaById(HttpContext c)
    {
        var id = Id(c);
        if (c.Request.QueryString.HasValue)
        {
            var content = store.GetById(id);
            var obj = new JsonObject();
            AddContent(obj, content, Text(c, id, content));
            if (Flag(c, "fetchMaxId")) obj["maxId"] = store.MaxId;
            return WriteAsync(c, obj);
        }
        if (!_idResponses.TryGetValue(id, out var bytes))
        {
            var obj = new JsonObject();
            AddContent(obj, store.GetById(id));
            bytes = JsonSerializer.SerializeToUtf8Bytes(obj, RegistryJson.Options);
            _idResponses[id] = bytes;
        }
        return WriteBytesAsync(c, bytes);
    }

    /// <summary>The newest version whose metadata properties hold every key=value pair asked for (repeated key/value parameters).</summary>
    private Task LatestWithMetadata(HttpContext c)
    {
        var subject = Route(c, "subject");
        var deleted = Flag(c, "deleted");
        var versions = store.Versions(subject, deleted);
        if (versions.Count == 0) throw RegistryException.SubjectNotFound(subject);
        var keys = c.Request.Query["key"];
        var values = c.Request.Query["value"];
        for (var i = versions.Count - 1; i >= 0; i--)
        {
            var v = store.GetVersion(subject, versions[i].ToString(System.Globalization.CultureInfo.InvariantCulture), deleted);
            var properties = v.Content.Metadata?["properties"] as JsonObject;
            var matches = true;
            for (var k = 0; k < keys.Count && matches; k++)
                matches = properties is not null && (string?)properties[keys[k]!] == (k < values.Count ? values[k] : null);
            if (matches) return WriteAsync(c, VersionToJson(v));
        }
        throw RegistryException.SchemaNotFound();
    }

    private Task ListSchemas(HttpContext c)
    {
        var prefix = c.Request.Query["subjectPrefix"].FirstOrDefault();
        var deleted = Flag(c, "deleted");
        var latestOnly = Flag(c, "latestOnly");
        var result = new List<JsonNode>();
        foreach (var subject in store.Subjects(deleted, prefix: prefix).Where(s => RegistryAuthentication.MayRead(c, s)))
        {
            var versions = store.Versions(subject, deleted);
            foreach (var v in latestOnly ? versions.TakeLast(1) : versions)
                result.Add(VersionToJson(store.GetVersion(subject, v.ToString(System.Globalization.CultureInfo.InvariantCulture), deleted)));
        }
        return WriteAsync(c, Page(c, result, SchemaSearchLimit));
    }

    private async Task RegisterAsync(HttpContext c)
    {
        var subject = ValidSubject(Route(c, "subject"));
        var request = ToSchemaRequest(await ReadObjectAsync(c.Request).ConfigureAwait(false));
        var registered = await store.RegisterAsync(subject, request, Flag(c, "normalize"), c.RequestAborted).ConfigureAwait(false);
        // Confluent's RegisterSchemaResponse: the id first (all older clients read only it), then the version as stored.
        var response = new JsonObject { ["id"] = registered.Id, ["version"] = registered.Version };
        AddContent(response, registered.Content, Text(c, registered.Id, registered.Content));
        await WriteAsync(c, response).ConfigureAwait(false);
    }

    private async Task LookupAsync(HttpContext c)
    {
        var request = ToSchemaRequest(await ReadObjectAsync(c.Request).ConfigureAwait(false));
        var found = store.Lookup(Route(c, "subject"), request, Flag(c, "normalize"), Flag(c, "deleted"));
        await WriteAsync(c, VersionToJson(found, Text(c, found.Id, found.Content))).ConfigureAwait(false);
    }

    private async Task CompatibilityAsync(HttpContext c, string? version)
    {
        var subject = Route(c, "subject");
        if (version is not null && version is not ("latest" or "-1")) SchemaStore.ParseVersion(version);
        var json = await ReadObjectAsync(c.Request).ConfigureAwait(false);
        var verbose = Flag(c, "verbose");
        IReadOnlyList<string> issues;
        try
        {
            issues = store.TestCompatibility(subject, ToSchemaRequest(json), version, Flag(c, "normalize"), c.RequestAborted);
        }
        catch (RegistryException e) when (verbose && e.ErrorCode == 42201)
        {
            // Confluent answers a verbose check of an invalid schema with the reason instead of an error.
            issues = [e.Message];
        }
        var body = new JsonObject { ["is_compatible"] = issues.Count == 0 };
        if (verbose) body["messages"] = new JsonArray(issues.Select(i => (JsonNode)JsonValue.Create(i)).ToArray());
        await WriteAsync(c, body).ConfigureAwait(false);
    }

    private async Task PutConfigAsync(HttpContext c, string? subject)
    {
        if (subject is not null) ValidSubject(subject);
        var body = await ReadObjectAsync(c.Request).ConfigureAwait(false);
        var level = (string?)(body["compatibility"] ?? body["compatibilityLevel"]);
        var stored = new JsonObject();
        foreach (var (key, value) in body)
            if (key is not ("compatibility" or "compatibilityLevel")) stored[key] = value?.DeepClone();
        if (level is not null)
        {
            if (!CompatibilityLevels.TryParse(level, out var parsed)) throw RegistryException.InvalidCompatibilityLevel();
            stored["compatibilityLevel"] = CompatibilityLevels.ToName(parsed);
        }
        else
        {
            var previous = subject is null ? store.GlobalConfig() : store.SubjectConfig(subject);
            if (previous?["compatibilityLevel"] is { } kept) stored["compatibilityLevel"] = kept.DeepClone();
            else if (stored.Count == 0) throw RegistryException.InvalidCompatibilityLevel();
        }
        await store.SetConfigAsync(subject, stored, c.RequestAborted).ConfigureAwait(false);
        var response = (JsonObject)body.DeepClone();
        if (level is not null)
        {
            response.Remove("compatibilityLevel");
            response["compatibility"] = stored["compatibilityLevel"]!.DeepClone();
        }
        await WriteAsync(c, response).ConfigureAwait(false);
    }

    private async Task PutModeAsync(HttpContext c, string? subject)
    {
        if (subject is not null) ValidSubject(subject);
        var body = await ReadObjectAsync(c.Request).ConfigureAwait(false);
        var mode = ((string?)body["mode"])?.ToUpperInvariant();
        if (!Modes.IsValid(mode)) throw RegistryException.InvalidMode();
        await store.SetModeAsync(subject, mode, Flag(c, "force"), c.RequestAborted).ConfigureAwait(false);
        await WriteAsync(c, new JsonObject { ["mode"] = mode }).ConfigureAwait(false);
    }
}
