namespace Tributary.SchemaRegistry.Tests;

/// <summary>
/// Confluent caps lists of schemas (GET /schemas, referencedby) at schema.search.default.limit = max.limit = 1000,
/// and a limit above the maximum falls back to the default; lists of subjects are not capped. Its own broker, since
/// it fills the registry with more than a thousand subjects.
/// </summary>
public sealed class SchemaSearchLimitTests(RegistryFixture fixture) : IClassFixture<RegistryFixture>
{
    [Fact]
    public async Task Lists_of_schemas_stop_at_a_thousand_and_lists_of_subjects_do_not()
    {
        var store = fixture.Server.Schemas!;
        const int count = 1005;
        for (var i = 0; i < count; i++)
        {
            var schema = $$"""{"type":"fixed","name":"F{{i}}","size":1}""";
            await store.RegisterAsync($"limit-{i:D4}", new SchemaRequest(schema, SchemaTypes.Avro, [], null, null), normalize: false);
        }
        Assert.Equal(1000, (await fixture.Http.GetJson("/schemas")).Body!.AsArray().Count);
        Assert.Equal(1000, (await fixture.Http.GetJson("/schemas?limit=1001")).Body!.AsArray().Count);
        Assert.Equal(7, (await fixture.Http.GetJson("/schemas?limit=7")).Body!.AsArray().Count);
        Assert.Equal(5, (await fixture.Http.GetJson("/schemas?offset=1000")).Body!.AsArray().Count);
        Assert.Equal(count, (await fixture.Http.GetJson("/subjects")).Body!.AsArray().Count);
    }
}
