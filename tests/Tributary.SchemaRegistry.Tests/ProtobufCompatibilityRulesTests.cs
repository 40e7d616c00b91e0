using System.Text.Json.Nodes;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>
/// Confluent's Protobuf rules for enums, oneofs, maps, labels and imported messages, checked through the REST API: the
/// old schema is registered, the new one tested against it. Each row names an incompatible difference Confluent reports
/// (type and path), or null when Confluent finds the change compatible (its SchemaDiff, MessageSchemaDiff and
/// FieldSchemaDiff in io.confluent.kafka.schemaregistry.protobuf.diff, and its diff-schema-examples.json).
/// </summary>
public sealed class ProtobufCompatibilityRulesTests(RegistryFixture fixture) : IClassFixture<RegistryFixture>
{
    private static int _subjects;

    private readonly HttpClient _http = fixture.Http;

    private static string P3(string body, string package = "acme") => $"syntax = \"proto3\";\npackage {package};\n{body}\n";

    private static string P2(string body) => $"syntax = \"proto2\";\npackage acme;\n{body}\n";

    private const string Status = "enum Status { ACTIVE = 0; INACTIVE = 1; }";

    public static TheoryData<string, string, string, string?> EnumCases()
    {
        var data = new TheoryData<string, string, string, string?>();
        // An enum is a varint on the wire: Confluent puts it in the group of int32, uint32, int64, uint64 and bool.
        foreach (var scalar in new[] { "int32", "uint32", "int64", "uint64", "bool" })
        {
            data.Add($"{scalar} to enum", P3($"message M {{ {scalar} a = 1; }}"), P3($"message M {{ Status a = 1; }} {Status}"), null);
            data.Add($"enum to {scalar}", P3($"message M {{ Status a = 1; }} {Status}"), P3($"message M {{ {scalar} a = 1; }}"), null);
        }
        foreach (var scalar in new[] { "sint32", "sint64", "fixed32", "sfixed64", "float", "double", "string", "bytes" })
        {
            data.Add($"{scalar} to enum", P3($"message M {{ {scalar} a = 1; }}"), P3($"message M {{ Status a = 1; }} {Status}"), "FIELD_SCALAR_KIND_CHANGED #/M/1");
            data.Add($"enum to {scalar}", P3($"message M {{ Status a = 1; }} {Status}"), P3($"message M {{ {scalar} a = 1; }}"), "FIELD_SCALAR_KIND_CHANGED #/M/1");
        }
        data.Add("enum to another enum", P3($"message M {{ Status a = 1; }} {Status} enum Other {{ O = 0; }}"), P3($"message M {{ Other a = 1; }} {Status} enum Other {{ O = 0; }}"), null);
        data.Add("enum to a nested enum", P3($"message M {{ Status a = 1; }} {Status}"), P3("message M { enum Kind { K = 0; } Kind a = 1; }"), null);
        data.Add("enum to message", P3($"message M {{ Status a = 1; }} {Status}"), P3("message M { N a = 1; } message N { int32 x = 1; }"), "FIELD_KIND_CHANGED #/M/1");
        data.Add("enum constant renamed", P3($"message M {{ Status a = 1; }} {Status}"), P3("message M { Status a = 1; } enum Status { ACTIVE = 0; NOT_ACTIVE = 1; }"), null);
        data.Add("enum constant removed", P3($"message M {{ Status a = 1; }} {Status}"), P3("message M { Status a = 1; } enum Status { ACTIVE = 0; }"), null);
        data.Add("optional enum made repeated", P3($"message M {{ optional Status a = 1; }} {Status}"), P3($"message M {{ repeated Status a = 1; }} {Status}"), "FIELD_NUMERIC_LABEL_CHANGED #/M/1");
        data.Add("optional int32 made repeated enum", P3("message M { optional int32 a = 1; }"), P3($"message M {{ repeated Status a = 1; }} {Status}"), "FIELD_NUMERIC_LABEL_CHANGED #/M/1");
        data.Add("map value int32 to enum", P3("message M { map<string, int32> m = 1; }"), P3($"message M {{ map<string, Status> m = 1; }} {Status}"), null);
        data.Add("map value enum to string", P3($"message M {{ map<string, Status> m = 1; }} {Status}"), P3("message M { map<string, string> m = 1; }"), "FIELD_SCALAR_KIND_CHANGED #/M/1");
        return data;
    }

