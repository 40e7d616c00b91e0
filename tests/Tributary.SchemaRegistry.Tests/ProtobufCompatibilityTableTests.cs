using Tributary.SchemaRegistry.Protobuf;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>
/// Protobuf changes with the backward verdict of Confluent's rules (fields by number, wire-compatible scalars). An enum
/// counts as a varint scalar, and a proto3 field without a label has none to compare (Confluent's FieldSchemaDiff), so
/// int32 to repeated int32 passes while optional int32 to repeated int32 does not.
/// </summary>
public sealed class ProtobufCompatibilityTableTests
{
    private static string P3(string body, string package = "acme") => $"syntax = \"proto3\";\npackage {package};\n{body}\n";

    private static string Msg(string fields, string name = "M") => $"message {name} {{ {fields} }}";

    public static TheoryData<string, string, string, bool> Cases()
    {
        var data = new TheoryData<string, string, string, bool>
        {
            { "identical", P3(Msg("string a = 1;")), P3(Msg("string a = 1;")), true },
            { "field added", P3(Msg("string a = 1;")), P3(Msg("string a = 1; int32 b = 2;")), true },
            { "field removed", P3(Msg("string a = 1; int32 b = 2;")), P3(Msg("string a = 1;")), true },
            { "field renamed", P3(Msg("string a = 1;")), P3(Msg("string renamed = 1;")), true },
            { "field number changed", P3(Msg("string a = 1;")), P3(Msg("string a = 2;")), true },
            { "message added", P3(Msg("string a = 1;")), P3(Msg("string a = 1;") + Msg("int32 x = 1;", "N")), true },
            { "message removed", P3(Msg("string a = 1;") + Msg("int32 x = 1;", "N")), P3(Msg("string a = 1;")), false },
            { "message renamed", P3(Msg("string a = 1;")), P3(Msg("string a = 1;", "Renamed")), false },
            { "package changed", P3(Msg("string a = 1;")), P3(Msg("string a = 1;"), "other"), false },
            { "scalar to message", P3(Msg("string a = 1;") + Msg("int32 x = 1;", "N")), P3(Msg("N a = 1;") + Msg("int32 x = 1;", "N")), false },
            { "message to scalar", P3(Msg("N a = 1;") + Msg("int32 x = 1;", "N")), P3(Msg("string a = 1;") + Msg("int32 x = 1;", "N")), false },
            { "enum to int32", P3(Msg("E a = 1;") + "enum E { E0 = 0; }"), P3(Msg("int32 a = 1;") + "enum E { E0 = 0; }"), true },
            { "enum to string", P3(Msg("E a = 1;") + "enum E { E0 = 0; }"), P3(Msg("string a = 1;") + "enum E { E0 = 0; }"), false },
            { "message type changed", P3(Msg("N a = 1;") + Msg("int32 x = 1;", "N") + Msg("int32 y = 1;", "O")), P3(Msg("O a = 1;") + Msg("int32 x = 1;", "N") + Msg("int32 y = 1;", "O")), false },
            { "enum type changed", P3(Msg("E a = 1;") + "enum E { E0 = 0; } enum F { F0 = 0; }"), P3(Msg("F a = 1;") + "enum E { E0 = 0; } enum F { F0 = 0; }"), true },
            { "enum value added", P3(Msg("E a = 1;") + "enum E { E0 = 0; }"), P3(Msg("E a = 1;") + "enum E { E0 = 0; E1 = 1; }"), true },
            { "enum added", P3(Msg("string a = 1;")), P3(Msg("string a = 1;") + "enum E { E0 = 0; }"), true },
            { "nested message field added", P3("message M { message In { int32 x = 1; } In i = 1; }"), P3("message M { message In { int32 x = 1; int32 y = 2; } In i = 1; }"), true },
            { "nested message removed", P3("message M { message In { int32 x = 1; } int32 z = 2; }"), P3("message M { int32 z = 2; }"), false },
            { "nested field scalar changed", P3("message M { message In { int32 x = 1; } In i = 1; }"), P3("message M { message In { string x = 1; } In i = 1; }"), false },
            { "oneof added with new fields", P3(Msg("string a = 1;")), P3(Msg("string a = 1; oneof o { int32 b = 2; string c = 3; }")), true },
            { "one field moved into new oneof", P3(Msg("string a = 1; int32 b = 2;")), P3(Msg("string a = 1; oneof o { int32 b = 2; }")), true },
            { "several fields moved into new oneof", P3(Msg("string a = 1; int32 b = 2;")), P3(Msg("oneof o { string a = 1; int32 b = 2; }")), false },
            { "field moved into existing oneof", P3(Msg("string a = 1; oneof o { int32 b = 2; }")), P3(Msg("oneof o { string a = 1; int32 b = 2; }")), false },
            { "field removed from oneof", P3(Msg("oneof o { string a = 1; int32 b = 2; }")), P3(Msg("oneof o { string a = 1; }")), false },
            { "field added to oneof", P3(Msg("oneof o { string a = 1; }")), P3(Msg("oneof o { string a = 1; int32 b = 2; }")), true },
            { "proto3 optional added", P3(Msg("string a = 1;")), P3(Msg("optional string a = 1;")), true },
            { "singular to repeated int32", P3(Msg("int32 a = 1;")), P3(Msg("repeated int32 a = 1;")), true },
            { "optional to repeated int32", P3(Msg("optional int32 a = 1;")), P3(Msg("repeated int32 a = 1;")), false },
            { "repeated to singular int32", P3(Msg("repeated int32 a = 1;")), P3(Msg("int32 a = 1;")), true },
            { "repeated to optional int32", P3(Msg("repeated int32 a = 1;")), P3(Msg("optional int32 a = 1;")), false },
            { "singular to repeated string", P3(Msg("string a = 1;")), P3(Msg("repeated string a = 1;")), true },
            { "singular to repeated message", P3(Msg("N a = 1;") + Msg("int32 x = 1;", "N")), P3(Msg("repeated N a = 1;") + Msg("int32 x = 1;", "N")), true },
            { "map value scalar changed", P3(Msg("map<string, int32> m = 1;")), P3(Msg("map<string, string> m = 1;")), false },
            { "map unchanged", P3(Msg("map<string, int32> m = 1;")), P3(Msg("map<string, int32> m = 1;")), true },
            { "reserved number reused", P3("message M { string a = 1; reserved 2; }"), P3("message M { string a = 1; int32 b = 2; }"), false },
            { "field removed and reserved", P3(Msg("string a = 1; int32 b = 2;")), P3("message M { string a = 1; reserved 2; }"), true },
            { "proto2 required added", "syntax = \"proto2\";\npackage acme;\nmessage M { optional string a = 1; }", "syntax = \"proto2\";\npackage acme;\nmessage M { optional string a = 1; required int32 b = 2; }", false },
            { "proto2 required removed", "syntax = \"proto2\";\npackage acme;\nmessage M { optional string a = 1; required int32 b = 2; }", "syntax = \"proto2\";\npackage acme;\nmessage M { optional string a = 1; }", false },
            { "proto2 optional made required", "syntax = \"proto2\";\npackage acme;\nmessage M { optional int32 a = 1; }", "syntax = \"proto2\";\npackage acme;\nmessage M { required int32 a = 1; }", false },
            { "comments and whitespace only", P3(Msg("string a = 1;")), P3("// doc\n" + Msg("string   a  =  1;  // trailing\n")), true },
        };
        // scalar changes: wire-compatible groups are compatible, everything else is not
        string[][] groups = [["int32", "uint32", "int64", "uint64", "bool"], ["sint32", "sint64"], ["fixed32", "sfixed32"], ["fixed64", "sfixed64"], ["string", "bytes"]];
        string[] pairs = ["int32>int64", "int64>int32", "uint32>uint64", "int32>bool", "bool>uint64", "sint32>sint64", "sint64>sint32", "fixed32>sfixed32", "fixed64>sfixed64",
            "string>bytes", "bytes>string", "int32>sint32", "int64>sint64", "int32>fixed32", "fixed32>fixed64", "float>double", "double>float", "int32>float", "int64>double",
            "string>int32", "bool>string", "sfixed32>sint32", "uint64>fixed64", "double>fixed64", "float>fixed32"];
        foreach (var pair in pairs)
        {
            var (from, to) = (pair.Split('>')[0], pair.Split('>')[1]);
            var compatible = groups.Any(g => g.Contains(from) && g.Contains(to));
            data.Add($"scalar {from} to {to}", P3(Msg($"{from} a = 1;")), P3(Msg($"{to} a = 1;")), compatible);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Backward_verdicts_follow_confluents_rules(string name, string oldSchema, string newSchema, bool compatible)
    {
        var provider = new ProtobufSchemaProvider();
        var issues = provider.Parse(newSchema, []).ReaderIssues(provider.Parse(oldSchema, []));
        Assert.True(compatible == (issues.Count == 0), $"{name}: expected {(compatible ? "compatible" : "incompatible")}, got [{string.Join("; ", issues)}]");
    }

    [Fact]
    public void Well_known_imports_need_no_reference()
    {
        var schema = "syntax = \"proto3\";\npackage acme;\nimport \"google/protobuf/timestamp.proto\";\nmessage Event { google.protobuf.Timestamp at = 1; }\n";
        var parsed = new ProtobufSchemaProvider().Parse(schema, []);
        Assert.Empty(parsed.ReaderIssues(parsed));
    }

    [Fact]
    public void Imports_resolve_through_references()
    {
        var provider = new ProtobufSchemaProvider();
        var shared = "syntax = \"proto3\";\npackage common;\nmessage Money { int64 units = 1; string currency = 2; }\n";
        var order = "syntax = \"proto3\";\npackage acme;\nimport \"common/money.proto\";\nmessage Order { common.Money total = 1; }\n";
        var schema = provider.Parse(order, [new("common/money.proto", shared)]);
        Assert.Empty(schema.ReaderIssues(schema));
        var e = Assert.Throws<RegistryException>(() => provider.Parse(order, []));
        Assert.Equal(42201, e.ErrorCode);
    }

    private static string Chain(int levels, string leaf)
    {
        // L0 uses L1 twice, L1 uses L2 twice, ...: 2^levels paths to the leaf, one pair of messages per level
        var text = new System.Text.StringBuilder("syntax = \"proto3\";\npackage common;\n");
        for (var i = 0; i < levels; i++) text.Append($"message L{i} {{ L{i + 1} a = 1; L{i + 1} b = 2; }}\n");
        return text.Append($"message L{levels} {{ {leaf} x = 1; }}\n").ToString();
    }

    private static (ProtobufParsedSchema Old, ProtobufParsedSchema New) ChainPair(int levels, string oldLeaf, string newLeaf)
    {
        var provider = new ProtobufSchemaProvider();
        const string Top = "syntax = \"proto3\";\npackage acme;\nimport \"chain.proto\";\nmessage Top { common.L0 root = 1; }\n";
        return ((ProtobufParsedSchema)provider.Parse(Top, [new("chain.proto", Chain(levels, oldLeaf))]), (ProtobufParsedSchema)provider.Parse(Top, [new("chain.proto", Chain(levels, newLeaf))]));
    }

    [Fact]
    public void Imported_messages_are_compared_once_per_pair()
    {
        var (old, changed) = ChainPair(40, "int32", "string");
        var issues = ProtobufCompatibility.Check(changed, old, out var comparisons);
        Assert.Contains(issues, i => i.Contains("errorType:'FIELD_SCALAR_KIND_CHANGED'", StringComparison.Ordinal) && i.Contains("'#/L40/1'", StringComparison.Ordinal));
        Assert.Contains(issues, i => i.Contains("errorType:'FIELD_NAMED_TYPE_CHANGED'", StringComparison.Ordinal) && i.Contains("'#/Top/1'", StringComparison.Ordinal));
        Assert.True(comparisons < 200, $"{comparisons} field comparisons for 41 pairs");
        var (same, widened) = ChainPair(40, "int32", "int64");
        Assert.Empty(ProtobufCompatibility.Check(widened, same, out _));
        var e = Assert.Throws<RegistryException>(() => ProtobufCompatibility.Check(changed, old, out _, limit: 20));
        Assert.Equal(50002, e.ErrorCode);
    }

    [Fact]
    public void A_recursive_imported_message_is_compared_without_looping()
    {
        var provider = new ProtobufSchemaProvider();
        const string Top = "syntax = \"proto3\";\npackage acme;\nimport \"node.proto\";\nmessage Tree { common.Node root = 1; }\n";
        string Node(string value) => $"syntax = \"proto3\";\npackage common;\nmessage Node {{ repeated Node children = 1; Leaf leaf = 2; }}\nmessage Leaf {{ Node parent = 1; {value} v = 2; }}\n";
        var old = provider.Parse(Top, [new("node.proto", Node("int32"))]);
        Assert.Empty(provider.Parse(Top, [new("node.proto", Node("uint64"))]).ReaderIssues(old));
        var issues = provider.Parse(Top, [new("node.proto", Node("double"))]).ReaderIssues(old);
        Assert.Contains(issues, i => i.Contains("errorType:'FIELD_SCALAR_KIND_CHANGED'", StringComparison.Ordinal) && i.Contains("'#/Leaf/2'", StringComparison.Ordinal));
        Assert.Contains(issues, i => i.Contains("errorType:'FIELD_NAMED_TYPE_CHANGED'", StringComparison.Ordinal) && i.Contains("'#/Tree/1'", StringComparison.Ordinal));
    }
}
