using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using static Tributary.SchemaRegistry.Tests.RestApiTests;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>
/// Details of Confluent Schema Registry's REST API that clients and tools depend on: content negotiation (the three
/// JSON media types it produces, with its weights, charset parameters, 406 and 415), the server metadata routes,
/// paging on every list, and the exact error codes and messages of its resources.
/// </summary>
public sealed class RestApiNegotiationAndErrorsTests(RegistryFixture fixture) : IClassFixture<RegistryFixture>
{
    private const string V1 = "application/vnd.schemaregistry.v1+json";
    private const string Default = "application/vnd.schemaregistry+json";
    private const string Json = "application/json";

    private readonly HttpClient _http = fixture.Http;

    private async Task<(HttpStatusCode Status, string? MediaType, JsonNode? Body)> SendAsync(HttpMethod method, string path, string? accept, string? body = null, string? contentType = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (accept is not null) request.Headers.TryAddWithoutValidation("Accept", accept);
        if (body is not null)
        {
            request.Content = new ByteArrayContent(Encoding.UTF8.GetBytes(body));
            if (contentType is not null) request.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        }
        using var response = await _http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, response.Content.Headers.ContentType?.MediaType, text.Length == 0 ? null : JsonNode.Parse(text));
    }

    [Theory]
    [InlineData(null, V1)]
    [InlineData("*/*", V1)]
    [InlineData(V1, V1)]
    [InlineData(Default, Default)]
    [InlineData(Json, Json)]
    [InlineData("application/*", V1)]
    // what Confluent.SchemaRegistry's RestService sends
    [InlineData(V1 + ", " + Default + ", " + Json, V1)]
    [InlineData(Json + "; charset=utf-8", Json)]
    [InlineData(V1 + ";q=0.1, " + Json, Json)]
    [InlineData("text/html, " + Default + ";q=0.8", Default)]
    public async Task The_response_type_follows_the_accept_header(string? accept, string expected)
    {
        var (status, mediaType, body) = await SendAsync(HttpMethod.Get, "/config", accept);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(expected, mediaType);
        Assert.NotNull(body!["compatibilityLevel"]);
        // errors are negotiated the same way
        var (errorStatus, errorType, error) = await SendAsync(HttpMethod.Get, "/subjects/negotiation-missing/versions", accept);
        Assert.Equal(HttpStatusCode.NotFound, errorStatus);
        Assert.Equal(expected, errorType);
        Assert.Equal(40401, (int)error!["error_code"]!);
    }

    [Fact]
    public async Task An_unacceptable_accept_header_is_406()
    {
        var (status, mediaType, body) = await SendAsync(HttpMethod.Get, "/subjects", "text/html");
        Assert.Equal(HttpStatusCode.NotAcceptable, status);
        Assert.Equal(V1, mediaType);
        Assert.Equal(406, (int)body!["error_code"]!);
    }

    [Theory]
    [InlineData(V1)]
    [InlineData(V1 + "; charset=UTF-8")]
    [InlineData(Default)]
    [InlineData(Json)]
    [InlineData(Json + "; charset=utf-8")]
    [InlineData("application/octet-stream")]
    [InlineData(null)]
    public async Task Requests_in_any_of_confluents_content_types_are_read(string? contentType)
    {
        var subject = $"ct-{Guid.NewGuid():N}";
        var (status, _, body) = await SendAsync(HttpMethod.Post, $"/subjects/{subject}/versions", null, """{"schema":"\"string\""}""", contentType);
        Assert.True(status == HttpStatusCode.OK, body?.ToJsonString());
        Assert.True((int)body!["id"]! > 0);
    }

    [Theory]
    [InlineData("text/plain")]
    [InlineData("application/xml")]
    public async Task Requests_in_other_content_types_are_415(string contentType)
    {
        var (status, _, body) = await SendAsync(HttpMethod.Post, "/subjects/ct-refused/versions", null, """{"schema":"\"string\""}""", contentType);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, status);
        Assert.Equal(415, (int)body!["error_code"]!);
        await Expect(404, 40401, _http.GetJson("/subjects/ct-refused/versions"));
    }

    [Fact]
    public async Task Server_metadata_names_the_kafka_cluster()
    {
        var (status, body) = await _http.GetJson("/v1/metadata/id");
        Assert.Equal(200, status);
        Assert.Equal(fixture.Server.State.Identity.ClusterId, (string)body!["scope"]!["clusters"]!["kafka-cluster"]!);
        Assert.Equal("schema-registry", (string)body["scope"]!["clusters"]!["schema-registry-cluster"]!);
        Assert.Empty(body["scope"]!["path"]!.AsArray());
        var (versionStatus, version) = await _http.GetJson("/v1/metadata/version");
        Assert.Equal(200, versionStatus);
        Assert.False(string.IsNullOrEmpty((string?)version!["version"]));
    }

    [Fact]
    public async Task Lists_of_an_id_and_of_referrers_are_paged()
    {
        const string schema = """{"type":"record","name":"Paged","namespace":"audit","fields":[{"name":"a","type":"int"}]}""";
        var id = 0;
        foreach (var s in new[] { "paged-a", "paged-b", "paged-c" }) id = await _http.RegisterAsync(s, schema);
        var (_, subjects) = await _http.GetJson($"/schemas/ids/{id}/subjects?offset=1&limit=1");
        Assert.Equal("""["paged-b"]""", subjects!.ToJsonString());
        var (_, versions) = await _http.GetJson($"/schemas/ids/{id}/versions?offset=2&limit=5");
        Assert.Equal("""[{"subject":"paged-c","version":1}]""", versions!.ToJsonString());

        var referrers = new List<int>();
        for (var i = 0; i < 3; i++)
        {
            var body = new JsonObject
            {
                ["schema"] = $$"""{"type":"record","name":"Ref{{i}}","namespace":"audit","fields":[{"name":"p","type":"audit.Paged"}]}""",
                ["references"] = new JsonArray(new JsonObject { ["name"] = "audit.Paged", ["subject"] = "paged-a", ["version"] = 1 }),
            };
            var (status, reg) = await _http.PostJson($"/subjects/paged-ref-{i}/versions", body);
            Assert.True(status == 200, reg?.ToJsonString());
            referrers.Add((int)reg!["id"]!);
        }
        var (_, page) = await _http.GetJson("/subjects/paged-a/versions/1/referencedby?offset=1&limit=1");
        Assert.Equal($"[{referrers[1]}]", page!.ToJsonString());
    }

    [Theory]
    [InlineData("/schemas/ids/abc")]
    [InlineData("/schemas/ids/12x/subjects")]
    [InlineData("/subjects?offset=first")]
    [InlineData("/subjects?limit=many")]
    public async Task Parameters_that_are_not_integers_are_404_as_in_jax_rs(string path) =>
        await Message(404, 404, "HTTP 404 Not Found", _http.GetJson(path));

    [Fact]
    public async Task Referencedby_finds_deleted_versions_and_counts_deleted_referrers_on_request()
    {
        await _http.RegisterAsync("refby-base", """{"type":"record","name":"Base","namespace":"refby","fields":[{"name":"a","type":"int"}]}""");
        var body = new JsonObject
        {
            ["schema"] = """{"type":"record","name":"User","namespace":"refby","fields":[{"name":"b","type":"refby.Base"}]}""",
            ["references"] = new JsonArray(new JsonObject { ["name"] = "refby.Base", ["subject"] = "refby-base", ["version"] = 1 }),
        };
        var (status, reg) = await _http.PostJson("/subjects/refby-user/versions", body);
        Assert.True(status == 200, reg?.ToJsonString());
        var userId = (int)reg!["id"]!;
        Assert.Equal($"[{userId}]", (await _http.GetJson("/subjects/refby-base/versions/1/referencedby")).Body!.ToJsonString());
        Assert.Equal(200, (await _http.DeleteJson("/subjects/refby-user/versions/1")).Status);
        Assert.Equal("[]", (await _http.GetJson("/subjects/refby-base/versions/1/referencedby")).Body!.ToJsonString());
        Assert.Equal($"[{userId}]", (await _http.GetJson("/subjects/refby-base/versions/1/referencedby?deleted=true")).Body!.ToJsonString());
        // once nothing live refers to it, the base can be soft-deleted, and is still asked about
        Assert.Equal(200, (await _http.DeleteJson("/subjects/refby-base/versions/1")).Status);
        var (afterStatus, after) = await _http.GetJson("/subjects/refby-base/versions/1/referencedby");
        Assert.True(afterStatus == 200, after?.ToJsonString());
        Assert.Equal("[]", after!.ToJsonString());
        await Expect(404, 40402, _http.GetJson("/subjects/refby-base/versions/2/referencedby"));
        await Expect(404, 40401, _http.GetJson("/subjects/refby-nothing/versions/1/referencedby"));
    }

    [Theory]
    [InlineData("__GLOBAL", "__GLOBAL")]
    [InlineData("__EMPTY", "__EMPTY")]
    [InlineData("bell%07-value", "bell\u0007-value")]
    public async Task Reserved_names_and_control_characters_are_invalid_subjects(string path, string subject)
    {
        var expected = $"The specified subject '{subject}' is not a valid.";
        await Message(422, 42208, expected, _http.PostJson($"/subjects/{path}/versions", new { schema = "\"int\"" }));
        await Message(422, 42208, expected, _http.PutJson($"/config/{path}", new { compatibility = "NONE" }));
        await Message(422, 42208, expected, _http.PutJson($"/mode/{path}", new { mode = "READONLY" }));
    }

    [Fact]
    public async Task Deleted_versions_can_be_listed_as_negative_numbers()
    {
        await _http.RegisterAsync("negative-value", "\"int\"");
        await _http.RegisterAsync("negative-value", "\"long\"");
        await _http.DeleteJson("/subjects/negative-value/versions/1");
        var (_, versions) = await _http.GetJson("/subjects/negative-value/versions?deletedAsNegative=true");
        Assert.Equal("[-1,2]", versions!.ToJsonString());
        var (_, deletedOnly) = await _http.GetJson("/subjects/negative-value/versions?deletedOnly=true");
        Assert.Equal("[1]", deletedOnly!.ToJsonString());
    }

    [Fact]
    public async Task Register_answers_with_the_registered_version_as_confluent_does()
    {
        var (status, body) = await _http.PostJson("/subjects/register-response-value/versions", new JsonObject { ["schema"] = "{\"type\":\"string\"}", ["schemaType"] = "JSON" });
        Assert.Equal(200, status);
        Assert.Equal(1, (int)body!["version"]!);
        Assert.Equal("JSON", (string)body["schemaType"]!);
        Assert.Equal("{\"type\":\"string\"}", (string)body["schema"]!);
        var (_, again) = await _http.PostJson("/subjects/register-response-value/versions", new JsonObject { ["schema"] = "{\"type\":\"string\"}", ["schemaType"] = "JSON" });
        Assert.Equal((int)body["id"]!, (int)again!["id"]!);
        Assert.Equal(1, (int)again["version"]!);
    }

    [Fact]
    public async Task Error_messages_are_confluents()
    {
        await Message(422, 42203, "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive",
            _http.PutJson("/config/msg-value", new { compatibility = "SIDEWAYS" }));
        await Message(422, 42204, "Invalid mode. Valid values are READWRITE, READONLY, IMPORT and FORWARD.",
            _http.PutJson("/mode/msg-value", new { mode = "SOMETIMES" }));
        await Message(422, 42201, "Empty schema", _http.PostJson("/subjects/msg-value/versions", new { schema = "" }));
        await Message(422, 42201, "Invalid schema type XML", _http.PostJson("/subjects/msg-value/versions", new { schema = "<a/>", schemaType = "XML" }));
        await Message(404, 40403, "Schema not found", _http.GetJson("/schemas/ids/987654/subjects"));
        await Message(404, 40403, "Schema not found", _http.GetJson("/schemas/ids/987654/versions"));
        await Message(404, 40403, "Schema 987654 not found", _http.GetJson("/schemas/ids/987654"));
        await Message(404, 40402, "Version 9 not found.", GetAfterRegister("msg-v-value", "/subjects/msg-v-value/versions/9"));
        await Message(404, 40401, "Subject 'msg-none' not found.", _http.GetJson("/subjects/msg-none/versions/1"));

        await _http.PutJson("/mode/msg-ro-value", new { mode = "READONLY" });
        await Message(422, 42205, "Subject msg-ro-value in context . is in read-only mode",
            _http.PostJson("/subjects/msg-ro-value/versions", new { schema = "\"int\"" }));
        await Message(422, 42205, "Subject msg-rw-value in context . is not in import mode",
            _http.PostJson("/subjects/msg-rw-value/versions", new { schema = "\"int\"", id = 7777 }));
    }

    [Fact]
    public async Task Import_mode_takes_schemas_with_their_ids_only()
    {
        Assert.Equal(200, (await _http.PutJson("/mode/import-only-value", new { mode = "IMPORT" })).Status);
        await Message(422, 42205, "Subject import-only-value in context . is not in read-write mode",
            _http.PostJson("/subjects/import-only-value/versions", new { schema = "\"string\"" }));
        var (status, reg) = await _http.PostJson("/subjects/import-only-value/versions", new { schema = "\"string\"", id = 8100, version = 1 });
        Assert.True(status == 200, reg?.ToJsonString());
        await Message(422, 42207, "Schema already registered with id 8100 instead of input id 8101",
            _http.PostJson("/subjects/import-only-value/versions", new { schema = "\"string\"", id = 8101 }));
    }

    private async Task<(int Status, JsonNode? Body)> GetAfterRegister(string subject, string path)
    {
        await _http.RegisterAsync(subject, "\"int\"");
        return await _http.GetJson(path);
    }

    private static async Task Message(int status, int errorCode, string message, Task<(int Status, JsonNode? Body)> call)
    {
        var (actual, body) = await call;
        Assert.True(actual == status, $"expected HTTP {status}, got {actual}: {body?.ToJsonString()}");
        Assert.Equal(errorCode, (int)body!["error_code"]!);
        Assert.Equal(message, (string)body["message"]!);
    }
}

