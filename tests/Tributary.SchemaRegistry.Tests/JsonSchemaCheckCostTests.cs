using System.Text.Json.Nodes;
using Tributary.Coordination;
using Tributary.SchemaRegistry.Json;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>
/// Issue 19 #9: a compatibility check of oneOf over self-referencing definitions took time exponential in the number of
/// alternatives (8.7 s at 7). Trial outcomes are remembered for the whole check, so the work is polynomial; and a check
/// that still grows past its bound stops with 50002 instead of holding a core, as does one whose client has gone. The work is counted, not timed.
/// </summary>
public sealed class JsonSchemaCheckCostTests
{
    /// <summary>n definitions, each an object whose "next" is a oneOf over all n; the root is a oneOf over all n.</summary>
    private static JsonParsedSchema Recursive(int n, string extra = "")
    {
        var refs = new JsonArray([.. Enumerable.Range(0, n).Select(i => (JsonNode)new JsonObject { ["$ref"] = $"#/definitions/d{i}" })]);
        var definitions = new JsonObject();
        for (var i = 0; i < n; i++)
        {
            definitions[$"d{i}"] = new JsonObject
            {
                ["type"] = "object",
                ["properties"] = new JsonObject { [$"p{i}{extra}"] = new JsonObject { ["type"] = "string" }, ["next"] = new JsonObject { ["oneOf"] = refs.DeepClone() } },
            };
        }
        var schema = new JsonObject { ["definitions"] = definitions, ["oneOf"] = refs.DeepClone() };
        return (JsonParsedSchema)new JsonSchemaProvider().Parse(schema.ToJsonString(), []);
    }

    [Fact]
    public void Recursive_alternatives_cost_polynomial_work()
    {
        long at6 = 0, at12 = 0;
        Assert.Empty(JsonSchemaCompatibility.Check(Recursive(6), Recursive(6), out at6));
        Assert.Empty(JsonSchemaCompatibility.Check(Recursive(12), Recursive(12), out at12));

        // Doubling the alternatives: exponential work would multiply by thousands; pairs of definitions by about 4-8.
        Assert.True(at12 < at6 * 16, $"{at6} comparisons at 6 alternatives, {at12} at 12");
        Assert.True(at12 < 200_000, $"{at12} comparisons at 12 alternatives");
    }

    [Fact]
    public void An_incompatible_recursive_change_is_still_found()
    {
        // The reader requires a property deep in one definition: remembering trials must not hide the difference.
        var writer = Recursive(8);
        var reader = (JsonParsedSchema)new JsonSchemaProvider().Parse(
            JsonNode.Parse(writer.Canonical)!.AsObject().Also(o => o["definitions"]!["d3"]!["required"] = new JsonArray("p3")).ToJsonString(), []);

        Assert.NotEmpty(JsonSchemaCompatibility.Check(reader, writer, out _));
    }

    [Fact]
    public void A_check_past_its_bound_stops_with_50002()
    {
        var e = Assert.Throws<RegistryException>(() => JsonSchemaCompatibility.Check(Recursive(12), Recursive(12), out _, limit: 500));

        Assert.Equal(50002, e.ErrorCode);
        Assert.Contains("500", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_check_whose_client_has_gone_stops()
    {
        using var gone = new CancellationTokenSource();
        gone.Cancel();
        Assert.Throws<OperationCanceledException>(() => JsonSchemaCompatibility.Check(Recursive(12), Recursive(12), out _, cancellation: gone.Token));
    }

    [Fact]
    public async Task A_register_or_test_whose_client_has_gone_stops_its_check_and_stores_nothing()
    {
        await using var store = await SchemaStore.OpenAsync(new MemoryCoordinatorLog());
        await store.RegisterAsync("s", new SchemaRequest(Recursive(12).Canonical, "JSON", [], null, null), false);
        var candidate = new SchemaRequest(Recursive(12, extra: "x").Canonical, "JSON", [], null, null);
        using var gone = new CancellationTokenSource();
        gone.Cancel();

        Assert.Throws<OperationCanceledException>(() => store.TestCompatibility("s", candidate, null, false, gone.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => store.RegisterAsync("s", candidate, false, gone.Token));
        Assert.Equal([1], store.Versions("s", deleted: false));
    }
}

internal static class JsonNodeTestExtensions
{
    public static JsonObject Also(this JsonObject o, Action<JsonObject> change)
    {
        change(o);
        return o;
    }
}
