using System.Text.Json.Nodes;

namespace Tributary.SchemaRegistry.Avro;

/// <summary>
/// What makes two Avro schema texts the same schema without <c>normalize</c>, as Confluent's
/// <c>AvroSchema.canonicalString()</c> (Avro's own re-serialization of the parsed schema) does: whitespace, the order of
/// attributes and how a name is spelled (<c>"a.b.R"</c>, or <c>"R"</c> with <c>"namespace": "a.b"</c> given here or
/// inherited) do not matter; docs, defaults, aliases, logical types and other properties do. Names are written in
/// full and <c>namespace</c> attributes dropped; <c>type</c> and <c>name</c> first, then the other attributes by name.
/// Runs on a schema that already parsed.
/// </summary>
internal static class AvroIdentityForm
{
    private static readonly HashSet<string> Primitives = new(StringComparer.Ordinal)
    {
        "null", "boolean", "int", "long", "float", "double", "bytes", "string",
    };

    public static string Write(string schema) => Rewrite(JsonNode.Parse(schema), "", 1)?.ToJsonString(Http.RegistryJson.Options) ?? "null";

    private static JsonNode? Rewrite(JsonNode? node, string space, int depth)
    {
        SchemaNesting.Check(depth);
        switch (node)
        {
            case JsonValue value when value.TryGetValue<string>(out var name):
                return JsonValue.Create(Primitives.Contains(name) ? name : FullName(name, space));
            case JsonArray union:
                return new JsonArray([.. union.Select(b => Rewrite(b, space, depth + 1))]);
            case JsonObject obj:
                return RewriteObject(obj, space, depth);
            default:
                return node?.DeepClone();
        }
    }

    private static JsonObject RewriteObject(JsonObject obj, string space, int depth)
    {
        var type = obj["type"];
        var kind = type is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
        var result = new JsonObject();
        var inner = space;
        if (kind is "record" or "error" or "enum" or "fixed" && obj["name"] is JsonValue n && n.TryGetValue<string>(out var name))
        {
            var ownSpace = obj["namespace"] is JsonValue ns && ns.TryGetValue<string>(out var given) ? given : space;
            var full = name.Contains('.') ? name : ownSpace.Length == 0 ? name : $"{ownSpace}.{name}";
            var dot = full.LastIndexOf('.');
            inner = dot < 0 ? "" : full[..dot];
            result["type"] = kind;
            result["name"] = full;
        }
        else
        {
            result["type"] = kind is null ? Rewrite(type, space, depth + 1) : JsonValue.Create(kind);
        }
        foreach (var (key, value) in obj.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            switch (key)
            {
                case "type" or "name" or "namespace" when result.ContainsKey("name") || key == "type":
                    continue;
                case "fields" when value is JsonArray fields:
                    result[key] = new JsonArray([.. fields.Select(f => f is JsonObject field ? RewriteField(field, inner, depth + 1) : f?.DeepClone())]);
                    break;
                case "items" or "values":
                    result[key] = Rewrite(value, inner, depth + 1);
                    break;
                default:
                    result[key] = value?.DeepClone();
                    break;
            }
        }
        return result;
    }

    private static JsonObject RewriteField(JsonObject field, string space, int depth)
    {
        var result = new JsonObject { ["name"] = field["name"]?.DeepClone(), ["type"] = Rewrite(field["type"], space, depth) };
        foreach (var (key, value) in field.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (key is "name" or "type") continue;
            result[key] = value?.DeepClone();
        }
        return result;
    }

    private static string FullName(string name, string space) => name.Contains('.') || space.Length == 0 ? name : $"{space}.{name}";
}
