using System.Text.Json.Nodes;
using Tributary.SchemaRegistry.Storage;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>The store over an in-memory log: replay, compaction and id allocation.</summary>
public sealed class SchemaStoreTests
{
    private static SchemaRequest Avro(string schema) => new(schema, "AVRO", [], null, null);

    /// <summary>What log compaction leaves: the last record of each key, tombstones dropped.</summary>
    private static MemorySchemaLog Compacted(MemorySchemaLog log)
    {
        var latest = new Dictionary<string, (byte[] Key, byte[]? Value, int Order)>();
        var order = 0;
        foreach (var (key, value) in log.ReadAll()) latest[Convert.ToBase64String(key)] = (key, value, order++);
        var compacted = new MemorySchemaLog();
        foreach (var (key, value, _) in latest.Values.OrderBy(r => r.Order).Where(r => r.Value is not null))
            compacted.AppendAsync(key, value).AsTask().Wait();
        return compacted;
    }

    [Fact]
    public async Task Ids_are_not_reused_after_permanent_deletes_and_compaction()
    {
        var log = new MemorySchemaLog();
        var store = new SchemaStore(log);
        await store.RegisterAsync("keep", Avro("\"int\""), false);
        var doomed = await store.RegisterAsync("gone", Avro("\"string\""), false);
        await store.DeleteSubjectAsync("gone", permanent: false);
        await store.DeleteSubjectAsync("gone", permanent: true);

        var replayed = new SchemaStore(Compacted(log));
        Assert.DoesNotContain("gone", replayed.Subjects(deleted: true));
        var next = await replayed.RegisterAsync("new", Avro("\"bytes\""), false);
        Assert.True(next.Id > doomed.Id, $"id {next.Id} reuses a deleted id (<= {doomed.Id})");
    }

    [Fact]
    public async Task Replay_rebuilds_identical_state()
    {
        var log = new MemorySchemaLog();
        var store = new SchemaStore(log);
        await store.RegisterAsync("a", Avro("""{"type":"record","name":"A","fields":[{"name":"x","type":"int"}]}"""), false);
        await store.RegisterAsync("a", Avro("""{"type":"record","name":"A","fields":[{"name":"x","type":"int"},{"name":"y","type":"int","default":0}]}"""), false);
        await store.RegisterAsync("b", Avro("""{"type":"record","name":"A","fields":[{"name":"x","type":"int"}]}"""), false);
        await store.SetConfigAsync("a", new JsonObject { ["compatibilityLevel"] = "FULL" });
        await store.SetModeAsync("b", "READONLY", force: false);
        await store.DeleteVersionAsync("a", "1", permanent: false);

        var replayed = new SchemaStore(Compacted(log));
        Assert.Equal(store.Subjects(true), replayed.Subjects(true));
        foreach (var subject in store.Subjects(true))
        {
            Assert.Equal(store.Versions(subject, true), replayed.Versions(subject, true));
            foreach (var v in store.Versions(subject, true))
                Assert.Equal(store.GetVersion(subject, v.ToString(), true), replayed.GetVersion(subject, v.ToString(), true), new VersionComparer());
        }
        Assert.Equal(CompatibilityLevel.Full, replayed.EffectiveCompatibility("a"));
        Assert.Equal("READONLY", replayed.EffectiveMode("b"));
        Assert.Equal(store.GetVersion("b", "1").Id, replayed.GetVersion("a", "1", true).Id);
    }

    [Fact]
    public async Task Confluent_records_written_by_another_registry_are_replayed()
    {
        // Records as Confluent Schema Registry writes them to _schemas.
        var log = new MemorySchemaLog();
        async Task Put(string key, string? value) =>
            await log.AppendAsync(System.Text.Encoding.UTF8.GetBytes(key), value is null ? null : System.Text.Encoding.UTF8.GetBytes(value));
        await Put("""{"keytype":"NOOP","magic":0}""", null);
        await Put("""{"keytype":"SCHEMA","subject":"orders-value","version":1,"magic":1}""", """{"subject":"orders-value","version":1,"id":21,"schema":"\"string\"","deleted":false}""");
        await Put("""{"keytype":"SCHEMA","subject":"orders-value","version":2,"magic":1}""", """{"subject":"orders-value","version":2,"id":22,"schemaType":"JSON","schema":"{\"type\":\"object\"}","deleted":false}""");
        await Put("""{"keytype":"CONFIG","subject":null,"magic":0}""", """{"compatibilityLevel":"FORWARD"}""");
        await Put("""{"keytype":"MODE","subject":"orders-value","magic":0}""", """{"mode":"READONLY"}""");
        await Put("""{"keytype":"DELETE_SUBJECT","subject":"orders-value","magic":0}""", """{"subject":"orders-value","version":1}""");
        var store = new SchemaStore(log);
        Assert.Equal([2], store.Versions("orders-value", deleted: false));
        Assert.Equal("JSON", store.GetById(22).SchemaType);
        Assert.Equal(CompatibilityLevel.Forward, store.EffectiveCompatibility("other"));
        Assert.Equal("READONLY", store.EffectiveMode("orders-value"));
        Assert.Equal(23, (await store.RegisterAsync("x", Avro("\"int\""), false)).Id);
    }

    private sealed class VersionComparer : IEqualityComparer<SubjectVersion>
    {
        public bool Equals(SubjectVersion? x, SubjectVersion? y) =>
            x!.Subject == y!.Subject && x.Version == y.Version && x.Id == y.Id && x.Deleted == y.Deleted
            && x.Content.Schema == y.Content.Schema && x.Content.SchemaType == y.Content.SchemaType;

        public int GetHashCode(SubjectVersion obj) => obj.Id;
    }
}
