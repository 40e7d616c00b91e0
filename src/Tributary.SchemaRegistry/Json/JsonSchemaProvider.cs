using System.Text.Json;
using System.Text.Json.Nodes;

namespace Tributary.SchemaRegistry.Json;

/// <summary>
/// JSON Schema, drafts 4, 6, 7, 2019-09 and 2020-12. A schema must be a JSON object or boolean and a valid schema of
/// the draft its <c>$schema</c> names (draft 7 without one; see <see cref="JsonSchemaDrafts"/>). Canonical form:
/// compact JSON; normalized form: object keys sorted recursively (keyword order carries no meaning in JSON Schema). References resolve by the reference name used in <c>$ref</c>.
/// </summary>
public sealed class JsonSchemaProvider : ISchemaProvider
{
    public string SchemaType => SchemaTypes.Json;

    public ParsedSchema Parse(string schema, IReadOnlyList<KeyValuePair<string, string>> references)
    {
        JsonNode? root;
        string? problem;
        JsonSchemaDraft draft;
        try
        {
            root = JsonNode.Parse(schema);
            // The meta-schema check reads a JsonDocument; the compatibility rules read the JsonNode.
            using var document = JsonDocument.Parse(schema);
            var element = document.RootElement;
            draft = JsonSchemaDrafts.Of(element);
            problem = element.ValueKind is JsonValueKind.Object or JsonValueKind.True or JsonValueKind.False
                ? JsonSchemaDrafts.Problem(element, draft)
                : "a JSON schema must be an object or a boolean";
        }
        catch (JsonException e)
        {
            throw RegistryException.InvalidSchema($"{schema}, details: not valid JSON: {e.Message}");
        }
        if (problem is not null) throw RegistryException.InvalidSchema($"{schema}, details: {problem}");
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
        return new JsonParsedSchema(root!, root!.ToJsonString(Http.RegistryJson.Options), Sorted(root)!.ToJsonString(Http.RegistryJson.Options), refs, draft);
    }

    internal static JsonNode? Sorted(JsonNode? node) => node switch
    {
        JsonObject o => new JsonObject(o.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => KeyValuePair.Create(p.Key, Sorted(p.Value)))),
        JsonArray a => new JsonArray(a.Select(Sorted).ToArray()),
        _ => node?.DeepClone(),
    };
}

internal sealed class JsonParsedSchema(JsonNode root, string canonical, string normalized, IReadOnlyDictionary<string, JsonNode?> references,
    JsonSchemaDraft draft) : ParsedSchema
{
    public JsonNode Root { get; } = root;

    public IReadOnlyDictionary<string, JsonNode?> References { get; } = references;

    /// <summary>The draft its <c>$schema</c> names (draft 7 without one): it decides what some keywords mean.</summary>
    public JsonSchemaDraft Draft { get; } = draft;

    public override string SchemaType => SchemaTypes.Json;

    public override string Canonical { get; } = canonical;

    public override string Normalized { get; } = normalized;

    public override IReadOnlyList<string> ReaderIssues(ParsedSchema writer, CancellationToken cancellation = default) =>
        writer is JsonParsedSchema w ? JsonSchemaCompatibility.Check(this, w, cancellation) : [$"schema types differ: {SchemaType} and {writer.SchemaType}"];
}