/// <summary>The compatibility resource's edge cases, as Confluent's CompatibilityResource answers them.</summary>
public sealed class CompatibilityEndpointTests(RegistryFixture fixture) : IClassFixture<RegistryFixture>
{
    private readonly HttpClient _http = fixture.Http;

    [Fact]
    public async Task Latest_of_a_subject_without_versions_is_compatible_even_through_confluents_client()
    {
        var (status, body) = await _http.PostJson("/compatibility/subjects/compat-new-value/versions/latest?verbose=true", new { schema = "\"string\"" });
        Assert.True(status == 200, body?.ToJsonString());
        Assert.True((bool)body!["is_compatible"]!);
        using var client = new Confluent.SchemaRegistry.CachedSchemaRegistryClient(new Confluent.SchemaRegistry.SchemaRegistryConfig { Url = fixture.Server.SchemaRegistryUrl });
        Assert.True(await client.IsCompatibleAsync("compat-new-value", new Confluent.SchemaRegistry.Schema("\"string\"", Confluent.SchemaRegistry.SchemaType.Avro)));
    }

    [Fact]
    public async Task A_numbered_version_that_does_not_exist_is_40402()
    {
        await RestApiTests.Expect(404, 40402, _http.PostJson("/compatibility/subjects/compat-none-value/versions/3", new { schema = "\"string\"" }));
        await _http.RegisterAsync("compat-one-value", "\"string\"");
        await RestApiTests.Expect(404, 40402, _http.PostJson("/compatibility/subjects/compat-one-value/versions/2", new { schema = "\"string\"" }));
        await RestApiTests.Expect(422, 42202, _http.PostJson("/compatibility/subjects/compat-one-value/versions/zero", new { schema = "\"string\"" }));
    }