    public static TheoryData<string, string, string, string?> OneofCases() => new()
    {
        // Moving fields into a oneof makes them mutually exclusive: fine only when every member that existed before
        // comes from one place (one top-level field, or one earlier oneof).
        { "one field moved to a new oneof", P3("message M { string a = 1; string b = 2; }"), P3("message M { string a = 1; oneof o { string b = 2; } }"), null },
        { "one field and new fields in a new oneof", P3("message M { string a = 1; string b = 2; }"), P3("message M { string a = 1; oneof o { string b = 2; int32 c = 3; } }"), null },
        { "two fields moved to a new oneof", P3("message M { string a = 1; string b = 2; }"), P3("message M { oneof o { string a = 1; string b = 2; int32 c = 3; } }"), "MULTIPLE_FIELDS_MOVED_TO_ONEOF #/M/o" },
        { "field moved to an existing oneof", P3("message M { string a = 1; oneof o { string b = 2; string c = 3; } }"), P3("message M { oneof o { string a = 1; string b = 2; string c = 3; } }"), "FIELD_MOVED_TO_EXISTING_ONEOF #/M/o" },
        { "field moved to a renamed oneof", P3("message M { string a = 1; oneof o { string b = 2; string c = 3; } }"), P3("message M { oneof o2 { string a = 1; string b = 2; string c = 3; } }"), "FIELD_MOVED_TO_EXISTING_ONEOF #/M/o2" },
        { "field moved between oneofs", P3("message M { oneof x { int32 a = 1; int32 b = 2; } oneof y { int32 c = 3; } }"), P3("message M { oneof x { int32 a = 1; } oneof y { int32 c = 3; int32 b = 2; } }"), "FIELD_MOVED_TO_EXISTING_ONEOF #/M/y" },
        { "field moved from a deleted oneof into another", P3("message M { oneof x { int32 a = 1; } oneof y { int32 b = 3; } }"), P3("message M { oneof y { int32 b = 3; int32 a = 1; } }"), "FIELD_MOVED_TO_EXISTING_ONEOF #/M/y" },
        { "two oneofs merged into a new one", P3("message M { oneof x { int32 a = 1; } oneof y { int32 b = 2; } }"), P3("message M { oneof z { int32 a = 1; int32 b = 2; } }"), "FIELD_MOVED_TO_EXISTING_ONEOF #/M/z" },
        { "a field and a oneof member moved to a new oneof", P3("message M { int32 a = 1; oneof x { int32 b = 2; int32 c = 3; } }"), P3("message M { oneof z { int32 a = 1; int32 b = 2; } oneof x { int32 c = 3; } }"), "FIELD_MOVED_TO_EXISTING_ONEOF #/M/z" },
        { "two fields and a oneof member moved to a new oneof", P3("message M { int32 a = 1; int32 b = 2; oneof x { int32 c = 3; int32 d = 4; } }"), P3("message M { oneof z { int32 a = 1; int32 b = 2; int32 c = 3; } oneof x { int32 d = 4; } }"), "MULTIPLE_FIELDS_MOVED_TO_ONEOF #/M/z" },
        { "oneof member moved to a new singleton oneof", P3("message M { oneof x { int32 a = 1; int32 b = 2; } }"), P3("message M { oneof x { int32 b = 2; } oneof y { int32 a = 1; } }"), null },
        { "oneof renamed", P3("message M { oneof x { float f = 1; int32 i = 2; } }"), P3("message M { oneof y { float f = 1; int32 i = 2; } }"), null },
        { "oneof member moved to the top level", P3("message M { oneof x { int32 a = 1; int32 b = 2; } }"), P3("message M { oneof x { int32 a = 1; } int32 b = 2; }"), null },
        { "oneof dissolved into top-level fields", P3("message M { oneof x { int32 a = 1; int32 b = 2; } }"), P3("message M { int32 a = 1; int32 b = 2; }"), null },
        // A member that disappears is data loss, unless its whole oneof went (nothing of it survives anywhere).
        { "oneof member removed", P3("message M { oneof x { string a = 1; string b = 2; int32 c = 3; } }"), P3("message M { oneof x { string a = 1; string b = 2; } }"), "ONEOF_FIELD_REMOVED #/M/x/3" },
        { "oneof member dropped while the oneof is renamed", P3("message M { oneof g { int32 a = 1; int32 b = 2; } }"), P3("message M { oneof g2 { int32 a = 1; } }"), "ONEOF_FIELD_REMOVED #/M/g/2" },
        { "oneof member dropped while the others move out", P3("message M { oneof g { int32 a = 1; int32 b = 2; } }"), P3("message M { int32 a = 1; }"), "ONEOF_FIELD_REMOVED #/M/g/2" },
        { "whole oneof removed", P3("message M { string s = 1; oneof x { int32 a = 2; string b = 3; } }"), P3("message M { string s = 1; }"), null },
        { "whole oneof removed, number reused outside", P3("message M { oneof x { int32 a = 2; } }"), P3("message M { int32 a = 2; }"), null },
        { "oneof added with new fields", P3("message M { string s = 1; }"), P3("message M { string s = 1; oneof x { int32 a = 2; } }"), null },
        { "oneof member added", P3("message M { oneof x { int32 a = 1; } }"), P3("message M { oneof x { int32 a = 1; int32 b = 2; } }"), null },
        // Membership changes do not hide the field's own change, reported where the field now stands.
        { "type change under a renamed oneof", P3("message M { oneof x { float f = 1; int32 i = 2; } }"), P3("message M { oneof y { float f = 1; string i = 2; } }"), "FIELD_SCALAR_KIND_CHANGED #/M/y/2" },
        { "type change moving into a new oneof", P3("message M { float f = 1; int32 i = 2; }"), P3("message M { float f = 1; oneof y { sint64 i = 2; } }"), "FIELD_SCALAR_KIND_CHANGED #/M/y/2" },
        { "type change moving out of a oneof", P3("message M { oneof x { int32 a = 1; int32 b = 2; } }"), P3("message M { oneof x { int32 a = 1; } string b = 2; }"), "FIELD_SCALAR_KIND_CHANGED #/M/2" },
        { "proto3 optional is no oneof", P3("message M { int32 a = 1; int32 b = 2; }"), P3("message M { optional int32 a = 1; optional int32 b = 2; }"), null },
        { "nested message oneof", P3("message M { message In { int32 a = 1; oneof x { int32 b = 2; } } In i = 1; }"), P3("message M { message In { oneof x { int32 a = 1; int32 b = 2; } } In i = 1; }"), "FIELD_MOVED_TO_EXISTING_ONEOF #/M/In/x" },
    };

