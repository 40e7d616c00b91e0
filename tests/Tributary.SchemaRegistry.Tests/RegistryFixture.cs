using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Tributary.Broker;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>A real Tributary broker with its schema registry on ephemeral loopback ports, and an HTTP client for it.</summary>
public sealed class RegistryFixture : IAsyncLifetime
{
    public TributaryServer Server { get; private set; } = null!;

    public HttpClient Http { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Server = await TributaryServer.StartEphemeralAsync();
        Http = new HttpClient { BaseAddress = new Uri(Server.SchemaRegistryUrl!) };
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
    }
}

/// <summary>Small helpers for driving the REST API.</summary>
public static class RegistryHttp
{
    public const string ContentType = "application/vnd.schemaregistry.v1+json";

    public static async Task<(int Status, JsonNode? Body)> SendAsync(this HttpClient http, HttpMethod method, string path, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            var json = body is JsonNode node ? node.ToJsonString() : System.Text.Json.JsonSerializer.Serialize(body);
            request.Content = new StringContent(json, Encoding.UTF8);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue(ContentType);
        }
        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        JsonNode? parsed = null;
        try
        {
            parsed = text.Length == 0 ? null : JsonNode.Parse(text);
        }
        catch (System.Text.Json.JsonException)
        {
            parsed = JsonValue.Create(text);
        }
        return ((int)response.StatusCode, parsed);
    }

    public static Task<(int Status, JsonNode? Body)> GetJson(this HttpClient http, string path) => http.SendAsync(HttpMethod.Get, path);

    public static Task<(int Status, JsonNode? Body)> PostJson(this HttpClient http, string path, object body) => http.SendAsync(HttpMethod.Post, path, body);

    public static Task<(int Status, JsonNode? Body)> PutJson(this HttpClient http, string path, object body) => http.SendAsync(HttpMethod.Put, path, body);

    public static Task<(int Status, JsonNode? Body)> DeleteJson(this HttpClient http, string path) => http.SendAsync(HttpMethod.Delete, path);

    public static async Task<int> RegisterAsync(this HttpClient http, string subject, string schema, string? type = null)
    {
        var body = new JsonObject { ["schema"] = schema };
        if (type is not null) body["schemaType"] = type;
        var (status, response) = await http.PostJson($"/subjects/{subject}/versions", body);
        Assert.True(status == 200, $"register {subject}: {status} {response?.ToJsonString()}");
        return (int)response!["id"]!;
    }
}