    [Fact]
    public async Task A_verbose_check_of_an_invalid_schema_answers_with_the_reason()
    {
        await _http.RegisterAsync("compat-invalid-value", "\"string\"");
        var (status, body) = await _http.PostJson("/compatibility/subjects/compat-invalid-value/versions/latest?verbose=true", new { schema = "{\"type\":\"nope\"}" });
        Assert.True(status == 200, body?.ToJsonString());
        Assert.False((bool)body!["is_compatible"]!);
        Assert.StartsWith("Invalid schema", (string)body["messages"]![0]!, StringComparison.Ordinal);
        await RestApiTests.Expect(422, 42201, _http.PostJson("/compatibility/subjects/compat-invalid-value/versions/latest", new { schema = "{\"type\":\"nope\"}" }));
    }

    [Fact]
    public async Task Contexts_list_the_default_context_with_paging_and_prefix()
    {
        Assert.Equal("""["."]""", (await _http.GetJson("/contexts")).Body!.ToJsonString());
        Assert.Equal("[]", (await _http.GetJson("/contexts?offset=1")).Body!.ToJsonString());
        Assert.Equal("[]", (await _http.GetJson("/contexts?contextPrefix=.other")).Body!.ToJsonString());
    }
}

/// <summary>Issue 20 #14: a body past the registry's limit is answered 413 with an error body, never a reset.</summary>
public sealed class RequestBodyLimitTests(RegistryFixture fixture) : IClassFixture<RegistryFixture>
{
    private readonly HttpClient _http = fixture.Http;

