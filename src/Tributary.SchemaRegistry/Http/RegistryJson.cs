using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Tributary.SchemaRegistry.Http;

/// <summary>
/// Request parsing and response writing in Confluent's content types. Like Confluent's resources, responses are
/// produced as <c>application/vnd.schemaregistry.v1+json</c> (weight 1), <c>application/vnd.schemaregistry+json</c>
/// (0.9) or <c>application/json</c> (0.5), chosen by the request's Accept header: the client's highest q wins, the
/// server's weight breaks ties. Requests are read in those three types or <c>application/octet-stream</c>, with any
/// parameters (charset).
/// </summary>
internal static class RegistryJson
{
    public const string ContentType = "application/vnd.schemaregistry.v1+json";
    public const string DefaultContentType = "application/vnd.schemaregistry+json";
    public const string JsonContentType = "application/json";

    private static readonly (string Type, double Weight)[] Produced = [(ContentType, 1.0), (DefaultContentType, 0.9), (JsonContentType, 0.5)];

    private static readonly string[] Consumed = [ContentType, DefaultContentType, JsonContentType, "application/octet-stream"];

    /// <summary>The media type to answer in; null when the Accept header allows none of those produced (406).</summary>
    public static string? ResponseType(HttpRequest request)
    {
        var accept = request.Headers.Accept;
        // the common cases (no header, the v1 type, anything) without parsing
        if (accept.Count == 0 || accept is [ContentType or "*/*"]) return ContentType;
        if (!Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParseList(accept, out var ranges)) return ContentType;
        string? best = null;
        var bestQ = 0.0;
        var bestWeight = 0.0;
        foreach (var (type, weight) in Produced)
        {
            var q = ClientQuality(ranges, type);
            if (q <= 0) continue;
            if (q > bestQ || (q == bestQ && weight > bestWeight))
            {
                best = type;
                bestQ = q;
                bestWeight = weight;
            }
        }
        return best;
    }

    /// <summary>The q of the most specific range that matches <paramref name="type"/> (exact, then type/*, then */*).</summary>
    private static double ClientQuality(IList<Microsoft.Net.Http.Headers.MediaTypeHeaderValue> ranges, string type)
    {
        var specificity = -1;
        var quality = 0.0;
        var slash = type.IndexOf('/', StringComparison.Ordinal);
        foreach (var range in ranges)
        {
            var mediaType = range.MediaType.Value ?? "";
            int s;
            if (mediaType.Equals(type, StringComparison.OrdinalIgnoreCase)) s = 2;
            else if (mediaType.Length == slash + 2 && mediaType.EndsWith("/*", StringComparison.Ordinal)
                     && string.Compare(mediaType, 0, type, 0, slash, StringComparison.OrdinalIgnoreCase) == 0) s = 1;
            else if (mediaType == "*/*") s = 0;
            else continue;
            if (s <= specificity) continue;
            specificity = s;
            quality = range.Quality ?? 1.0;
        }
        return quality;
    }

    /// <summary>Whether a request body's Content-Type (absent counts as octet-stream, as in JAX-RS) is one Confluent reads.</summary>
    public static bool IsReadable(string? contentType) =>
        contentType is null
        || (Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(contentType, out var parsed)
            && Array.Exists(Consumed, t => t.Equals(parsed.MediaType.Value, StringComparison.OrdinalIgnoreCase)));

    /// <summary>Quotes inside schema strings as \" (as Confluent writes them), not \u0022.</summary>
    public static readonly JsonSerializerOptions Options = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static async Task<JsonObject> ReadObjectAsync(HttpRequest request)
    {
        JsonNode? node;
        try
        {
            node = await JsonNode.ParseAsync(request.Body, cancellationToken: request.HttpContext.RequestAborted).ConfigureAwait(false);
        }
        catch (JsonException e)
        {
            throw new RegistryException(400, $"Unexpected JSON: {e.Message}");
        }
        return node as JsonObject ?? throw new RegistryException(422, "Request body must be a JSON object");
    }

    public static SchemaRequest ToSchemaRequest(JsonObject body)
    {
        var schema = body["schema"] is JsonValue sv && sv.TryGetValue<string>(out var s) ? s : null;
        if (string.IsNullOrWhiteSpace(schema)) throw RegistryException.EmptySchema();
        var type = body["schemaType"] is JsonValue tv && tv.TryGetValue<string>(out var t) ? t : null;
        int? Int(string name) => body[name] is JsonValue v && v.TryGetValue<int>(out var n) && n > 0 ? n : null;
        return new SchemaRequest(
            schema,
            SchemaTypes.Normalize(type),
            Storage.SchemaLogRecords.ReferencesFromJson(body["references"]),
            body["metadata"]?.DeepClone(),
            body["ruleSet"]?.DeepClone(),
            Int("id"),
            Int("version"));
    }

    /// <summary>The fields Confluent returns for a schema: schemaType only when not AVRO, references only when present.</summary>
    public static void AddContent(JsonObject obj, SchemaContent content, string? schemaText = null)
    {
        if (content.SchemaType != SchemaTypes.Avro) obj["schemaType"] = content.SchemaType;
        if (content.References.Count > 0) obj["references"] = Storage.SchemaLogRecords.ReferencesToJson(content.References);
        if (content.Metadata is not null) obj["metadata"] = content.Metadata.DeepClone();
        if (content.RuleSet is not null) obj["ruleSet"] = content.RuleSet.DeepClone();
        obj["schema"] = schemaText ?? content.Schema;
    }

    public static JsonObject VersionToJson(SubjectVersion v, string? schemaText = null)
    {
        var obj = new JsonObject { ["subject"] = v.Subject, ["version"] = v.Version, ["id"] = v.Id };
        AddContent(obj, v.Content, schemaText);
        if (v.Deleted) obj["deleted"] = true;
        return obj;
    }

    public static Task WriteAsync(HttpContext context, JsonNode? body, int status = 200) =>
        WriteBytesAsync(context, JsonSerializer.SerializeToUtf8Bytes(body, Options), status);

    public static Task WriteBytesAsync(HttpContext context, byte[] bytes, int status = 200)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = ResponseType(context.Request) ?? ContentType;
        context.Response.ContentLength = bytes.Length;
        return context.Response.Body.WriteAsync(bytes, context.RequestAborted).AsTask();
    }

    public static Task WriteErrorAsync(HttpContext context, int status, int errorCode, string message) =>
        WriteAsync(context, new JsonObject { ["error_code"] = errorCode, ["message"] = message }, status);

    public static bool Flag(HttpContext context, string name) =>
        context.Request.Query.TryGetValue(name, out var v) && string.Equals(v.ToString(), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// A path parameter, fully decoded. Kestrel decodes every escape in the path but <c>%2F</c>, so that it does not
    /// split segments; Confluent's registry (JAX-RS) decodes it too, and clients escape the slash of subjects named after
    /// .proto files (<c>compat%2Fmoney.proto</c>). A subject holding the text "%2F" itself cannot be told apart.
    /// </summary>
    public static string Route(HttpContext context, string name) =>
        ((string)context.Request.RouteValues[name]!).Replace("%2F", "/", StringComparison.OrdinalIgnoreCase);
}
