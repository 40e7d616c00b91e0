using System.Text;
using CsCheck;
using Tributary.SchemaRegistry.Avro;
using Tributary.SchemaRegistry.Json;
using Tributary.SchemaRegistry.Protobuf;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>
/// Properties over generated schemas: every schema is compatible with itself and with its normalized form (both
/// ways), normalizing is idempotent, and adding a defaulted field keeps a record backward compatible.
/// </summary>
public sealed class SelfCompatibilityPropertyTests
{
    private static readonly string[] Primitives = ["null", "boolean", "int", "long", "float", "double", "bytes", "string"];

    /// <summary>A random Avro schema built from a seed: records, enums, fixed, arrays, maps, unions, logical types.</summary>
    internal static string RandomAvro(int seed)
    {
        var random = new Random(seed);
        var names = 0;
        string Type(int depth)
        {
            var choice = depth > 3 ? random.Next(3) : random.Next(11);
            switch (choice)
            {
                case 0 or 1 or 2:
                    return $"\"{Primitives[random.Next(Primitives.Length)]}\"";
                case 3:
                    return $$"""{"type":"array","items":{{Type(depth + 1)}}}""";
                case 4:
                    return $$"""{"type":"map","values":{{Type(depth + 1)}}}""";
                case 5:
                    var branches = Primitives.OrderBy(_ => random.Next()).Take(random.Next(1, 4)).Select(p => $"\"{p}\"");
                    return $"[{string.Join(",", branches)}]";
                case 6:
                    var symbols = Enumerable.Range(0, random.Next(1, 5)).Select(i => $"\"S{i}\"");
                    return $$"""{"type":"enum","name":"E{{names++}}","symbols":[{{string.Join(",", symbols)}}]}""";
                case 7:
                    return $$"""{"type":"fixed","name":"F{{names++}}","size":{{random.Next(1, 32)}}}""";
                case 8:
                    return random.Next(2) == 0 ? """{"type":"long","logicalType":"timestamp-millis"}""" : """{"type":"int","logicalType":"date"}""";
                default:
                    return Record(depth + 1);
            }
        }
        string Record(int depth)
        {
            var name = $"R{names++}";
            var fields = Enumerable.Range(0, random.Next(0, 5)).Select(i =>
            {
                var type = Type(depth);
                var dflt = type == "\"int\"" && random.Next(2) == 0 ? ",\"default\":7" : "";
                return $$"""{"name":"f{{i}}","type":{{type}}{{dflt}},"doc":"field {{i}}"}""";
            });
            var ns = random.Next(3) == 0 ? ",\"namespace\":\"com.example.n" + random.Next(3) + "\"" : "";
            return $$"""{"type":"record","name":"{{name}}"{{ns}},"fields":[{{string.Join(",", fields)}}]}""";
        }
        return Record(0);
    }

    [Fact]
    public void Avro_schema_is_compatible_with_itself_and_its_normalized_form()
    {
        var provider = new AvroSchemaProvider();
        Gen.Int.Sample(seed =>
        {
            var text = RandomAvro(seed);
            var schema = provider.Parse(text, []);
            Assert.Empty(schema.ReaderIssues(schema));
            var normalized = provider.Parse(schema.Normalized, []);
            Assert.Empty(normalized.ReaderIssues(schema));
            Assert.Empty(schema.ReaderIssues(normalized));
            Assert.Equal(schema.Normalized, normalized.Normalized);
        }, iter: 500);
    }

    [Fact]
    public void Avro_record_gaining_a_defaulted_field_stays_backward_compatible()
    {
        var provider = new AvroSchemaProvider();
        Gen.Int.Sample(seed =>
        {
            var text = RandomAvro(seed);
            var evolved = text.Insert(text.LastIndexOf(']'), (text.EndsWith("[]}", StringComparison.Ordinal) ? "" : ",") + """{"name":"added_field","type":"string","default":"n/a"}""");
            var oldSchema = provider.Parse(text, []);
            var newSchema = provider.Parse(evolved, []);
            Assert.Empty(newSchema.ReaderIssues(oldSchema)); // backward
            Assert.Empty(oldSchema.ReaderIssues(newSchema)); // forward: old readers skip it
        }, iter: 300);
    }

    private static string RandomJsonSchema(int seed)
    {
        var random = new Random(seed);
        string[] types = ["string", "integer", "number", "boolean", "null"];
        string Node(int depth)
        {
            switch (depth > 2 ? random.Next(2) : random.Next(5))
            {
                case 0:
                    return $$"""{"type":"{{types[random.Next(types.Length)]}}"}""";
                case 1:
                    return """{"type":"string","maxLength":10,"pattern":"^a"}""";
                case 2:
                    return $$"""{"type":"array","items":{{Node(depth + 1)}}}""";
                case 3:
                    return $$"""{"oneOf":[{{Node(depth + 1)}},{{Node(depth + 1)}}]}""";
                default:
                    var props = Enumerable.Range(0, random.Next(0, 4)).Select(i => $"\"p{i}\":{Node(depth + 1)}");
                    var closed = random.Next(2) == 0 ? ",\"additionalProperties\":false" : "";
                    return $$"""{"type":"object","properties":{{{string.Join(",", props)}}}{{closed}},"required":[]}""";
            }
        }
        return Node(0);
    }

    [Fact]
    public void Json_schema_is_compatible_with_itself_and_its_normalized_form()
    {
        var provider = new JsonSchemaProvider();
        Gen.Int.Sample(seed =>
        {
            var schema = provider.Parse(RandomJsonSchema(seed), []);
            Assert.Empty(schema.ReaderIssues(schema));
            var normalized = provider.Parse(schema.Normalized, []);
            Assert.Empty(normalized.ReaderIssues(schema));
            Assert.Empty(schema.ReaderIssues(normalized));
        }, iter: 300);
    }

    [Fact]
    public void Protobuf_schema_is_compatible_with_itself_and_its_normalized_form()
    {
        var provider = new ProtobufSchemaProvider();
        string[] scalars = ["int32", "int64", "string", "bytes", "bool", "double", "sint32", "fixed64"];
        Gen.Int.Sample(seed =>
        {
            var random = new Random(seed);
            var text = new StringBuilder("syntax = \"proto3\";\npackage p").Append(random.Next(5)).Append(";\n// a comment\n");
            var messages = random.Next(1, 4);
            for (var m = 0; m < messages; m++)
            {
                text.Append("message M").Append(m).Append(" {\n");
                var fields = random.Next(0, 6);
                for (var f = 1; f <= fields; f++)
                {
                    var type = m > 0 && random.Next(4) == 0 ? "M0" : scalars[random.Next(scalars.Length)];
                    text.Append(random.Next(3) == 0 ? "  repeated " : "  ").Append(type).Append(" f").Append(f).Append(" = ").Append(f).Append(";\n");
                }
                text.Append("}\n");
            }
            var schema = provider.Parse(text.ToString(), []);
            Assert.Empty(schema.ReaderIssues(schema));
            var normalized = provider.Parse(schema.Normalized, []);
            Assert.Empty(normalized.ReaderIssues(schema));
            Assert.Empty(schema.ReaderIssues(normalized));
        }, iter: 200);
    }
}
