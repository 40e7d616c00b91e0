using Tributary.Coordination;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>
/// Issue 19 #8: without normalize, an Avro schema that differs only in attribute order, whitespace or how its names are
/// spelled (a redundant or inherited namespace) is the schema already registered, as Confluent decides with Avro's
/// canonical string: register returns the existing version and id (under another subject, the same id), lookup finds
/// it. A doc or a default that differs is a different schema.
/// </summary>
public sealed class AvroIdentityTests
{
    private static SchemaRequest Avro(string schema) => new(schema, SchemaTypes.Avro, [], null, null);

    private const string Original = """{"type":"record","name":"R","namespace":"a.b","fields":[{"name":"x","type":"int"},{"name":"inner","type":{"type":"record","name":"I","fields":[{"name":"y","type":"string"}]}},{"name":"again","type":"I"}]}""";

    // Attributes reordered, whitespace, full names instead of the namespace attribute, a reference spelled in full.
    private const string Respelled = """
        { "fields": [ { "type": "int", "name": "x" },
                      { "name": "inner", "type": { "fields": [ { "name": "y", "type": "string" } ], "name": "a.b.I", "type": "record" } },
                      { "type": "a.b.I", "name": "again" } ],
          "name": "a.b.R", "type": "record" }
        """;

    [Fact]
    public async Task A_respelled_schema_is_the_registered_one_for_register_and_lookup()
    {
        await using var store = await SchemaStore.OpenAsync(new MemoryCoordinatorLog());
        var first = await store.RegisterAsync("s1", Avro(Original), normalize: false);

        var again = await store.RegisterAsync("s1", Avro(Respelled), normalize: false);
        var found = store.Lookup("s1", Avro(Respelled), normalize: false, deleted: false);
        var elsewhere = await store.RegisterAsync("s2", Avro(Respelled), normalize: false);

        Assert.Equal((first.Version, first.Id), (again.Version, again.Id));
        Assert.Equal((first.Version, first.Id), (found.Version, found.Id));
        Assert.Equal(first.Id, elsewhere.Id);
        Assert.Equal([1], store.Versions("s1", deleted: false));
    }

    [Fact]
    public async Task A_different_doc_or_default_is_a_different_schema()
    {
        await using var store = await SchemaStore.OpenAsync(new MemoryCoordinatorLog());
        var first = await store.RegisterAsync("s", Avro("""{"type":"record","name":"R","fields":[{"name":"x","type":"int","default":1}]}"""), normalize: false);

        var documented = await store.RegisterAsync("s", Avro("""{"type":"record","name":"R","doc":"now documented","fields":[{"name":"x","type":"int","default":1}]}"""), normalize: false);
        var otherDefault = await store.RegisterAsync("s", Avro("""{"type":"record","name":"R","doc":"now documented","fields":[{"name":"x","type":"int","default":2}]}"""), normalize: false);

        Assert.NotEqual(first.Id, documented.Id);
        Assert.NotEqual(documented.Id, otherDefault.Id);
        Assert.Equal([1, 2, 3], store.Versions("s", deleted: false));
        Assert.Throws<RegistryException>(() => store.Lookup("s", Avro("""{"type":"record","name":"R","fields":[{"name":"x","type":"long","default":1}]}"""), normalize: false, deleted: false));
    }
}
