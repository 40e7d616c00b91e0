using Tributary.SchemaRegistry.Json;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>
/// JSON Schema changes with the backward-compatibility verdict of Confluent's rules: may a consumer using the new
/// schema reject a document that the old schema accepted? (Forward is the same question with the roles swapped.)
/// </summary>
public sealed class JsonSchemaCompatibilityTableTests
{
    private static string Obj(string props, string extra = "") => $$"""{"type":"object","properties":{{{props}}}{{extra}}}""";

    private const string Closed = ",\"additionalProperties\":false";

    public static TheoryData<string, string, string, bool> Cases() => new()
    {
        // types
        { "same type", """{"type":"string"}""", """{"type":"string"}""", true },
        { "integer widened to number", """{"type":"integer"}""", """{"type":"number"}""", true },
        { "number narrowed to integer", """{"type":"number"}""", """{"type":"integer"}""", false },
        { "type gains null", """{"type":"string"}""", """{"type":["string","null"]}""", true },
        { "type loses null", """{"type":["string","null"]}""", """{"type":"string"}""", false },
        { "type changed", """{"type":"string"}""", """{"type":"integer"}""", false },
        { "type added to an untyped schema", """{}""", """{"type":"string"}""", false },
        { "type removed", """{"type":"string"}""", """{}""", true },
        { "boolean unchanged", """{"type":"boolean"}""", """{"type":"boolean"}""", true },
        { "object to array", """{"type":"object"}""", """{"type":"array"}""", false },
        { "true to true", "true", "true", true },
        { "true to false", "true", "false", false },
        { "false to anything", "false", """{"type":"string"}""", true },
        { "anything to object", "{}", """{"type":"object"}""", false },

        // content models
        { "property added to open model", Obj("\"a\":{\"type\":\"string\"}"), Obj("\"a\":{\"type\":\"string\"},\"b\":{\"type\":\"string\"}"), false },
        { "property added to closed model", Obj("\"a\":{\"type\":\"string\"}", Closed), Obj("\"a\":{\"type\":\"string\"},\"b\":{\"type\":\"string\"}", Closed), true },
        { "required property added to closed model", Obj("\"a\":{\"type\":\"string\"}", Closed), Obj("\"a\":{\"type\":\"string\"},\"b\":{\"type\":\"string\"}", Closed + ",\"required\":[\"b\"]"), false },
        { "property removed from open model", Obj("\"a\":{\"type\":\"string\"},\"b\":{\"type\":\"string\"}"), Obj("\"a\":{\"type\":\"string\"}"), true },
        { "property removed from closed model", Obj("\"a\":{\"type\":\"string\"},\"b\":{\"type\":\"string\"}", Closed), Obj("\"a\":{\"type\":\"string\"}", Closed), false },
        { "open model closed", Obj("\"a\":{\"type\":\"string\"}"), Obj("\"a\":{\"type\":\"string\"}", Closed), false },
        { "closed model opened", Obj("\"a\":{\"type\":\"string\"}", Closed), Obj("\"a\":{\"type\":\"string\"}"), true },
        { "property type changed", Obj("\"a\":{\"type\":\"string\"}"), Obj("\"a\":{\"type\":\"integer\"}"), false },
        { "property type widened", Obj("\"a\":{\"type\":\"integer\"}"), Obj("\"a\":{\"type\":\"number\"}"), true },
        { "property becomes required", Obj("\"a\":{\"type\":\"string\"}"), Obj("\"a\":{\"type\":\"string\"}", ",\"required\":[\"a\"]"), false },
        { "property no longer required", Obj("\"a\":{\"type\":\"string\"}", ",\"required\":[\"a\"]"), Obj("\"a\":{\"type\":\"string\"}"), true },
        { "empty-schema property added to open model", Obj("\"a\":{\"type\":\"string\"}"), Obj("\"a\":{\"type\":\"string\"},\"b\":{}"), true },
        { "property added, covered by partially open model", Obj("\"a\":{\"type\":\"string\"}", ",\"additionalProperties\":{\"type\":\"string\"}"), Obj("\"a\":{\"type\":\"string\"},\"b\":{\"type\":\"string\"}", ",\"additionalProperties\":{\"type\":\"string\"}"), true },
        { "property added, not covered by partially open model", Obj("\"a\":{\"type\":\"string\"}", ",\"additionalProperties\":{\"type\":\"string\"}"), Obj("\"a\":{\"type\":\"string\"},\"b\":{\"type\":\"integer\"}", ",\"additionalProperties\":{\"type\":\"string\"}"), false },
        { "property removed, covered by partially open model", Obj("\"a\":{\"type\":\"string\"},\"b\":{\"type\":\"string\"}", ",\"additionalProperties\":{\"type\":\"string\"}"), Obj("\"a\":{\"type\":\"string\"}", ",\"additionalProperties\":{\"type\":\"string\"}"), true },
        { "property removed, not covered by partially open model", Obj("\"a\":{\"type\":\"string\"},\"b\":{\"type\":\"integer\"}", ",\"additionalProperties\":{\"type\":\"string\"}"), Obj("\"a\":{\"type\":\"string\"}", ",\"additionalProperties\":{\"type\":\"string\"}"), false },
        { "additionalProperties schema widened", Obj("", ",\"additionalProperties\":{\"type\":\"integer\"}"), Obj("", ",\"additionalProperties\":{\"type\":\"number\"}"), true },
        { "additionalProperties schema narrowed", Obj("", ",\"additionalProperties\":{\"type\":\"number\"}"), Obj("", ",\"additionalProperties\":{\"type\":\"integer\"}"), false },
        { "maxProperties added", """{"type":"object"}""", """{"type":"object","maxProperties":3}""", false },
        { "minProperties added", """{"type":"object"}""", """{"type":"object","minProperties":1}""", false },
        { "maxProperties raised", """{"type":"object","maxProperties":3}""", """{"type":"object","maxProperties":5}""", true },
        { "nested property narrowed", Obj("\"n\":" + Obj("\"x\":{\"type\":\"number\"}")), Obj("\"n\":" + Obj("\"x\":{\"type\":\"integer\"}")), false },
        { "nested closed model gains a property", Obj("\"n\":" + Obj("\"x\":{\"type\":\"number\"}", Closed)), Obj("\"n\":" + Obj("\"x\":{\"type\":\"number\"},\"y\":{\"type\":\"string\"}", Closed)), true },

        // strings
        { "maxLength added", """{"type":"string"}""", """{"type":"string","maxLength":10}""", false },
        { "maxLength increased", """{"type":"string","maxLength":10}""", """{"type":"string","maxLength":20}""", true },
        { "maxLength decreased", """{"type":"string","maxLength":20}""", """{"type":"string","maxLength":10}""", false },
        { "maxLength removed", """{"type":"string","maxLength":20}""", """{"type":"string"}""", true },
        { "minLength added", """{"type":"string"}""", """{"type":"string","minLength":2}""", false },
        { "minLength decreased", """{"type":"string","minLength":4}""", """{"type":"string","minLength":2}""", true },
        { "minLength increased", """{"type":"string","minLength":2}""", """{"type":"string","minLength":4}""", false },
        { "pattern added", """{"type":"string"}""", """{"type":"string","pattern":"^a"}""", false },
        { "pattern removed", """{"type":"string","pattern":"^a"}""", """{"type":"string"}""", true },
        { "pattern unchanged", """{"type":"string","pattern":"^a"}""", """{"type":"string","pattern":"^a"}""", true },
        { "pattern changed", """{"type":"string","pattern":"^a"}""", """{"type":"string","pattern":"^b"}""", false },

        // numbers
        { "maximum added", """{"type":"number"}""", """{"type":"number","maximum":10}""", false },
        { "maximum raised", """{"type":"number","maximum":10}""", """{"type":"number","maximum":20}""", true },
        { "maximum lowered", """{"type":"number","maximum":20}""", """{"type":"number","maximum":10}""", false },
        { "maximum removed", """{"type":"number","maximum":20}""", """{"type":"number"}""", true },
        { "minimum added", """{"type":"number"}""", """{"type":"number","minimum":0}""", false },
        { "minimum lowered", """{"type":"number","minimum":0}""", """{"type":"number","minimum":-5}""", true },
        { "minimum raised", """{"type":"number","minimum":0}""", """{"type":"number","minimum":5}""", false },
        { "exclusiveMaximum added", """{"type":"number"}""", """{"type":"number","exclusiveMaximum":5}""", false },
        { "exclusiveMaximum removed", """{"type":"number","exclusiveMaximum":5}""", """{"type":"number"}""", true },
        { "exclusiveMinimum raised", """{"type":"number","exclusiveMinimum":1}""", """{"type":"number","exclusiveMinimum":2}""", false },
        { "multipleOf added", """{"type":"integer"}""", """{"type":"integer","multipleOf":2}""", false },
        { "multipleOf 2 to 4", """{"type":"integer","multipleOf":2}""", """{"type":"integer","multipleOf":4}""", false },
        { "multipleOf 4 to 2", """{"type":"integer","multipleOf":4}""", """{"type":"integer","multipleOf":2}""", true },
        { "multipleOf removed", """{"type":"integer","multipleOf":4}""", """{"type":"integer"}""", true },

        // enum and const
        { "enum extended", """{"enum":["a","b"]}""", """{"enum":["a","b","c"]}""", true },
        { "enum narrowed", """{"enum":["a","b","c"]}""", """{"enum":["a","b"]}""", false },
        { "enum added", """{"type":"string"}""", """{"type":"string","enum":["a"]}""", false },
        { "enum removed", """{"type":"string","enum":["a"]}""", """{"type":"string"}""", true },
        { "const added", """{"type":"string"}""", """{"type":"string","const":"a"}""", false },
        { "const removed", """{"type":"string","const":"a"}""", """{"type":"string"}""", true },

        // arrays
        { "items unchanged", """{"type":"array","items":{"type":"string"}}""", """{"type":"array","items":{"type":"string"}}""", true },
        { "items widened", """{"type":"array","items":{"type":"integer"}}""", """{"type":"array","items":{"type":"number"}}""", true },
        { "items narrowed", """{"type":"array","items":{"type":"number"}}""", """{"type":"array","items":{"type":"integer"}}""", false },
        { "maxItems added", """{"type":"array"}""", """{"type":"array","maxItems":3}""", false },
        { "maxItems raised", """{"type":"array","maxItems":3}""", """{"type":"array","maxItems":4}""", true },
        { "minItems added", """{"type":"array"}""", """{"type":"array","minItems":1}""", false },
        { "minItems lowered", """{"type":"array","minItems":2}""", """{"type":"array","minItems":1}""", true },
        { "uniqueItems added", """{"type":"array"}""", """{"type":"array","uniqueItems":true}""", false },
        { "uniqueItems removed", """{"type":"array","uniqueItems":true}""", """{"type":"array"}""", true },
        { "tuple item widened", """{"type":"array","items":[{"type":"string"},{"type":"integer"}]}""", """{"type":"array","items":[{"type":"string"},{"type":"number"}]}""", true },
        { "tuple item changed", """{"type":"array","items":[{"type":"string"},{"type":"integer"}]}""", """{"type":"array","items":[{"type":"string"},{"type":"string"}]}""", false },

        // combined
        { "oneOf extended", """{"oneOf":[{"type":"string"},{"type":"integer"}]}""", """{"oneOf":[{"type":"string"},{"type":"integer"},{"type":"boolean"}]}""", true },
        { "oneOf narrowed", """{"oneOf":[{"type":"string"},{"type":"integer"},{"type":"boolean"}]}""", """{"oneOf":[{"type":"string"},{"type":"integer"}]}""", false },
        { "type to oneOf including it", """{"type":"string"}""", """{"oneOf":[{"type":"string"},{"type":"integer"}]}""", true },
        { "oneOf to one of its types", """{"oneOf":[{"type":"string"},{"type":"integer"}]}""", """{"type":"string"}""", false },
        { "anyOf extended", """{"anyOf":[{"type":"string"}]}""", """{"anyOf":[{"type":"string"},{"type":"null"}]}""", true },
        { "allOf loses a constraint", """{"allOf":[{"type":"string"},{"maxLength":5}]}""", """{"allOf":[{"type":"string"}]}""", true },
        { "allOf gains a constraint", """{"allOf":[{"type":"string"}]}""", """{"allOf":[{"type":"string"},{"maxLength":5}]}""", false },

        // references
        { "definition widened through $ref", """{"type":"object","properties":{"a":{"$ref":"#/definitions/X"}},"definitions":{"X":{"type":"integer"}}}""", """{"type":"object","properties":{"a":{"$ref":"#/definitions/X"}},"definitions":{"X":{"type":"number"}}}""", true },
        { "definition narrowed through $ref", """{"type":"object","properties":{"a":{"$ref":"#/$defs/X"}},"$defs":{"X":{"type":"number"}}}""", """{"type":"object","properties":{"a":{"$ref":"#/$defs/X"}},"$defs":{"X":{"type":"integer"}}}""", false },
        { "recursive schema unchanged", """{"type":"object","properties":{"child":{"$ref":"#"},"v":{"type":"string"}}}""", """{"type":"object","properties":{"child":{"$ref":"#"},"v":{"type":"string"}}}""", true },
        { "recursive schema narrowed", """{"type":"object","properties":{"child":{"$ref":"#"},"v":{"type":"number"}}}""", """{"type":"object","properties":{"child":{"$ref":"#"},"v":{"type":"integer"}}}""", false },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Backward_verdicts_follow_confluents_rules(string name, string oldSchema, string newSchema, bool compatible)
    {
        var provider = new JsonSchemaProvider();
        var issues = provider.Parse(newSchema, []).ReaderIssues(provider.Parse(oldSchema, []));
        Assert.True(compatible == (issues.Count == 0), $"{name}: expected {(compatible ? "compatible" : "incompatible")}, got [{string.Join("; ", issues)}]");
    }

    [Theory]
    [InlineData("[1,2]")]
    [InlineData("\"string\"")]
    [InlineData("{\"type\":\"strin\"}")]
    [InlineData("{not json")]
    [InlineData("{\"type\":\"object\",\"properties\":[]}")]
    [InlineData("{\"type\":\"object\",\"properties\":{\"a\":5}}")]
    [InlineData("{\"required\":\"a\"}")]
    [InlineData("{\"maxLength\":-1}")]
    [InlineData("{\"multipleOf\":0}")]
    [InlineData("{\"oneOf\":[]}")]
    [InlineData("{\"items\":{\"type\":7}}")]
    [InlineData("{\"pattern\":\"(\"}")]
    [InlineData("{\"enum\":\"a\"}")]
    public void Invalid_json_schemas_are_42201(string schema)
    {
        var e = Assert.Throws<RegistryException>(() => new JsonSchemaProvider().Parse(schema, []));
        Assert.Equal(42201, e.ErrorCode);
    }
}
