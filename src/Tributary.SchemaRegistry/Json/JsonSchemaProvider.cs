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
        if (root is JsonObject obj && obj["type"] is { } type && !ValidType(type))
            throw RegistryException.InvalidSchema($"{schema}, details: invalid type {type.ToJsonString()}");
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
