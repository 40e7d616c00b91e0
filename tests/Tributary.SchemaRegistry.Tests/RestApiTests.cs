using System.Text.Json.Nodes;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>The REST API against Confluent's documented routes, bodies and error codes.</summary>
public sealed class RestApiTests(RegistryFixture fixture) : IClassFixture<RegistryFixture>
{
    private readonly HttpClient _http = fixture.Http;

    private static string Record(string name, params string[] fields) =>
        new JsonObject
        {
            ["type"] = "record",
            ["name"] = name,
            ["fields"] = new JsonArray(fields.Select(f => JsonNode.Parse(f)).ToArray()),
        }.ToJsonString();

    [Fact]
    public async Task Register_returns_the_same_id_for_an_identical_schema_and_new_versions_for_changes()
    {
        var v1 = Record("User", """{"name":"id","type":"long"}""");
        var id1 = await _http.RegisterAsync("users-value", v1);
        Assert.Equal(id1, await _http.RegisterAsync("users-value", v1));
        // whitespace does not make a new schema
        Assert.Equal(id1, await _http.RegisterAsync("users-value", JsonNode.Parse(v1)!.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true })));
        var v2 = Record("User", """{"name":"id","type":"long"}""", """{"name":"email","type":["null","string"],"default":null}""");
        var id2 = await _http.RegisterAsync("users-value", v2);
        Assert.NotEqual(id1, id2);
        var (status, versions) = await _http.GetJson("/subjects/users-value/versions");
        Assert.Equal(200, status);
        Assert.Equal("[1,2]", versions!.ToJsonString());
        var (_, latest) = await _http.GetJson("/subjects/users-value/versions/latest");
        Assert.Equal(2, (int)latest!["version"]!);
        Assert.Equal(id2, (int)latest["id"]!);
        Assert.Equal("users-value", (string)latest["subject"]!);
        Assert.Null(latest["schemaType"]); // AVRO is implied, as Confluent answers
        var (_, byId) = await _http.GetJson($"/schemas/ids/{id1}");
        Assert.Equal(v1, (string)byId!["schema"]!);
        var (_, raw) = await _http.GetJson("/subjects/users-value/versions/1/schema");
        Assert.Equal("User", (string)raw!["name"]!);
        var (_, subjects) = await _http.GetJson($"/schemas/ids/{id2}/subjects");
        Assert.Equal("""["users-value"]""", subjects!.ToJsonString());
        var (_, idVersions) = await _http.GetJson($"/schemas/ids/{id2}/versions");
        Assert.Equal("""[{"subject":"users-value","version":2}]""", idVersions!.ToJsonString());
    }

    [Fact]
    public async Task Responses_use_Confluents_content_type()
    {
        await _http.RegisterAsync("ct-value", "\"string\"");
        using var response = await _http.GetAsync("/subjects/ct-value/versions/1");
        Assert.Equal("application/vnd.schemaregistry.v1+json", response.Content.Headers.ContentType!.MediaType);
        using var missing = await _http.GetAsync("/subjects/nope/versions/1");
        Assert.Equal("application/vnd.schemaregistry.v1+json", missing.Content.Headers.ContentType!.MediaType);
    }

    [Fact]
    public async Task Equal_schemas_share_an_id_across_subjects()
    {
        var schema = Record("Shared", """{"name":"x","type":"int"}""");
        var a = await _http.RegisterAsync("shared-a", schema);
        var b = await _http.RegisterAsync("shared-b", schema);
        Assert.Equal(a, b);
        var (_, subjects) = await _http.GetJson($"/schemas/ids/{a}/subjects");
        Assert.Equal("""["shared-a","shared-b"]""", subjects!.ToJsonString());
    }

    [Fact]
    public async Task Errors_carry_confluents_codes()
    {
        await _http.RegisterAsync("errors-value", Record("E", """{"name":"a","type":"int"}"""));
        await Expect(404, 40401, _http.GetJson("/subjects/does-not-exist/versions"));
        await Expect(404, 40402, _http.GetJson("/subjects/errors-value/versions/7"));
        await Expect(422, 42202, _http.GetJson("/subjects/errors-value/versions/abc"));
        await Expect(404, 40403, _http.GetJson("/schemas/ids/99999"));
        await Expect(422, 42201, _http.PostJson("/subjects/errors-value/versions", new { schema = "{\"type\":\"nope\"}" }));
        await Expect(422, 42201, _http.PostJson("/subjects/errors-value/versions", new { schema = "not json" }));
        await Expect(422, 42203, _http.PutJson("/config/errors-value", new { compatibility = "SIDEWAYS" }));
        await Expect(422, 42204, _http.PutJson("/mode/errors-value", new { mode = "SOMETIMES" }));
        await Expect(404, 40408, _http.GetJson("/config/errors-value"));
        await Expect(404, 40409, _http.GetJson("/mode/errors-value"));
        await Expect(404, 40403, _http.PostJson("/subjects/errors-value", new { schema = "\"string\"" }));
        await Expect(404, 40401, _http.PostJson("/subjects/never-registered", new { schema = "\"string\"" }));
        await Expect(404, 404, _http.GetJson("/no/such/route"));
    }

    [Fact]
    public async Task Incompatible_schema_is_refused_with_409_and_a_reason()
    {
        await _http.RegisterAsync("orders-value", Record("Order", """{"name":"id","type":"long"}"""));
        var breaking = Record("Order", """{"name":"id","type":"long"}""", """{"name":"total","type":"double"}""");
        var (status, body) = await _http.PostJson("/subjects/orders-value/versions", new { schema = breaking });
        Assert.Equal(409, status);
        Assert.Equal(409, (int)body!["error_code"]!);
        var message = (string)body["message"]!;
        Assert.Contains("READER_FIELD_MISSING_DEFAULT_VALUE", message);
        Assert.Contains("'total'", message);
        var (_, check) = await _http.PostJson("/compatibility/subjects/orders-value/versions/latest?verbose=true", new { schema = breaking });
        Assert.False((bool)check!["is_compatible"]!);
        Assert.NotEmpty(check["messages"]!.AsArray());
        var (_, ok) = await _http.PostJson("/compatibility/subjects/orders-value/versions", new { schema = Record("Order", """{"name":"id","type":"long"}""", """{"name":"total","type":"double","default":0}""") });
        Assert.True((bool)ok!["is_compatible"]!);
        Assert.Null(ok["messages"]);
    }

    [Fact]
    public async Task Config_per_subject_and_global_with_defaultToGlobal()
    {
        var (_, global) = await _http.GetJson("/config");
        Assert.Equal("BACKWARD", (string)global!["compatibilityLevel"]!);
        var (status, put) = await _http.PutJson("/config/cfg-value", new { compatibility = "none" });
        Assert.Equal(200, status);
        Assert.Equal("NONE", (string)put!["compatibility"]!);
        var (_, got) = await _http.GetJson("/config/cfg-value");
        Assert.Equal("NONE", (string)got!["compatibilityLevel"]!);
        var (_, fallback) = await _http.GetJson("/config/other-cfg?defaultToGlobal=true");
        Assert.Equal("BACKWARD", (string)fallback!["compatibilityLevel"]!);
        // with NONE, a breaking change is accepted
        await _http.RegisterAsync("cfg-value", Record("C", """{"name":"a","type":"int"}"""));
        await _http.RegisterAsync("cfg-value", Record("C", """{"name":"b","type":"string"}"""));
        var (_, deleted) = await _http.DeleteJson("/config/cfg-value");
        Assert.Equal("NONE", (string)deleted!["compatibilityLevel"]!);
        await Expect(404, 40408, _http.GetJson("/config/cfg-value"));
    }

    [Fact]
    public async Task Soft_then_permanent_delete_and_ids_are_never_reused()
    {
        var s1 = Record("D", """{"name":"a","type":"int"}""");
        var s2 = Record("D", """{"name":"a","type":"int"}""", """{"name":"b","type":"int","default":1}""");
        var id1 = await _http.RegisterAsync("del-value", s1);
        await _http.RegisterAsync("del-value", s2);
        await Expect(404, 40407, _http.DeleteJson("/subjects/del-value/versions/1?permanent=true"));
        var (status, v) = await _http.DeleteJson("/subjects/del-value/versions/1");
        Assert.Equal(200, status);
        Assert.Equal(1, (int)v!);
        await Expect(404, 40406, _http.DeleteJson("/subjects/del-value/versions/1"));
        var (_, live) = await _http.GetJson("/subjects/del-value/versions");
        Assert.Equal("[2]", live!.ToJsonString());
        var (_, all) = await _http.GetJson("/subjects/del-value/versions?deleted=true");
        Assert.Equal("[1,2]", all!.ToJsonString());
        // the id stays readable for deserializers after a soft delete
        Assert.Equal(200, (await _http.GetJson($"/schemas/ids/{id1}")).Status);
        await Expect(404, 40405, _http.DeleteJson("/subjects/del-value?permanent=true"));
        var (_, soft) = await _http.DeleteJson("/subjects/del-value");
        Assert.Equal("[2]", soft!.ToJsonString());
        await Expect(404, 40404, _http.DeleteJson("/subjects/del-value"));
        await Expect(404, 40401, _http.GetJson("/subjects/del-value/versions"));
        await Expect(404, 40401, _http.GetJson("/subjects/del-value/versions/latest"));
        Assert.Equal(200, (await _http.GetJson("/subjects/del-value/versions/2?deleted=true")).Status);
        var (_, subjects) = await _http.GetJson("/subjects");
        Assert.DoesNotContain("del-value", subjects!.AsArray().Select(s => (string)s!));
        var (_, withDeleted) = await _http.GetJson("/subjects?deleted=true");
        Assert.Contains("del-value", withDeleted!.AsArray().Select(s => (string)s!));
        var (_, permanent) = await _http.DeleteJson("/subjects/del-value?permanent=true");
        Assert.Equal("[1,2]", permanent!.ToJsonString());
        await Expect(404, 40403, _http.GetJson($"/schemas/ids/{id1}"));
        // re-registering after a permanent delete starts at version 1 with a new id
        var again = await _http.RegisterAsync("del-value", Record("D", """{"name":"z","type":"long"}"""));
        Assert.True(again > id1);
        var (_, versions) = await _http.GetJson("/subjects/del-value/versions");
        Assert.Equal("[1]", versions!.ToJsonString());
    }

    [Fact]
    public async Task Modes_readonly_and_import_with_explicit_ids()
    {
        var (_, global) = await _http.GetJson("/mode");
        Assert.Equal("READWRITE", (string)global!["mode"]!);
        await _http.PutJson("/mode/ro-value", new { mode = "READONLY" });
        await Expect(422, 42205, _http.PostJson("/subjects/ro-value/versions", new { schema = "\"int\"" }));
        await _http.DeleteJson("/mode/ro-value");
        await _http.RegisterAsync("ro-value", "\"int\"");

        var (status, _) = await _http.PutJson("/mode/imp-value", new { mode = "IMPORT" });
        Assert.Equal(200, status);
        var (regStatus, reg) = await _http.PostJson("/subjects/imp-value/versions", new { schema = "\"bytes\"", id = 5000, version = 3 });
        Assert.Equal(200, regStatus);
        Assert.Equal(5000, (int)reg!["id"]!);
        var (_, got) = await _http.GetJson("/subjects/imp-value/versions/3");
        Assert.Equal(5000, (int)got!["id"]!);
        await Expect(422, 42205, _http.PostJson("/subjects/ro-value/versions", new { schema = "\"float\"", id = 6000 }));
        await _http.PutJson("/mode/imp-value", new { mode = "READWRITE" });
        // new ids continue above imported ones
        Assert.True(await _http.RegisterAsync("after-import-value", "\"double\"") > 5000);
    }

    [Fact]
    public async Task Unknown_fields_metadata_and_ruleSet_round_trip()
    {
        var body = JsonNode.Parse("""
            {"schema":"\"string\"","metadata":{"properties":{"owner":"team-a"}},"ruleSet":{"domainRules":[{"name":"r","kind":"CONDITION","mode":"WRITE","type":"CEL","expr":"true"}]},"futureField":42}
            """)!;
        var (status, reg) = await _http.PostJson("/subjects/meta-value/versions", body);
        Assert.Equal(200, status);
        var (_, got) = await _http.GetJson("/subjects/meta-value/versions/latest");
        Assert.Equal("team-a", (string)got!["metadata"]!["properties"]!["owner"]!);
        Assert.Equal("CEL", (string)got["ruleSet"]!["domainRules"]![0]!["type"]!);
        var (_, byId) = await _http.GetJson($"/schemas/ids/{(int)reg!["id"]!}?fetchMaxId=true");
        Assert.NotNull(byId!["metadata"]);
        Assert.True((int)byId["maxId"]! >= (int)reg["id"]!);
        var (_, withMetadata) = await _http.GetJson("/subjects/meta-value/metadata?key=owner&value=team-a");
        Assert.Equal((int)reg["id"]!, (int)withMetadata!["id"]!);
        await Expect(404, 40403, _http.GetJson("/subjects/meta-value/metadata?key=owner&value=team-b"));
    }

    [Fact]
    public async Task References_lookup_referencedby_and_types()
    {
        var address = """{"type":"record","name":"Address","namespace":"acme","fields":[{"name":"city","type":"string"}]}""";
        await _http.RegisterAsync("address", address);
        var person = new JsonObject
        {
            ["schema"] = """{"type":"record","name":"Person","namespace":"acme","fields":[{"name":"home","type":"Address"}]}""",
            ["references"] = new JsonArray(new JsonObject { ["name"] = "acme.Address", ["subject"] = "address", ["version"] = 1 }),
        };
        var (status, reg) = await _http.PostJson("/subjects/person-value/versions", person);
        Assert.True(status == 200, reg?.ToJsonString());
        var (_, referencedBy) = await _http.GetJson("/subjects/address/versions/1/referencedby");
        Assert.Equal($"[{(int)reg!["id"]!}]", referencedBy!.ToJsonString());
        await Expect(422, 42206, _http.DeleteJson("/subjects/address/versions/1"));
        var (_, lookup) = await _http.PostJson("/subjects/person-value", person);
        Assert.Equal(1, (int)lookup!["version"]!);
        var (_, types) = await _http.GetJson("/schemas/types");
        Assert.Equal("""["AVRO","JSON","PROTOBUF"]""", types!.ToJsonString());
    }

    [Fact]
    public async Task Normalize_recognises_equivalent_spellings()
    {
        var a = """{"type":"record","name":"N","namespace":"ns","doc":"first","fields":[{"name":"x","type":"int"}]}""";
        var b = """{"namespace":"ns","name":"N","type":"record","fields":[{"type":"int","name":"x"}]}""";
        var (s1, r1) = await _http.PostJson("/subjects/norm-value/versions?normalize=true", new { schema = a });
        var (s2, r2) = await _http.PostJson("/subjects/norm-value/versions?normalize=true", new { schema = b });
        Assert.Equal(200, s1);
        Assert.Equal(200, s2);
        Assert.Equal((int)r1!["id"]!, (int)r2!["id"]!);
        var (_, found) = await _http.PostJson("/subjects/norm-value?normalize=true", new { schema = b });
        Assert.Equal(1, (int)found!["version"]!);
    }

    [Fact]
    public async Task Json_and_protobuf_schemas_register_with_their_type()
    {
        var json = """{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}""";
        var jsonId = await _http.RegisterAsync("json-value", json, "JSON");
        var (_, got) = await _http.GetJson($"/schemas/ids/{jsonId}");
        Assert.Equal("JSON", (string)got!["schemaType"]!);
        var proto = "syntax = \"proto3\";\npackage acme;\nmessage Thing { string name = 1; int32 count = 2; }\n";
        var protoId = await _http.RegisterAsync("proto-value", proto, "PROTOBUF");
        var (_, gotProto) = await _http.GetJson($"/schemas/ids/{protoId}");
        Assert.Equal("PROTOBUF", (string)gotProto!["schemaType"]!);
        var (status, body) = await _http.PostJson("/subjects/proto-value/versions", new { schema = "syntax = \"proto3\";\npackage acme;\nmessage Thing { int64 name = 1; }\n", schemaType = "PROTOBUF" });
        Assert.Equal(409, status);
        Assert.Contains("FIELD_SCALAR_KIND_CHANGED", (string)body!["message"]!, StringComparison.Ordinal);
        await Expect(422, 42201, _http.PostJson("/subjects/proto-value/versions", new { schema = "message {", schemaType = "PROTOBUF" }));
    }

    [Fact]
    public async Task Json_schema_references_resolve_by_name_in_compatibility_checks()
    {
        await _http.RegisterAsync("money", """{"type":"object","properties":{"units":{"type":"integer"}}}""", "JSON");
        var order = new JsonObject
        {
            ["schemaType"] = "JSON",
            ["schema"] = """{"type":"object","properties":{"total":{"$ref":"money.json"}},"additionalProperties":false}""",
            ["references"] = new JsonArray(new JsonObject { ["name"] = "money.json", ["subject"] = "money", ["version"] = 1 }),
        };
        var (status, reg) = await _http.PostJson("/subjects/jorder-value/versions", order);
        Assert.True(status == 200, reg?.ToJsonString());
        var (_, got) = await _http.GetJson("/subjects/jorder-value/versions/1");
        Assert.Equal("money", (string)got!["references"]![0]!["subject"]!);
        // narrowing the referenced type through a new reference target is caught
        await _http.PutJson("/config/money", new { compatibility = "NONE" });
        await _http.RegisterAsync("money", """{"type":"object","properties":{"units":{"type":"string"}}}""", "JSON");
        var evolved = (JsonObject)order.DeepClone();
        evolved["references"]![0]!["version"] = 2;
        var (_, check) = await _http.PostJson("/compatibility/subjects/jorder-value/versions/latest?verbose=true", evolved);
        Assert.False((bool)check!["is_compatible"]!, check.ToJsonString());
    }

    [Fact]
    public async Task Paging_with_offset_and_limit()
    {
        for (var i = 0; i < 3; i++) await _http.RegisterAsync($"page-{i}", "\"long\"");
        var (_, page) = await _http.GetJson("/subjects?subjectPrefix=page-&offset=1&limit=1");
        Assert.Equal("""["page-1"]""", page!.ToJsonString());
    }

    internal static async Task Expect(int status, int errorCode, Task<(int Status, JsonNode? Body)> call)
    {
        var (actual, body) = await call;
        Assert.True(actual == status, $"expected HTTP {status}, got {actual}: {body?.ToJsonString()}");
        Assert.Equal(errorCode, (int)body!["error_code"]!);
        Assert.False(string.IsNullOrEmpty((string?)body["message"]));
    }
}
