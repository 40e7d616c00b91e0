using System.Diagnostics.Metrics;
using System.Text;
using System.Text.Json.Nodes;
using Tributary.Coordination;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>The store over an in-memory log: replay, compaction and id allocation.</summary>
public sealed class SchemaStoreTests
{
    private static SchemaRequest Avro(string schema) => new(schema, "AVRO", [], null, null);

    /// <summary>What log compaction leaves: the last record of each key, tombstones dropped.</summary>
    private static MemoryCoordinatorLog Compacted(MemoryCoordinatorLog log)
    {
        var latest = new Dictionary<string, (byte[] Key, byte[]? Value, int Order)>();
        var order = 0;
        foreach (var (key, value) in log.Records) latest[Convert.ToBase64String(key)] = (key, value, order++);
        var compacted = new MemoryCoordinatorLog();
        foreach (var (key, value, _) in latest.Values.OrderBy(r => r.Order).Where(r => r.Value is not null))
            compacted.AppendAsync([(key, value)], 0).Wait();
        return compacted;
    }

    [Fact]
    public async Task Ids_are_not_reused_after_permanent_deletes_and_compaction()
    {
        var log = new MemoryCoordinatorLog();
        await using var store = await SchemaStore.OpenAsync(log);
        await store.RegisterAsync("keep", Avro("\"int\""), false);
        var doomed = await store.RegisterAsync("gone", Avro("\"string\""), false);
        await store.DeleteSubjectAsync("gone", permanent: false);
        await store.DeleteSubjectAsync("gone", permanent: true);

        await using var replayed = await SchemaStore.OpenAsync(Compacted(log));
        Assert.DoesNotContain("gone", replayed.Subjects(deleted: true));
        var next = await replayed.RegisterAsync("new", Avro("\"bytes\""), false);
        Assert.True(next.Id > doomed.Id, $"id {next.Id} reuses a deleted id (<= {doomed.Id})");
    }

    [Fact]
    public async Task Replay_rebuilds_identical_state()
    {
        var log = new MemoryCoordinatorLog();
        await using var store = await SchemaStore.OpenAsync(log);
        await store.RegisterAsync("a", Avro("""{"type":"record","name":"A","fields":[{"name":"x","type":"int"}]}"""), false);
        await store.RegisterAsync("a", Avro("""{"type":"record","name":"A","fields":[{"name":"x","type":"int"},{"name":"y","type":"int","default":0}]}"""), false);
        await store.RegisterAsync("b", Avro("""{"type":"record","name":"A","fields":[{"name":"x","type":"int"}]}"""), false);
        await store.SetConfigAsync("a", new JsonObject { ["compatibilityLevel"] = "FULL" });
        await store.SetModeAsync("b", "READONLY", force: false);
        await store.DeleteVersionAsync("a", "1", permanent: false);

        await using var replayed = await SchemaStore.OpenAsync(Compacted(log));
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
        var log = new MemoryCoordinatorLog();
        async Task Put(string key, string? value) =>
            await log.AppendAsync([(Encoding.UTF8.GetBytes(key), value is null ? null : Encoding.UTF8.GetBytes(value))], 0);
        await Put("""{"keytype":"NOOP","magic":0}""", null);
        await Put("""{"keytype":"SCHEMA","subject":"orders-value","version":1,"magic":1}""", """{"subject":"orders-value","version":1,"id":21,"schema":"\"string\"","deleted":false}""");
        await Put("""{"keytype":"SCHEMA","subject":"orders-value","version":2,"magic":1}""", """{"subject":"orders-value","version":2,"id":22,"schemaType":"JSON","schema":"{\"type\":\"object\"}","deleted":false}""");
        await Put("""{"keytype":"CONFIG","subject":null,"magic":0}""", """{"compatibilityLevel":"FORWARD"}""");
        await Put("""{"keytype":"MODE","subject":"orders-value","magic":0}""", """{"mode":"READONLY"}""");
        await Put("""{"keytype":"DELETE_SUBJECT","subject":"orders-value","magic":0}""", """{"subject":"orders-value","version":1}""");
        await using var store = await SchemaStore.OpenAsync(log);
        Assert.Equal([2], store.Versions("orders-value", deleted: false));
        Assert.Equal("JSON", store.GetById(22).SchemaType);
        Assert.Equal(CompatibilityLevel.Forward, store.EffectiveCompatibility("other"));
        Assert.Equal("READONLY", store.EffectiveMode("orders-value"));
        Assert.Equal(23, (await store.RegisterAsync("x", Avro("\"int\""), false)).Id);
    }

