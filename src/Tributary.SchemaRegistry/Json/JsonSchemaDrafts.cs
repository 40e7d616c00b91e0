using System.Text.Json;
using Json.Schema;

namespace Tributary.SchemaRegistry.Json;

/// <summary>The JSON Schema drafts a registered schema may declare with <c>$schema</c>.</summary>
public enum JsonSchemaDraft
{
    Draft4,
    Draft6,
    Draft7,
    Draft201909,
    Draft202012,
}

/// <summary>
/// Decides which draft a schema is written in and checks it against that draft's meta-schema: a registered schema
/// must be a valid schema of its own draft. The draft comes from <c>$schema</c> (http or https, with or without the
/// trailing <c>#</c>); without it, or with a URI naming no known draft, the schema is read as draft 7, as Confluent
/// does. Drafts 6 to 2020-12 use JsonSchema.Net's bundled meta-schemas; JsonSchema.Net has no draft 4, so
/// <see cref="Draft4MetaSchema"/> states draft 4's rules in draft-07 keywords. Formats are asserted, so a
/// <c>pattern</c> or <c>patternProperties</c> name that is not a regular expression is refused.
/// </summary>
public static class JsonSchemaDrafts
{
    private static readonly Dictionary<string, JsonSchemaDraft> ByUri = new(StringComparer.Ordinal)
    {
        ["json-schema.org/draft-04/schema"] = JsonSchemaDraft.Draft4,
        ["json-schema.org/schema"] = JsonSchemaDraft.Draft4,
        ["json-schema.org/draft-06/schema"] = JsonSchemaDraft.Draft6,
        ["json-schema.org/draft-07/schema"] = JsonSchemaDraft.Draft7,
        ["json-schema.org/draft/2019-09/schema"] = JsonSchemaDraft.Draft201909,
        ["json-schema.org/draft/2020-12/schema"] = JsonSchemaDraft.Draft202012,
    };

    private static readonly EvaluationOptions Options = new() { OutputFormat = OutputFormat.Hierarchical, RequireFormatValidation = true };

    private static readonly Lazy<JsonSchema> Draft4 = new(() => JsonSchema.FromText(Draft4MetaSchema.Text));

    /// <summary>The most meta-schema failures quoted in one 42201 message.</summary>
    private const int MaxReported = 3;

    public static JsonSchemaDraft Of(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("$schema", out var declared) || declared.ValueKind != JsonValueKind.String)
            return JsonSchemaDraft.Draft7;
        var uri = declared.GetString()!.TrimEnd('#');
        var withoutScheme = uri.StartsWith("https://", StringComparison.Ordinal) ? uri[8..]
            : uri.StartsWith("http://", StringComparison.Ordinal) ? uri[7..]
            : null;
        return withoutScheme is not null && ByUri.TryGetValue(withoutScheme, out var draft) ? draft : JsonSchemaDraft.Draft7;
    }

    public static string Name(JsonSchemaDraft draft) => draft switch
    {
        JsonSchemaDraft.Draft4 => "draft-04",
        JsonSchemaDraft.Draft6 => "draft-06",
        JsonSchemaDraft.Draft7 => "draft-07",
        JsonSchemaDraft.Draft201909 => "draft 2019-09",
        _ => "draft 2020-12",
    };

    /// <summary>Why <paramref name="root"/> is not a valid schema of <paramref name="draft"/>; null when it is.</summary>
    public static string? Problem(JsonElement root, JsonSchemaDraft draft)
    {
        var meta = draft switch
        {
            JsonSchemaDraft.Draft4 => Draft4.Value,
            JsonSchemaDraft.Draft6 => MetaSchemas.Draft6,
            JsonSchemaDraft.Draft7 => MetaSchemas.Draft7,
            JsonSchemaDraft.Draft201909 => MetaSchemas.Draft201909,
            _ => MetaSchemas.Draft202012,
        };
        var results = meta.Evaluate(root, Options);
        if (results.IsValid) return null;
        var failures = new List<string>();
        Collect(results, failures);
        if (failures.Count == 0) failures.Add("#: does not match the meta-schema");
        var shown = string.Join("; ", failures.Distinct().Take(MaxReported));
        return $"not a valid {Name(draft)} JSON schema: {shown}";
    }

    /// <summary>
    /// The errors of failed nodes only: a branch of anyOf/oneOf that failed while the combinator passed is no reason.
    /// </summary>
    private static void Collect(EvaluationResults node, List<string> failures)
    {
        if (node.IsValid) return;
        if (node.Errors is { } errors)
            foreach (var (keyword, message) in errors)
                failures.Add($"#{node.InstanceLocation}: {keyword}: {message}");
        if (node.Details is { } details)
            foreach (var child in details) Collect(child, failures);
    }
}
