using System.Text.Json;
using System.Text.Json.Nodes;

namespace Tributary.SchemaRegistry.Json;

/// <summary>
/// JSON Schema (drafts 4, 6, 7, 2019-09 and 2020-12 share the keywords checked here). A schema must be a JSON object
/// or boolean. Canonical form: compact JSON; normalized form: object keys sorted recursively (keyword order carries
/// no meaning in JSON Schema). References resolve by the reference name used in <c>$ref</c>.
/// </summary>
public sealed class JsonSchemaProvider : ISchemaProvider
{
    public string SchemaType => SchemaTypes.Json;

    public ParsedSchema Parse(string schema, IReadOnlyList<KeyValuePair<string, string>> references)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(schema);
        }
        catch (JsonException e)
        {
            throw RegistryException.InvalidSchema($"{schema}, details: not valid JSON: {e.Message}");
        }
        if (root is not JsonObject && root?.GetValueKind() is not (JsonValueKind.True or JsonValueKind.False))
            throw RegistryException.InvalidSchema($"{schema}, details: a JSON schema must be an object or a boolean");
        if (Problem(root, "#") is { } problem)
            throw RegistryException.InvalidSchema($"{schema}, details: {problem}");
        var refs = new Dictionary<string, JsonNode?>(StringComparer.Ordinal);
        foreach (var (name, text) in references)
        {
            try
            {
                refs[name] = JsonNode.Parse(text);
            }
            catch (JsonException e)
            {
                throw RegistryException.InvalidSchema($"reference {name} is not valid JSON: {e.Message}");
            }
        }
        return new JsonParsedSchema(root!, root!.ToJsonString(Http.RegistryJson.Options), Sorted(root)!.ToJsonString(Http.RegistryJson.Options), refs);
    }

    private static readonly HashSet<string> Types = ["null", "boolean", "object", "array", "number", "string", "integer"];

    private static readonly string[] SchemaMaps = ["properties", "patternProperties", "definitions", "$defs", "dependentSchemas"];
    private static readonly string[] SchemaLists = ["allOf", "anyOf", "oneOf", "prefixItems"];
    private static readonly string[] SubSchemas = ["additionalProperties", "additionalItems", "not", "if", "then", "else", "contains", "propertyNames", "unevaluatedProperties", "unevaluatedItems"];
    private static readonly string[] NonNegative = ["maxLength", "minLength", "maxItems", "minItems", "maxProperties", "minProperties", "maxContains", "minContains"];

    /// <summary>
    /// The structural rules every draft shares (4 through 2020-12): keyword values of the right JSON kind, subschemas
    /// that are objects (or booleans from draft 6 on), non-negative counts, positive multipleOf, string arrays for
    /// required. Null when the schema is well formed.
    /// </summary>
    private static string? Problem(JsonNode? node, string path)
    {
        if (node?.GetValueKind() is JsonValueKind.True or JsonValueKind.False) return null;
        if (node is not JsonObject obj) return $"{path} must be a schema (an object or a boolean)";
        if (obj["type"] is { } type && !ValidType(type)) return $"{path}/type: invalid type {type.ToJsonString()}";
        foreach (var key in SchemaMaps)
        {
            if (!obj.TryGetPropertyValue(key, out var map)) continue;
            if (map is not JsonObject children) return $"{path}/{key} must be an object";
            foreach (var (name, child) in children)
                if (Problem(child, $"{path}/{key}/{name}") is { } p) return p;
        }
        foreach (var key in SchemaLists)
        {
            if (!obj.TryGetPropertyValue(key, out var list)) continue;
            if (list is not JsonArray { Count: > 0 } items) return $"{path}/{key} must be a non-empty array";
            for (var i = 0; i < items.Count; i++)
                if (Problem(items[i], $"{path}/{key}/{i}") is { } p) return p;
        }
        foreach (var key in SubSchemas)
            if (obj.TryGetPropertyValue(key, out var sub) && Problem(sub, $"{path}/{key}") is { } p) return p;
        if (obj.TryGetPropertyValue("items", out var itemsNode))
        {
            if (itemsNode is JsonArray tuple)
            {
                for (var i = 0; i < tuple.Count; i++)
                    if (Problem(tuple[i], $"{path}/items/{i}") is { } p) return p;
            }
            else if (Problem(itemsNode, $"{path}/items") is { } p)
            {
                return p;
            }
        }
        if (obj.TryGetPropertyValue("required", out var required)
            && !(required is JsonArray names && names.All(n => n?.GetValueKind() == JsonValueKind.String) || required?.GetValueKind() is JsonValueKind.True or JsonValueKind.False))
            return $"{path}/required must be an array of strings";
        if (obj.TryGetPropertyValue("enum", out var en) && en is not JsonArray) return $"{path}/enum must be an array";
        foreach (var key in NonNegative)
            if (obj.TryGetPropertyValue(key, out var n) && !(n is JsonValue v && v.TryGetValue<double>(out var d) && d >= 0 && d == Math.Floor(d)))
                return $"{path}/{key} must be a non-negative integer";
        if (obj.TryGetPropertyValue("multipleOf", out var m) && !(m is JsonValue mv && mv.TryGetValue<double>(out var md) && md > 0))
            return $"{path}/multipleOf must be a number greater than 0";
        foreach (var key in new[] { "maximum", "minimum" })
            if (obj.TryGetPropertyValue(key, out var b) && b?.GetValueKind() != JsonValueKind.Number) return $"{path}/{key} must be a number";
        if (obj.TryGetPropertyValue("pattern", out var pattern))
        {
            if (pattern is not JsonValue pv || !pv.TryGetValue<string>(out var text)) return $"{path}/pattern must be a string";
            try
            {
                _ = new System.Text.RegularExpressions.Regex(text, System.Text.RegularExpressions.RegexOptions.None, TimeSpan.FromSeconds(1));
            }
            catch (ArgumentException e)
            {
                return $"{path}/pattern is not a valid regular expression: {e.Message}";
            }
        }
        if (obj.TryGetPropertyValue("$ref", out var reference) && reference?.GetValueKind() != JsonValueKind.String) return $"{path}/$ref must be a string";
        return null;
    }

    private static bool ValidType(JsonNode type) => type switch
    {
        JsonValue v when v.TryGetValue<string>(out var s) => Types.Contains(s),
        JsonArray a => a.All(t => t is JsonValue tv && tv.TryGetValue<string>(out var s) && Types.Contains(s)),
        _ => false,
    };

    internal static JsonNode? Sorted(JsonNode? node) => node switch
    {
        JsonObject o => new JsonObject(o.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => KeyValuePair.Create(p.Key, Sorted(p.Value)))),
        JsonArray a => new JsonArray(a.Select(Sorted).ToArray()),
        _ => node?.DeepClone(),
    };
}

internal sealed class JsonParsedSchema(JsonNode root, string canonical, string normalized, IReadOnlyDictionary<string, JsonNode?> references) : ParsedSchema
{
    public JsonNode Root { get; } = root;

    public IReadOnlyDictionary<string, JsonNode?> References { get; } = references;

    public override string SchemaType => SchemaTypes.Json;

    public override string Canonical { get; } = canonical;

    public override string Normalized { get; } = normalized;

    public override IReadOnlyList<string> ReaderIssues(ParsedSchema writer) =>
        writer is JsonParsedSchema w ? JsonSchemaCompatibility.Check(this, w) : [$"schema types differ: {SchemaType} and {writer.SchemaType}"];
}