    /// <summary>A body of <paramref name="length"/> bytes made of spaces inside a JSON string, produced as it is sent.</summary>
    private sealed class LargeJsonContent(long length, bool chunked) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
        {
            var head = "{\"schema\":\""u8.ToArray();
            var tail = "\"}"u8.ToArray();
            await stream.WriteAsync(head);
            var filler = new byte[1 << 20];
            Array.Fill(filler, (byte)' ');
            for (var left = length - head.Length - tail.Length; left > 0; left -= filler.Length)
                await stream.WriteAsync(filler.AsMemory(0, (int)Math.Min(left, filler.Length)));
            await stream.WriteAsync(tail);
        }

        protected override bool TryComputeLength(out long size)
        {
            size = length;
            return !chunked;
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_100_MiB_body_is_413_with_an_error_body_and_the_registry_keeps_serving(bool chunked)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/subjects/huge-value/versions") { Content = new LargeJsonContent(100L << 20, chunked) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue(RegistryHttp.ContentType);
        using var response = await _http.SendAsync(request);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal(413, (int)body["error_code"]!);
        Assert.Contains("exceeds the limit", (string)body["message"]!, StringComparison.Ordinal);

        var (status, _) = await _http.GetJson("/subjects");
        Assert.Equal(200, status);
    }

    [Fact]
    public async Task A_body_just_under_the_limit_is_read()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/subjects/large-value/versions") { Content = new LargeJsonContent(SchemaRegistryServer.MaxRequestBodyBytes, chunked: false) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue(RegistryHttp.ContentType);
        using var response = await _http.SendAsync(request);
        // Read and parsed: the schema (spaces only) is empty, which is Confluent's 42201, not 413.
        Assert.Equal((HttpStatusCode)422, response.StatusCode);
    }
}