    public static TheoryData<string, string, string, string?> MapAndLabelCases() => new()
    {
        // A map is its key and value types; its entry message is no message of its own.
        { "map field renamed", P3("message M { map<string, int32> m = 1; }"), P3("message M { map<string, int32> renamed = 1; }"), null },
        { "map field removed", P3("message M { string s = 1; map<string, int32> m = 2; }"), P3("message M { string s = 1; }"), null },
        { "map value widened", P3("message M { map<string, int32> m = 1; }"), P3("message M { map<string, int64> m = 1; }"), null },
        { "map key changed", P3("message M { map<string, int32> m = 1; }"), P3("message M { map<int32, int32> m = 1; }"), "FIELD_SCALAR_KIND_CHANGED #/M/1" },
        { "map to repeated message", P3("message M { map<string, int32> m = 1; }"), P3("message M { repeated E m = 1; } message E { string key = 1; int32 value = 2; }"), "FIELD_KIND_CHANGED #/M/1" },
        // Confluent compares labels only when both are written: a proto3 field without one has none.
        { "proto3 int32 made repeated", P3("message M { int32 a = 1; }"), P3("message M { repeated int32 a = 1; }"), null },
        { "proto3 repeated int32 made singular", P3("message M { repeated int32 a = 1; }"), P3("message M { int32 a = 1; }"), null },
        { "proto3 optional int32 made repeated", P3("message M { optional int32 a = 1; }"), P3("message M { repeated int32 a = 1; }"), "FIELD_NUMERIC_LABEL_CHANGED #/M/1" },
        { "proto3 optional double made repeated", P3("message M { optional double a = 1; }"), P3("message M { repeated double a = 1; }"), "FIELD_NUMERIC_LABEL_CHANGED #/M/1" },
        { "proto3 optional string made repeated", P3("message M { optional string a = 1; }"), P3("message M { repeated string a = 1; }"), null },
        { "proto2 optional int32 made required", P2("message M { optional int32 a = 1; }"), P2("message M { required int32 a = 1; }"), "FIELD_NUMERIC_LABEL_CHANGED #/M/1" },
        { "proto2 optional string made required", P2("message M { optional string a = 1; }"), P2("message M { required string a = 1; }"), null },
        { "proto2 optional message made required", P2("message M { optional N a = 1; } message N { optional int32 x = 1; }"), P2("message M { required N a = 1; } message N { optional int32 x = 1; }"), null },
        { "proto2 required field added", P2("message M { optional int32 a = 1; }"), P2("message M { optional int32 a = 1; required int32 b = 2; }"), "REQUIRED_FIELD_ADDED #/M/2" },
        { "proto2 required field removed", P2("message M { optional int32 a = 1; required int32 b = 2; }"), P2("message M { optional int32 a = 1; }"), "REQUIRED_FIELD_REMOVED #/M/2" },
        { "message removed, path without package", P3("message M { int32 a = 1; } message N { int32 b = 1; }"), P3("message M { int32 a = 1; }"), "MESSAGE_REMOVED #/N" },
    };

