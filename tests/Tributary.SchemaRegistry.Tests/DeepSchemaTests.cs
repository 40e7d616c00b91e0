using System.Text;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>
/// Schemas nested deeply enough to overflow the stack of any unbounded recursion (issue 20, item 3). Each used to kill
/// the process; now each gets 422 / 42201 naming the bound, and the registry keeps serving. They run against a child
/// process (<see cref="ServedRegistry"/>), so the old code fails these tests instead of ending the test run.
/// </summary>
[Trait("Category", "Slow")]
public sealed class DeepSchemaTests(ServedRegistry registry, ITestOutputHelper log) : IClassFixture<ServedRegistry>
{
    private static readonly string TooDeep = $"schema nesting exceeds {SchemaNesting.MaxDepth} levels";

    private static string NestedMessages(int depth)
    {
        var text = new StringBuilder("syntax = \"proto3\";\n");
        for (var i = 0; i < depth; i++) text.Append("message M").Append(i).Append(" {\n");
        text.Append("string a = 1;\n");
        for (var i = 0; i < depth; i++) text.Append("}\n");
        return text.ToString();
    }

    private async Task ExpectTooDeepAsync(Task<(int Status, JsonNode? Body)> request)
    {
        var (status, body) = await request;
        await registry.AssertAliveAsync(log);
        Assert.True(status == 422, $"{status} {Short(body)}");
        Assert.Equal(42201, (int)body!["error_code"]!);
        Assert.Contains(TooDeep, (string)body["message"]!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_proto_of_20000_nested_messages_is_refused()
    {
        var proto = NestedMessages(20_000);
        Assert.True(proto.Length > 300_000);
        await ExpectTooDeepAsync(registry.Http.PostJson("/subjects/deep-proto-value/versions", new { schemaType = "PROTOBUF", schema = proto }));
    }

    [Fact]
    public async Task A_proto_at_the_bound_is_accepted_and_one_level_more_is_not()
    {
        var (status, body) = await registry.Http.PostJson("/subjects/bound-proto-value/versions", new { schemaType = "PROTOBUF", schema = NestedMessages(SchemaNesting.MaxDepth) });
        Assert.True(status == 200, body?.ToJsonString());
        await ExpectTooDeepAsync(registry.Http.PostJson("/subjects/bound-proto2-value/versions", new { schemaType = "PROTOBUF", schema = NestedMessages(SchemaNesting.MaxDepth + 1) }));
    }

    [Fact]
    public async Task A_serialized_descriptor_of_20000_nested_messages_is_refused()
    {
        // FileDescriptorProto { message_type (4) = DescriptorProto { name (1) = "M", nested_type (3) = ... } }
        const int depth = 20_000;
        var lengths = new int[depth + 1];
        lengths[0] = 3;
        for (var k = 1; k <= depth; k++) lengths[k] = 3 + 1 + VarintLength(lengths[k - 1]) + lengths[k - 1];
        var bytes = new List<byte> { 0x22 };
        Varint(bytes, lengths[depth]);
        for (var k = depth; k >= 1; k--)
        {
            bytes.AddRange([0x0A, 0x01, (byte)'M', 0x1A]);
            Varint(bytes, lengths[k - 1]);
        }
        bytes.AddRange([0x0A, 0x01, (byte)'M']);
        var (status, body) = await registry.Http.PostJson("/subjects/deep-descriptor-value/versions", new { schemaType = "PROTOBUF", schema = Convert.ToBase64String(bytes.ToArray()) });
        await registry.AssertAliveAsync(log);
        Assert.True(status == 422, $"{status} {body?.ToJsonString()}");
        Assert.Equal(42201, (int)body!["error_code"]!);
    }

    [Fact]
    public async Task A_json_schema_ref_chain_of_10000_definitions_is_refused_at_the_compatibility_check()
    {
        static string Chain(JsonObject leaf)
        {
            var definitions = new JsonObject();
            for (var i = 0; i < 10_000; i++)
                definitions["d" + i] = new JsonObject { ["type"] = "object", ["properties"] = new JsonObject { ["n"] = new JsonObject { ["$ref"] = $"#/definitions/d{i + 1}" } } };
            definitions["d10000"] = leaf;
            return new JsonObject { ["$ref"] = "#/definitions/d0", ["definitions"] = definitions }.ToJsonString();
        }

        // The text nests five levels; only the walk that follows $ref goes 10,000 deep.
        var (status, body) = await registry.Http.PostJson("/subjects/ref-chain-value/versions", new { schemaType = "JSON", schema = Chain(new JsonObject { ["type"] = "string" }) });
        Assert.True(status == 200, body?.ToJsonString());
        await ExpectTooDeepAsync(registry.Http.PostJson("/subjects/ref-chain-value/versions", new { schemaType = "JSON", schema = Chain(new JsonObject { ["type"] = "string", ["maxLength"] = 5 }) }));
    }

    [Fact]
    public async Task An_avro_chain_of_10000_named_records_is_refused_at_the_compatibility_check()
    {
        static string Chain(string extra)
        {
            var union = new JsonArray { JsonNode.Parse($$"""{"type":"record","name":"T0","fields":[{"name":"a","type":"int"}{{extra}}]}""") };
            for (var i = 1; i < 10_000; i++)
                union.Add(new JsonObject { ["type"] = "record", ["name"] = "T" + i, ["fields"] = new JsonArray { new JsonObject { ["name"] = "f", ["type"] = "T" + (i - 1) } } });
            return union.ToJsonString();
        }

        // Each record names the one before it: the text is flat, the resolution walk is 10,000 deep.
        var (status, body) = await registry.Http.PostJson("/subjects/avro-chain-value/versions", new { schema = Chain("") });
        Assert.True(status == 200, body?.ToJsonString());
        await ExpectTooDeepAsync(registry.Http.PostJson("/subjects/avro-chain-value/versions", new { schema = Chain(""",{"name":"b","type":"int","default":0}""") }));
    }

    [Fact]
    public async Task The_deepest_json_text_the_parser_admits_is_checked_without_overflow()
    {
        // 31 levels of properties is JSON depth 63, just inside System.Text.Json's bound of 64.
        static string Nested(int levels, string leaf)
        {
            var schema = leaf;
            for (var i = 0; i < levels; i++) schema = $$$"""{"properties":{"a":{{{schema}}}}}""";
            return schema;
        }

        var (status, body) = await registry.Http.PostJson("/subjects/deep-text-value/versions", new { schemaType = "JSON", schema = Nested(31, """{"type":"string"}""") });
        Assert.True(status == 200, body?.ToJsonString());
        (status, body) = await registry.Http.PostJson("/subjects/deep-text-value/versions", new { schemaType = "JSON", schema = Nested(31, """{"type":"string","maxLength":3}""") });
        await registry.AssertAliveAsync(log);
        Assert.True(status == 409, body?.ToJsonString());
        (status, body) = await registry.Http.PostJson("/subjects/deeper-text-value/versions", new { schemaType = "JSON", schema = Nested(40, "{}") });
        await registry.AssertAliveAsync(log);
        Assert.True(status == 422, body?.ToJsonString());
        Assert.Equal(42201, (int)body!["error_code"]!);
    }

    private static string Short(JsonNode? body)
    {
        var text = body?.ToJsonString() ?? "";
        return text.Length <= 300 ? text : text[..300];
    }

    private static int VarintLength(int value)
    {
        var n = 1;
        while (value >= 0x80)
        {
            value >>= 7;
            n++;
        }
        return n;
    }

    private static void Varint(List<byte> bytes, int value)
    {
        while (value >= 0x80)
        {
            bytes.Add((byte)(value | 0x80));
            value >>= 7;
        }
        bytes.Add((byte)value);
    }
}
