using System.Text.Json.Nodes;
using Tributary.SchemaRegistry.Json;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>
/// A registered JSON schema must be a valid schema of the draft its <c>$schema</c> names; one that is not is refused
/// with 42201 and a reason naming the draft and the offending keyword. Each case is valid in some drafts and not in
/// others, so the draft decision itself is under test, not only the shared rules.
/// </summary>
public sealed class JsonSchemaDraftTests(RegistryFixture fixture) : IClassFixture<RegistryFixture>
{
    private const string Draft4 = "http://json-schema.org/draft-04/schema#";
    private const string Draft6 = "http://json-schema.org/draft-06/schema#";
    private const string Draft7 = "http://json-schema.org/draft-07/schema#";
    private const string Draft201909 = "https://json-schema.org/draft/2019-09/schema";
    private const string Draft202012 = "https://json-schema.org/draft/2020-12/schema";

    private static string With(string draft, string body)
    {
        var obj = JsonNode.Parse(body)!.AsObject();
        var result = new JsonObject { ["$schema"] = draft };
        foreach (var (k, v) in obj) result[k] = v?.DeepClone();
        return result.ToJsonString();
    }

    public static TheoryData<string, string, string> Valid => new()
    {
        { "draft-04", Draft4, """{"type":"object","properties":{"price":{"type":"number","minimum":0,"exclusiveMinimum":true}},"required":["price"]}""" },
        { "draft-04", "http://json-schema.org/schema#", """{"type":"array","items":[{"type":"string"}],"additionalItems":false}""" },
        { "draft-06", Draft6, """{"type":"object","properties":{"price":{"type":"number","exclusiveMinimum":0},"any":true},"propertyNames":{"maxLength":8}}""" },
        { "draft-07", Draft7, """{"type":"object","if":{"properties":{"kind":{"const":"a"}}},"then":{"required":["a"]},"else":{"required":[]}}""" },
        { "draft-07 (no $schema)", "", """{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}""" },
        { "draft 2019-09", Draft201909, """{"type":"object","$defs":{"id":{"type":"string"}},"properties":{"id":{"$ref":"#/$defs/id"}},"dependentRequired":{"a":["b"]},"unevaluatedProperties":false}""" },
        { "draft 2020-12", Draft202012, """{"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":false}""" },
    };

    public static TheoryData<string, string, string, string> Invalid => new()
    {
        // a boolean subschema only became legal in draft 6
        { "draft-04", Draft4, """{"type":"object","properties":{"any":true}}""", "/properties/any" },
        // draft 4's exclusiveMinimum is a boolean modifier of minimum
        { "draft-04", Draft4, """{"type":"number","exclusiveMinimum":5}""", "exclusiveMinimum" },
        { "draft-04", Draft4, """{"type":"object","required":[]}""", "required" },
        // and from draft 6 on it is a number
        { "draft-06", Draft6, """{"type":"number","minimum":0,"exclusiveMinimum":true}""", "exclusiveMinimum" },
        { "draft-06", Draft6, """{"type":"object","properties":{"a":{"type":"strnig"}}}""", "/properties/a/type" },
        { "draft-07", Draft7, """{"type":"object","if":5}""", "/if" },
        { "draft-07 (no $schema)", "", """{"type":"string","maxLength":-1}""", "/maxLength" },
        { "draft-07 (no $schema)", "", """{"type":"string","pattern":"(["}""", "/pattern" },
        { "draft 2019-09", Draft201909, """{"type":"object","dependentRequired":{"a":"b"}}""", "/dependentRequired/a" },
        { "draft 2019-09", Draft201909, """{"type":"object","$defs":{"x":{"minProperties":"two"}}}""", "/$defs/x/minProperties" },
        { "draft 2020-12", Draft202012, """{"type":"array","prefixItems":{"type":"string"}}""", "/prefixItems" },
        { "draft 2020-12", Draft202012, """{"type":"object","patternProperties":{"[a-":{"type":"string"}}}""", "patternProperties" },
    };

    [Theory]
    [MemberData(nameof(Valid))]
    public async Task A_valid_schema_of_its_draft_is_registered(string draft, string uri, string body)
    {
        var schema = uri.Length == 0 ? body : With(uri, body);
        var subject = $"draft-ok-{Guid.NewGuid():N}";
        var (status, response) = await fixture.Http.PostJson($"/subjects/{subject}/versions", new JsonObject { ["schema"] = schema, ["schemaType"] = "JSON" });
        Assert.True(status == 200, $"{draft}: {status} {response?.ToJsonString()}");
        Assert.True((int)response!["id"]! > 0);
    }

    [Theory]
    [MemberData(nameof(Invalid))]
    public async Task An_invalid_schema_of_its_draft_is_refused_with_42201_and_a_reason(string draft, string uri, string body, string location)
    {
        var schema = uri.Length == 0 ? body : With(uri, body);
        var (status, response) = await fixture.Http.PostJson($"/subjects/draft-bad-{Guid.NewGuid():N}/versions", new JsonObject { ["schema"] = schema, ["schemaType"] = "JSON" });
        Assert.True(status == 422, $"{draft}: {status} {response?.ToJsonString()}");
        Assert.Equal(42201, (int)response!["error_code"]!);
        var message = (string)response["message"]!;
        Assert.StartsWith("Invalid schema ", message, StringComparison.Ordinal);
        Assert.Contains($"not a valid {draft.Replace(" (no $schema)", "", StringComparison.Ordinal)} JSON schema", message, StringComparison.Ordinal);
        Assert.Contains(location, message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(Draft4, JsonSchemaDraft.Draft4)]
    [InlineData("https://json-schema.org/draft-04/schema", JsonSchemaDraft.Draft4)]
    [InlineData("http://json-schema.org/schema#", JsonSchemaDraft.Draft4)]
    [InlineData("https://json-schema.org/draft-06/schema#", JsonSchemaDraft.Draft6)]
    [InlineData("http://json-schema.org/draft-07/schema", JsonSchemaDraft.Draft7)]
    [InlineData("http://json-schema.org/draft/2019-09/schema#", JsonSchemaDraft.Draft201909)]
    [InlineData(Draft202012, JsonSchemaDraft.Draft202012)]
    [InlineData("http://example.com/my-dialect", JsonSchemaDraft.Draft7)]
    public void The_draft_comes_from_schema_and_defaults_to_draft_7(string uri, JsonSchemaDraft expected)
    {
        using var document = System.Text.Json.JsonDocument.Parse(With(uri, "{}"));
        Assert.Equal(expected, JsonSchemaDrafts.Of(document.RootElement));
    }
}