    [Theory]
    [MemberData(nameof(EnumCases))]
    [MemberData(nameof(OneofCases))]
    [MemberData(nameof(MapAndLabelCases))]
    public async Task Backward_verdicts_match_confluent(string name, string oldSchema, string newSchema, string? incompatibility)
    {
        var subject = $"proto-rules-{Interlocked.Increment(ref _subjects)}";
        await _http.RegisterAsync(subject, oldSchema, "PROTOBUF");
        await ExpectVerdict(name, subject, new JsonObject { ["schemaType"] = "PROTOBUF", ["schema"] = newSchema }, incompatibility);
    }

    private const string Money = "syntax = \"proto3\";\npackage common;\nmessage Money { int64 units = 1; string currency = 2; }\n";

    private static string Order(string import, string type) => $"syntax = \"proto3\";\npackage acme;\nimport \"{import}\";\nmessage Order {{ {type} total = 1; }}\n";

    private static JsonObject WithReference(string schema, string import, string subject, int version) => new()
    {
        ["schemaType"] = "PROTOBUF",
        ["schema"] = schema,
        ["references"] = new JsonArray(new JsonObject { ["name"] = import, ["subject"] = subject, ["version"] = version }),
    };

    public static TheoryData<string, string, string?> ImportCases() => new()
    {
        // The imported message's structure decides, through the references, not the name it is spelled with.
        { "imported message changed under the same name", "syntax = \"proto3\";\npackage common;\nmessage Money { string units = 1; string currency = 2; }\n", "FIELD_SCALAR_KIND_CHANGED #/Money/1" },
        { "imported message gains a field", "syntax = \"proto3\";\npackage common;\nmessage Money { int64 units = 1; string currency = 2; int32 nanos = 3; }\n", null },
        { "imported message loses a field", "syntax = \"proto3\";\npackage common;\nmessage Money { string currency = 2; }\n", null },
        { "imported message's int64 made an enum", "syntax = \"proto3\";\npackage common;\nmessage Money { Units units = 1; string currency = 2; }\nenum Units { U = 0; }\n", null },
        { "imported message's int64 made a message", "syntax = \"proto3\";\npackage common;\nmessage Money { Units units = 1; string currency = 2; }\nmessage Units { int64 u = 1; }\n", "FIELD_KIND_CHANGED #/Money/1" },
    };

    [Theory]
    [MemberData(nameof(ImportCases))]
    public async Task An_imported_message_is_compared_through_its_reference(string name, string newMoney, string? incompatibility)
    {
        var n = Interlocked.Increment(ref _subjects);
        var (money, order) = ($"money-{n}", $"order-{n}-value");
        await _http.RegisterAsync(money, Money, "PROTOBUF");
        await _http.PutJson($"/config/{money}", new { compatibility = "NONE" });
        await _http.RegisterAsync(money, newMoney, "PROTOBUF");
        var v1 = WithReference(Order("common/money.proto", "common.Money"), "common/money.proto", money, 1);
        var (status, body) = await _http.PostJson($"/subjects/{order}/versions", v1);
        Assert.True(status == 200, body?.ToJsonString());
        var v2 = WithReference(Order("common/money.proto", "common.Money"), "common/money.proto", money, 2);
        await ExpectVerdict(name, order, v2, incompatibility);
        // the field that uses the changed message changed type too
        if (incompatibility is not null) await ExpectVerdict(name, order, v2, "FIELD_NAMED_TYPE_CHANGED #/Order/1");
    }

