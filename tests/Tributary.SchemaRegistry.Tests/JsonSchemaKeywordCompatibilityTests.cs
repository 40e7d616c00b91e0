using Tributary.SchemaRegistry.Json;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>
/// Issue 19 #6: keywords the checker ignored or misread, with Confluent's verdict for a backward change (old schema
/// written, new schema reading) and, when incompatible, the difference type Confluent reports.
/// </summary>
public sealed class JsonSchemaKeywordCompatibilityTests
{
    /// <summary>The schema as draft 2020-12.</summary>
    private static string M(string schema) => "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\"," + schema[1..];

    public static TheoryData<string, string, string, string?> Cases() => new()
    {
        // dependencies (drafts 4-7) and dependentRequired/dependentSchemas (2019-09, 2020-12)
        { "dependency array added", """{"properties":{"a":{},"b":{}},"dependencies":{}}""", """{"properties":{"a":{},"b":{}},"dependencies":{"a":["b"]}}""", "DEPENDENCY_ARRAY_ADDED" },
        { "dependency array narrowed", """{"dependencies":{"a":["b","c"]}}""", """{"dependencies":{"a":["b"]}}""", null },
        { "dependency array extended", """{"dependencies":{"a":["b"]}}""", """{"dependencies":{"a":["b","c"]}}""", "DEPENDENCY_ARRAY_EXTENDED" },
        { "dependency schema narrowed", """{"dependencies":{"a":{"type":"number"}}}""", """{"dependencies":{"a":{"type":"integer"}}}""", "TYPE_NARROWED" },
        { "dependentRequired added", M("""{"dependentRequired":{}}"""), M("""{"dependentRequired":{"a":["b"]}}"""), "DEPENDENCY_ARRAY_ADDED" },
        { "dependentSchemas added", M("""{"dependentSchemas":{}}"""), M("""{"dependentSchemas":{"a":{"type":"string"}}}"""), "DEPENDENCY_SCHEMA_ADDED" },

        // tuples: prefixItems with items (2020-12), items arrays with additionalItems (drafts 4-7), boolean items, unevaluatedItems
        { "prefixItems item added, not covered by items", M("""{"prefixItems":[{"type":"string"}],"items":{"type":"string"}}"""),
            M("""{"prefixItems":[{"type":"string"},{"type":"number"}],"items":{"type":"string"}}"""), "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL" },
        { "prefixItems item removed, covered by items", M("""{"prefixItems":[{"type":"string"},{"type":"string"}],"items":{"type":"string"}}"""),
            M("""{"prefixItems":[{"type":"string"}],"items":{"type":"string"}}"""), null },
        { "tuple item removed, not covered by additionalItems", """{"items":[{"type":"string"},{"type":"number"}],"additionalItems":{"type":"string"}}""",
            """{"items":[{"type":"string"}],"additionalItems":{"type":"string"}}""", "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL" },
        { "tuple item removed from closed array", """{"items":[{"type":"string"},{"type":"number"}],"additionalItems":false}""",
            """{"items":[{"type":"string"}],"additionalItems":false}""", "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL" },
        { "tuple item added to open array", """{"items":[{"type":"string"}]}""", """{"items":[{"type":"string"},{"type":"number"}]}""", "ITEM_ADDED_TO_OPEN_CONTENT_MODEL" },
        { "items true to items false (2020-12)", M("""{"items":true}"""), M("""{"items":false}"""), "ADDITIONAL_ITEMS_REMOVED" },
        { "items false to items true (2020-12)", M("""{"items":false}"""), M("""{"items":true}"""), null },
        { "unevaluatedItems closed", M("""{"prefixItems":[{"type":"string"}]}"""), M("""{"prefixItems":[{"type":"string"}],"unevaluatedItems":false}"""), "UNEVALUATED_ITEMS_REMOVED" },
        { "unevaluatedItems narrowed", M("""{"unevaluatedItems":{"type":"number"}}"""), M("""{"unevaluatedItems":{"type":"integer"}}"""), "TYPE_NARROWED" },

        // not
        { "not widened", """{"not":{"type":"integer"}}""", """{"not":{"type":"number"}}""", "NOT_TYPE_EXTENDED" },
        { "not narrowed", """{"not":{"type":"number"}}""", """{"not":{"type":"integer"}}""", null },

        // patternProperties and unevaluatedProperties
        { "property added, not covered by patternProperties", """{"properties":{},"patternProperties":{"^I_":{"type":"integer"}},"additionalProperties":false}""",
            """{"properties":{"I_1":{"type":"string"}},"patternProperties":{"^I_":{"type":"integer"}},"additionalProperties":false}""", "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL" },
        { "property removed, covered by patternProperties", """{"properties":{"I_1":{"type":"integer"}},"additionalProperties":false}""",
            """{"properties":{},"patternProperties":{"^I_":{"type":"number"}},"additionalProperties":false}""", null },
        { "unevaluatedProperties closed", M("""{"properties":{"a":{"type":"string"}}}"""),
            M("""{"properties":{"a":{"type":"string"}},"unevaluatedProperties":false}"""), "UNEVALUATED_PROPERTIES_REMOVED" },
        { "property added, not covered by unevaluatedProperties", M("""{"properties":{},"unevaluatedProperties":{"type":"string"}}"""),
            M("""{"properties":{"b":{"type":"number"}},"unevaluatedProperties":{"type":"string"}}"""), "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL" },

        // minContains and maxContains
        { "minContains raised", M("""{"contains":{"type":"number"},"minContains":1}"""), M("""{"contains":{"type":"number"},"minContains":2}"""), "MIN_CONTAINS_INCREASED" },
        { "maxContains added", M("""{"contains":{"type":"number"}}"""), M("""{"contains":{"type":"number"},"maxContains":3}"""), "MAX_CONTAINS_ADDED" },
        { "maxContains raised", M("""{"contains":{"type":"number"},"maxContains":3}"""), M("""{"contains":{"type":"number"},"maxContains":4}"""), null },

        // closed content models and required
        { "false property removed from closed model", """{"additionalProperties":false,"properties":{"a":false}}""", """{"additionalProperties":false}""", null },
        { "required property with default added to closed model", """{"properties":{"a":{}},"additionalProperties":false}""",
            """{"properties":{"a":{},"b":{"type":"string","default":"x"}},"required":["b"],"additionalProperties":false}""", null },
        { "required property with default added to open model", """{"properties":{"a":{}}}""",
            """{"properties":{"a":{},"b":{"type":"string","default":"x"}},"required":["b"]}""", "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL" },
        { "existing property made required with a default", """{"properties":{"a":{"type":"string","default":"x"}}}""",
            """{"properties":{"a":{"type":"string","default":"x"}},"required":["a"]}""", null },
        { "unlisted property made required", """{"properties":{"a":{}},"required":["a"]}""", """{"properties":{"a":{}},"required":["b"]}""", null },

        // {} to {"properties": {}} changes the schema's type
        { "empty schema to object", """{}""", """{"properties":{}}""", "TYPE_CHANGED" },
        { "object to empty schema", """{"properties":{}}""", """{}""", null },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Backward_verdicts_are_confluents(string name, string oldSchema, string newSchema, string? incompatibility)
    {
        var provider = new JsonSchemaProvider();
        var issues = provider.Parse(newSchema, []).ReaderIssues(provider.Parse(oldSchema, []));

        if (incompatibility is null) Assert.True(issues.Count == 0, $"{name}: expected compatible, got [{string.Join("; ", issues)}]");
        else Assert.True(issues.Any(i => i.Contains($"errorType:'{incompatibility}'", StringComparison.Ordinal)), $"{name}: expected {incompatibility}, got [{string.Join("; ", issues)}]");
    }
}
