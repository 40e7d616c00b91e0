using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Tributary.SchemaRegistry.Http;

/// <summary>Request parsing and response writing in Confluent's content type.</summary>
internal static class RegistryJson
{
    public const string ContentType = "application/vnd.schemaregistry.v1+json";

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
        if (string.IsNullOrWhiteSpace(schema)) throw RegistryException.InvalidSchema("(empty): the schema field is required");
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
    public static void AddContent(JsonObject obj, SchemaContent content)
    {
        if (content.SchemaType != SchemaTypes.Avro) obj["schemaType"] = content.SchemaType;
        if (content.References.Count > 0) obj["references"] = Storage.SchemaLogRecords.ReferencesToJson(content.References);
        if (content.Metadata is not null) obj["metadata"] = content.Metadata.DeepClone();
        if (content.RuleSet is not null) obj["ruleSet"] = content.RuleSet.DeepClone();
        obj["schema"] = content.Schema;
    }

    public static JsonObject VersionToJson(SubjectVersion v)
    {
        var obj = new JsonObject { ["subject"] = v.Subject, ["version"] = v.Version, ["id"] = v.Id };
        AddContent(obj, v.Content);
        if (v.Deleted) obj["deleted"] = true;
        return obj;
    }

    public static Task WriteAsync(HttpContext context, JsonNode? body, int status = 200) =>
        WriteBytesAsync(context, JsonSerializer.SerializeToUtf8Bytes(body, Options), status);

    public static Task WriteBytesAsync(HttpContext context, byte[] bytes, int status = 200)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = ContentType;
        context.Response.ContentLength = bytes.Length;
        return context.Response.Body.WriteAsync(bytes, context.RequestAborted).AsTask();
    }

    public static Task WriteErrorAsync(HttpContext context, int status, int errorCode, string message) =>
        WriteAsync(context, new JsonObject { ["error_code"] = errorCode, ["message"] = message }, status);

    public static bool Flag(HttpContext context, string name) =>
        context.Request.Query.TryGetValue(name, out var v) && string.Equals(v.ToString(), "true", StringComparison.OrdinalIgnoreCase);

    public static string Route(HttpContext context, string name) => (string)context.Request.RouteValues[name]!;
}