    [Fact]
    public async Task Concurrent_registrations_get_unique_ids_and_contiguous_versions_and_replay_to_the_same_state()
    {
        var log = new MemoryCoordinatorLog();
        await using var store = await SchemaStore.OpenAsync(log);
        await store.SetConfigAsync(null, new JsonObject { ["compatibilityLevel"] = "NONE" });
        var registrations = Enumerable.Range(0, 50).Select(i => Task.Run(() =>
            store.RegisterAsync($"s{i % 5}", Avro($$"""{"type":"record","name":"R{{i}}","fields":[{"name":"f","type":"int"}]}"""), false)));
        var registered = await Task.WhenAll(registrations);

        Assert.Equal(Enumerable.Range(1, 50), registered.Select(r => r.Id).Order());
        Assert.Equal(5, registered.Select(r => r.Subject).Distinct().Count());
        foreach (var subject in registered.GroupBy(r => r.Subject))
        {
            Assert.Equal(Enumerable.Range(1, 10), subject.Select(r => r.Version).Order());
            Assert.Equal(Enumerable.Range(1, 10), store.Versions(subject.Key, deleted: true));
            foreach (var r in subject) Assert.Equal(r.Id, store.GetVersion(r.Subject, r.Version.ToString()).Id);
        }

        await using var reopened = await SchemaStore.OpenAsync(log);
        AssertSameState(store, reopened);
    }