    [Fact]
    public async Task The_same_message_under_another_package_or_file_is_no_change()
    {
        await _http.RegisterAsync("money-common", Money, "PROTOBUF");
        await _http.RegisterAsync("money-finance", Money.Replace("package common;", "package finance;", StringComparison.Ordinal), "PROTOBUF");
        await _http.RegisterAsync("cash-finance", Money.Replace("package common;", "package finance;", StringComparison.Ordinal).Replace("Money", "Cash", StringComparison.Ordinal), "PROTOBUF");
        await _http.RegisterAsync("money-changed", Money.Replace("package common;", "package finance;", StringComparison.Ordinal).Replace("int64 units", "double units", StringComparison.Ordinal), "PROTOBUF");
        var (status, body) = await _http.PostJson("/subjects/pkg-order-value/versions", WithReference(Order("common/money.proto", "common.Money"), "common/money.proto", "money-common", 1));
        Assert.True(status == 200, body?.ToJsonString());

        // the identical message in another package and file: compatible
        await ExpectVerdict("moved to another package", "pkg-order-value", WithReference(Order("finance/money.proto", "finance.Money"), "finance/money.proto", "money-finance", 1), null);
        // another name for an identical message: a changed type
        await ExpectVerdict("renamed in another package", "pkg-order-value", WithReference(Order("finance/cash.proto", "finance.Cash"), "finance/cash.proto", "cash-finance", 1), "FIELD_NAMED_TYPE_CHANGED #/Order/1");
        // the same name in another package, changed
        await ExpectVerdict("changed in another package", "pkg-order-value", WithReference(Order("finance/money.proto", "finance.Money"), "finance/money.proto", "money-changed", 1), "FIELD_SCALAR_KIND_CHANGED #/Money/1");
        // moved out of the import into the schema itself, unchanged: compatible (the message is only added)
        var local = "syntax = \"proto3\";\npackage acme;\nmessage Order { Money total = 1; }\nmessage Money { int64 units = 1; string currency = 2; }\n";
        await ExpectVerdict("moved into the schema", "pkg-order-value", new JsonObject { ["schemaType"] = "PROTOBUF", ["schema"] = local }, null);
        await ExpectVerdict("moved into the schema, changed", "pkg-order-value", new JsonObject { ["schemaType"] = "PROTOBUF", ["schema"] = local.Replace("int64 units", "string units", StringComparison.Ordinal) }, "FIELD_SCALAR_KIND_CHANGED #/Money/1");
    }

    [Fact]
    public async Task A_message_moved_into_an_import_is_a_removed_message()
    {
        var local = "syntax = \"proto3\";\npackage common;\nmessage Order { Money total = 1; }\nmessage Money { int64 units = 1; string currency = 2; }\n";
        await _http.RegisterAsync("moved-order-value", local, "PROTOBUF");
        await _http.RegisterAsync("moved-money", Money, "PROTOBUF");
        var imported = WithReference("syntax = \"proto3\";\npackage common;\nimport \"common/money.proto\";\nmessage Order { Money total = 1; }\n", "common/money.proto", "moved-money", 1);
        await ExpectVerdict("moved into an import", "moved-order-value", imported, "MESSAGE_REMOVED #/Money");
    }

    [Fact]
    public async Task A_change_two_imports_deep_is_found()
    {
        const string Currency = "syntax = \"proto3\";\npackage common;\nmessage Currency { string code = 1; }\n";
        const string Price = "syntax = \"proto3\";\npackage common;\nimport \"common/currency.proto\";\nmessage Price { int64 units = 1; Currency currency = 2; }\n";
        await _http.RegisterAsync("deep-currency", Currency, "PROTOBUF");
        await _http.PutJson("/config/deep-currency", new { compatibility = "NONE" });
        await _http.RegisterAsync("deep-currency", Currency.Replace("string code", "int32 code", StringComparison.Ordinal), "PROTOBUF");
        await _http.PutJson("/config/deep-price", new { compatibility = "NONE" });
        foreach (var version in new[] { 1, 2 })
        {
            var (s, b) = await _http.PostJson("/subjects/deep-price/versions", WithReference(Price, "common/currency.proto", "deep-currency", version));
            Assert.True(s == 200, b?.ToJsonString());
        }
        const string Item = "syntax = \"proto3\";\npackage shop;\nimport \"common/price.proto\";\nmessage Item { common.Price price = 1; common.Price list_price = 2; }\n";
        var (status, body) = await _http.PostJson("/subjects/deep-item-value/versions", WithReference(Item, "common/price.proto", "deep-price", 1));
        Assert.True(status == 200, body?.ToJsonString());
        await ExpectVerdict("currency code changed under price", "deep-item-value", WithReference(Item, "common/price.proto", "deep-price", 2), "FIELD_SCALAR_KIND_CHANGED #/Currency/1");
    }