    [Fact]
    public async Task A_log_that_cannot_be_read_fails_the_open_and_the_runtime_counts_the_failure()
    {
        long failures = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == CoordinatorMetrics.MeterName && instrument.Name == "tributary.coordinator.load.failures") l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
                if (tag.Key == "coordinator" && (string?)tag.Value == "schema registry") Interlocked.Exchange(ref failures, Math.Max(Interlocked.Read(ref failures), value));
        });
        listener.Start();
        var reported = new List<string>();

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => SchemaStore.OpenAsync(new UnreadableLog(), report: (level, message) =>
        {
            lock (reported) reported.Add($"{level}: {message}");
            // The runtime reports the failure after counting it and before it disposes its meter: read the counter now.
            if (level == CoordinatorLogLevel.Error && message.Contains("load failed", StringComparison.Ordinal)) listener.RecordObservableInstruments();
        }));

        Assert.Contains("could not load its log", e.Message, StringComparison.Ordinal);
        Assert.Contains("the disk is gone", e.Message, StringComparison.Ordinal);
        Assert.Equal(1, Interlocked.Read(ref failures));
        lock (reported) Assert.Contains(reported, m => m.StartsWith("Error: ", StringComparison.Ordinal) && m.Contains("load failed after 1 records", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_write_whose_append_fails_changes_nothing_and_answers_50001()
    {
        var log = new FailingAppendLog();
        await using var store = await SchemaStore.OpenAsync(log);
        var first = await store.RegisterAsync("a", Avro("""{"type":"record","name":"A","fields":[{"name":"x","type":"int"}]}"""), false);
        await store.SetConfigAsync("a", new JsonObject { ["compatibilityLevel"] = "FULL" });
        var recordsBefore = log.Inner.Records.Count;
        var snapshot = Snapshot(store);

        log.Fail = true;
        var writes = new Func<Task>[]
        {
            () => store.RegisterAsync("a", Avro("""{"type":"record","name":"A","fields":[{"name":"x","type":"int"},{"name":"y","type":"int","default":0}]}"""), false),
            () => store.RegisterAsync("b", Avro("\"string\""), false),
            () => store.DeleteSubjectAsync("a", permanent: false),
            () => store.DeleteVersionAsync("a", "1", permanent: false),
            () => store.SetConfigAsync(null, new JsonObject { ["compatibilityLevel"] = "NONE" }),
            () => store.SetModeAsync("a", "READONLY", force: false),
        };
        foreach (var write in writes)
        {
            var e = await Assert.ThrowsAsync<RegistryException>(write);
            Assert.Equal(50001, e.ErrorCode);
            Assert.Equal(500, e.HttpStatus);
            Assert.Contains("no space left on device", e.Message, StringComparison.Ordinal);
            Assert.Equal(snapshot, Snapshot(store));
        }
        Assert.Equal(recordsBefore, log.Inner.Records.Count);

        // The id the failed registration would have taken is still the next one, and stands for what is registered now.
        log.Fail = false;
        var second = await store.RegisterAsync("b", Avro("\"long\""), false);
        Assert.Equal(first.Id + 1, second.Id);
        Assert.Equal("\"long\"", store.GetById(second.Id).Schema);
    }

    [Fact]
    public async Task A_write_after_the_store_is_disposed_answers_50001_and_reads_still_answer()
    {
        var store = await SchemaStore.OpenAsync(new MemoryCoordinatorLog());
        var registered = await store.RegisterAsync("a", Avro("\"int\""), false);
        await store.DisposeAsync();

        var e = await Assert.ThrowsAsync<RegistryException>(() => store.RegisterAsync("a", Avro("\"long\""), false));
        Assert.Equal(50001, e.ErrorCode);
        Assert.Equal(registered.Id, store.GetVersion("a", "latest").Id);
    }

    [Fact]
    public async Task Undecodable_records_are_skipped_and_counted_by_the_runtime()
    {
        var log = new MemoryCoordinatorLog();
        await log.AppendAsync([(Encoding.UTF8.GetBytes("not json"), Encoding.UTF8.GetBytes("{}"))], 0);
        await log.AppendAsync([(Encoding.UTF8.GetBytes("""{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}"""),
            Encoding.UTF8.GetBytes("""{"subject":"s","version":1,"id":3,"schema":"\"int\"","deleted":false}"""))], 0);
        await log.AppendAsync([(Encoding.UTF8.GetBytes("""{"keytype":"SCHEMA","subject":"s","version":2,"magic":1}"""), Encoding.UTF8.GetBytes("[1]"))], 0);
        var reported = new List<string>();
        await using var store = await SchemaStore.OpenAsync(log, report: (level, message) =>
        {
            lock (reported) reported.Add($"{level}: {message}");
        });
        Assert.Equal(2, store.SkippedRecords);
        Assert.Equal([1], store.Versions("s", deleted: true));
        Assert.Equal(3, store.MaxId);
        lock (reported) Assert.Equal(2, reported.Count(m => m.Contains("skipped an undecodable record", StringComparison.Ordinal)));
    }

    private static string Snapshot(SchemaStore store)
    {
        var text = new StringBuilder();
        text.Append(store.MaxId).Append('|').Append(store.GlobalConfig().ToJsonString()).Append('|').Append(store.GlobalMode()).Append('\n');
        foreach (var subject in store.Subjects(deleted: true))
        {
            text.Append(subject).Append(' ').Append(store.SubjectConfig(subject)?.ToJsonString()).Append(' ').Append(store.SubjectMode(subject)).Append('\n');
            foreach (var v in store.Versions(subject, deleted: true))
            {
                var version = store.GetVersion(subject, v.ToString(), deleted: true);
                text.Append($"  {version.Version} {version.Id} {version.Deleted} {version.Content.SchemaType} {version.Content.Schema}\n");
            }
        }
        return text.ToString();
    }

    private static void AssertSameState(SchemaStore expected, SchemaStore actual)
    {
        Assert.Equal(Snapshot(expected), Snapshot(actual));
        for (var id = 1; id <= expected.MaxId; id++)
        {
            Assert.Equal(expected.TryGetById(id, out var e), actual.TryGetById(id, out var a));
            if (e is not null) Assert.Equal(e.Schema, a.Schema);
        }
    }

    /// <summary>A partition whose read fails part way, as a disk that goes away during the replay.</summary>
    private sealed class UnreadableLog : ICoordinatorLog
    {
        public IEnumerable<CoordinatorRecord> Read(Action<long, Exception> undecodable)
        {
            yield return new CoordinatorRecord(0, Encoding.UTF8.GetBytes("""{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}"""),
                Encoding.UTF8.GetBytes("""{"subject":"s","version":1,"id":1,"schema":"\"int\"","deleted":false}"""));
            throw new IOException("the disk is gone");
        }

        public Task<long> AppendAsync(IReadOnlyList<(byte[] Key, byte[]? Value)> records, long timestampMs, TransactionalProducer? producer) => Task.FromResult(0L);
    }

    /// <summary>A partition in memory whose appends fail while <see cref="Fail"/> is set.</summary>
    private sealed class FailingAppendLog : ICoordinatorLog
    {
        public MemoryCoordinatorLog Inner { get; } = new();

        public volatile bool Fail;

        public IEnumerable<CoordinatorRecord> Read(Action<long, Exception> undecodable) => Inner.Read(undecodable);

        public Task<long> AppendAsync(IReadOnlyList<(byte[] Key, byte[]? Value)> records, long timestampMs, TransactionalProducer? producer) =>
            Fail ? Task.FromException<long>(new IOException("no space left on device")) : Inner.AppendAsync(records, timestampMs, producer);
    }

    private sealed class VersionComparer : IEqualityComparer<SubjectVersion>
    {
        public bool Equals(SubjectVersion? x, SubjectVersion? y) =>
            x!.Subject == y!.Subject && x.Version == y.Version && x.Id == y.Id && x.Deleted == y.Deleted
            && x.Content.Schema == y.Content.Schema && x.Content.SchemaType == y.Content.SchemaType;

        public int GetHashCode(SubjectVersion obj) => obj.Id;
    }
}