    public static TheoryData<string, string, string, string> LevelCases() => new()
    {
        // verdicts for BACKWARD, FORWARD, FULL (Confluent checks FORWARD as the old schema reading the new)
        { "int32 to enum", P3("message M { int32 a = 1; }"), P3($"message M {{ Status a = 1; }} {Status}"), "yes yes yes" },
        { "sint32 to enum", P3("message M { sint32 a = 1; }"), P3($"message M {{ Status a = 1; }} {Status}"), "no no no" },
        { "whole oneof removed", P3("message M { string s = 1; oneof x { int32 a = 2; string b = 3; } }"), P3("message M { string s = 1; }"), "yes yes yes" },
        { "two fields moved to a new oneof", P3("message M { string a = 1; string b = 2; }"), P3("message M { oneof o { string a = 1; string b = 2; } }"), "no yes no" },
        { "oneof member moved to the top level", P3("message M { oneof x { int32 a = 1; int32 b = 2; } }"), P3("message M { oneof x { int32 a = 1; } int32 b = 2; }"), "yes no no" },
        { "two oneofs merged", P3("message M { oneof x { int32 a = 1; } oneof y { int32 b = 2; } }"), P3("message M { oneof z { int32 a = 1; int32 b = 2; } }"), "no yes no" },
        { "map field removed", P3("message M { string s = 1; map<string, int32> m = 2; }"), P3("message M { string s = 1; }"), "yes yes yes" },
    };

    [Theory]
    [MemberData(nameof(LevelCases))]
    public async Task Forward_and_full_check_the_other_direction_too(string name, string oldSchema, string newSchema, string verdicts)
    {
        var expected = verdicts.Split(' ');
        string[] levels = ["BACKWARD", "FORWARD", "FULL"];
        for (var i = 0; i < levels.Length; i++)
        {
            var subject = $"proto-levels-{Interlocked.Increment(ref _subjects)}";
            var (status, _) = await _http.PutJson($"/config/{subject}", new { compatibility = levels[i] });
            Assert.Equal(200, status);
            await _http.RegisterAsync(subject, oldSchema, "PROTOBUF");
            var (_, check) = await _http.PostJson($"/compatibility/subjects/{subject}/versions/latest?verbose=true", new JsonObject { ["schemaType"] = "PROTOBUF", ["schema"] = newSchema });
            Assert.True((bool)check!["is_compatible"]! == (expected[i] == "yes"), $"{name} under {levels[i]}: expected {expected[i]}, got {check.ToJsonString()}");
        }
    }

    /// <summary>Compatible, or incompatible with the expected "TYPE #/path" among the messages.</summary>
    private async Task ExpectVerdict(string name, string subject, JsonObject candidate, string? incompatibility)
    {
        var (status, check) = await _http.PostJson($"/compatibility/subjects/{subject}/versions/latest?verbose=true", candidate);
        Assert.True(status == 200, $"{name}: {status} {check?.ToJsonString()}");
        var compatible = (bool)check!["is_compatible"]!;
        if (incompatibility is null)
        {
            Assert.True(compatible, $"{name}: expected compatible, got {check.ToJsonString()}");
            return;
        }
        var type = incompatibility.Split(' ')[0];
        var path = incompatibility.Split(' ')[1];
        Assert.False(compatible, $"{name}: expected {incompatibility}, got compatible");
        var messages = check["messages"]!.AsArray().Select(m => (string)m!).ToList();
        Assert.True(
            messages.Any(m => m.Contains($"errorType:'{type}'", StringComparison.Ordinal) && m.Contains($"'{path}'", StringComparison.Ordinal)),
            $"{name}: expected {incompatibility}, got [{string.Join("; ", messages)}]");
    }
}
