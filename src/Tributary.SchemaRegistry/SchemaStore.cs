using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Tributary.Coordination;
using Tributary.SchemaRegistry.Storage;

namespace Tributary.SchemaRegistry;

/// <summary>
/// The registry's state: subjects and their versions, schema contents by global id, configs and modes.
/// <para>
/// The writer is a shard of the coordination runtime over partition 0 of <c>_schemas</c>, as the group and transaction
/// coordinators are over their topics, and every change runs alone on the shard's loop, where it is first appended and
/// then applied by the same <see cref="Apply"/> that replay uses, so the state after a restart is the state before it (ids
/// and versions included) and a change whose append fails changes nothing. Reads do not go through the loop: the HTTP
/// threads and the broker's produce-path validation read the same dictionaries under a short lock.
/// </para>
/// <para>
/// Two ways to be fed. Opened over a log it alone writes (<see cref="OpenAsync"/>), the shard's loader replays it and a
/// change is applied once its append is durable. Opened to follow a replica (<see cref="OpenFollowing"/>, what a broker
/// does, alone or in a cluster), the state is fed by a tail of the replica's committed records on every broker that holds
/// one (<see cref="SchemaLogTail"/>); the host loads the writer only on the leader of <c>_schemas</c>-0 and unloads it when
/// the leadership moves (<see cref="Writer"/>). The writer then decides only on a state that has applied the whole local
/// log, and its own appends count once the ISR holds them and the tail applied them: a new leader hands out ids above
/// every id its log ever held, and every broker's state is the same prefix of one log.
/// </para>
/// <para>
/// Invariants: an id always stands for one content; equal content (type, schema text, references, metadata, rule set)
/// registered under several subjects shares one id; ids only grow (the next id is one more than the highest ever
/// seen in the log, even if that schema was later deleted), so an id is never reused.
/// </para>
/// </summary>
public sealed partial class SchemaStore : IAsyncDisposable
{
    /// <summary>The registry's one shard: <c>_schemas</c> has one partition, as Confluent's.</summary>
    private const int Partition = 0;

    private readonly CoordinatorRuntime<SchemaShard> _runtime;
    private readonly IReadOnlyDictionary<string, ISchemaProvider> _providers;
    private readonly object _sync = new();
    private readonly Dictionary<string, SortedDictionary<int, SubjectVersion>> _subjects = new(StringComparer.Ordinal);
    private readonly Dictionary<int, SchemaContent> _byId = [];
    private readonly Dictionary<string, int> _idByContent = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<int, ParsedSchema> _parsed = new();
    private readonly Dictionary<string, JsonObject> _subjectConfigs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _subjectModes = new(StringComparer.Ordinal);
    private readonly SchemaLogTail? _tail;
    private JsonObject? _globalConfig;
    private string? _globalMode;
    private int _maxId;

    /// <summary>How long a write waits for the log it decides on (and its own records) to be committed and applied.</summary>
    internal static readonly TimeSpan CatchUpTimeout = TimeSpan.FromSeconds(10);

    private SchemaStore(ICoordinatorLog log, CompatibilityLevel defaultCompatibility, IEnumerable<ISchemaProvider>? providers, Action<CoordinatorLogLevel, string> report,
        TimeProvider time, SchemaLogSource? follow = null)
    {
        DefaultCompatibility = defaultCompatibility;
        _providers = (providers ?? DefaultProviders()).ToDictionary(p => p.SchemaType, StringComparer.Ordinal);
        _runtime = new CoordinatorRuntime<SchemaShard>("schema registry", _ => follow is null ? log : new AppendOnlyLog(log), context => new SchemaShard(this, context), time, report);
        if (follow is not null)
            _tail = new SchemaLogTail(follow, ApplyLogRecord, ResetState, (level, message) => report(level, "schema registry: " + message), time);
    }

    /// <summary>
    /// Replays <paramref name="log"/> on the coordination runtime and returns the store once it is loaded.
    /// </summary>
    /// <param name="report">The runtime's messages (load summary, skipped records, append failures); the broker logs them.</param>
    /// <param name="time">Stamps the records appended; the system clock when null.</param>
    /// <exception cref="InvalidOperationException">The log could not be replayed; no store serves partial state.</exception>
    public static async Task<SchemaStore> OpenAsync(ICoordinatorLog log, CompatibilityLevel defaultCompatibility = CompatibilityLevel.Backward,
        IEnumerable<ISchemaProvider>? providers = null, Action<CoordinatorLogLevel, string>? report = null, TimeProvider? time = null)
    {
        // The runtime reports why a load failed and then completes it: the last error it reported is the cause.
        string? lastError = null;
        var store = new SchemaStore(log, defaultCompatibility, providers, (level, message) =>
        {
            if (level == CoordinatorLogLevel.Error) lastError = message;
            report?.Invoke(level, message);
        }, time ?? TimeProvider.System);
        var status = await store._runtime.Load(Partition).ConfigureAwait(false);
        if (status == ShardStatus.Loaded) return store;
        await store._runtime.DisposeAsync().ConfigureAwait(false);
        throw new InvalidOperationException($"The schema registry could not load its log (_schemas partition {Partition}): {lastError ?? status.ToString()}");
    }

    /// <summary>Stops the writer (later writes fail with 50001) and the tail; reads still answer from the state as it was.</summary>
    public async ValueTask DisposeAsync()
    {
        await _runtime.DisposeAsync().ConfigureAwait(false);
        if (_tail is not null) await _tail.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Records replay skipped because they are not in Confluent's layouts (the runtime's and the tail's count).</summary>
    public long SkippedRecords => _runtime.SkippedRecordCount + (_tail?.SkippedRecords ?? 0);

    /// <summary>
    /// The registry's state machine on the runtime. The state itself stays in the store, where reads find it; the shard
    /// replays into it and gives writes its context to append with.
    /// </summary>
    private sealed class SchemaShard(SchemaStore store, CoordinatorContext context) : ICoordinatorShard
    {
        public CoordinatorContext Context => context;

        /// <summary>
        /// Decodes and applies one record. Throwing (<see cref="SchemaLogFormatException"/>: not in Confluent's layouts)
        /// makes the runtime skip, report and count it, as Kafka's coordinators skip what they cannot read: one bad
        /// record must not keep the registry (and the broker) from starting.
        /// </summary>
        public void Replay(CoordinatorRecord record) => store.ApplyLogRecord(record);

        public void OnLoaded()
        {
        }

        public void OnUnloaded()
        {
        }
    }

    public CompatibilityLevel DefaultCompatibility { get; }

    /// <summary>Raised after a schema id gains or loses content; the HTTP layer drops cached responses.</summary>
    public event Action<int>? IdChanged;

    public static IEnumerable<ISchemaProvider> DefaultProviders() =>
        [new Avro.AvroSchemaProvider(), new Json.JsonSchemaProvider(), new Protobuf.ProtobufSchemaProvider()];

    public IReadOnlyCollection<string> SchemaTypeNames => _providers.Keys.ToList();

    // ---------------------------------------------------------------- reads

    public List<string> Subjects(bool deleted, bool deletedOnly = false, string? prefix = null)
    {
        lock (_sync)
        {
            return _subjects
                .Where(s => prefix is null || s.Key.StartsWith(prefix, StringComparison.Ordinal))
                .Where(s => deletedOnly ? s.Value.Values.All(v => v.Deleted) : deleted || s.Value.Values.Any(v => !v.Deleted))
                .Select(s => s.Key).Order(StringComparer.Ordinal).ToList();
        }
    }

    public List<int> Versions(string subject, bool deleted, bool deletedOnly = false)
    {
        lock (_sync)
        {
            var versions = LiveVersions(subject, deleted || deletedOnly);
            return versions.Where(v => !deletedOnly || v.Deleted).Select(v => v.Version).ToList();
        }
    }

    public bool IsDeleted(string subject, int version)
    {
        lock (_sync) return _subjects.TryGetValue(subject, out var versions) && versions.TryGetValue(version, out var v) && v.Deleted;
    }

    /// <summary>A version by number, or "latest" / -1 for the newest one.</summary>
    public SubjectVersion GetVersion(string subject, string version, bool deleted = false)
    {
        lock (_sync)
        {
            var versions = LiveVersions(subject, deleted);
            if (IsLatest(version))
                return versions.LastOrDefault(v => !v.Deleted) ?? versions.LastOrDefault() ?? throw RegistryException.VersionNotFound(subject, -1);
            var number = ParseVersion(version);
            return versions.FirstOrDefault(v => v.Version == number) ?? throw RegistryException.VersionNotFound(subject, number);
        }
    }

    /// <summary>The highest id ever assigned.</summary>
    public int MaxId
    {
        get
        {
            lock (_sync) return _maxId;
        }
    }

    public SchemaContent GetById(int id)
    {
        lock (_sync) return _byId.TryGetValue(id, out var c) ? c : throw RegistryException.SchemaIdNotFound(id);
    }

    public bool TryGetById(int id, out SchemaContent content)
    {
        lock (_sync) return _byId.TryGetValue(id, out content!);
    }

    public List<SubjectVersion> VersionsOfId(int id, bool deleted, string? subject = null)
    {
        lock (_sync)
        {
            if (!_byId.ContainsKey(id)) throw RegistryException.SchemaIdNotFound(id);
            return _subjects.Where(s => subject is null || s.Key == subject).SelectMany(s => s.Value.Values)
                .Where(v => v.Id == id && (deleted || !v.Deleted))
                .OrderBy(v => v.Subject, StringComparer.Ordinal).ThenBy(v => v.Version).ToList();
        }
    }

    /// <summary>
    /// The schema text in a format Confluent names: <c>serialized</c> gives a PROTOBUF schema as its base64 descriptor;
    /// any other format (or none) the stored text, as Confluent answers formats it does not know.
    /// </summary>
    public string Formatted(int id, SchemaContent content, string? format) =>
        format == "serialized" && content.SchemaType == SchemaTypes.Protobuf && ParsedOf(id, content) is Protobuf.ProtobufParsedSchema proto
            ? proto.Serialized
            : content.Schema;

    /// <summary>Ids of the schemas whose references name this subject version.</summary>
    /// <remarks>The version itself may be soft-deleted; soft-deleted referrers count only when <paramref name="deleted"/>.</remarks>
    public List<int> ReferencedBy(string subject, string version, bool deleted)
    {
        var target = GetVersion(subject, version, deleted: true);
        lock (_sync)
        {
            return _subjects.Values.SelectMany(s => s.Values)
                .Where(v => (deleted || !v.Deleted) && v.Content.References.Any(r => r.Subject == target.Subject && r.Version == target.Version))
                .Select(v => v.Id).Distinct().Order().ToList();
        }
    }

    /// <summary>Whether a subject has a version (not deleted) with this schema id; for broker-side validation.</summary>
    public bool SubjectHasId(string subject, int id)
    {
        lock (_sync) return _subjects.TryGetValue(subject, out var vs) && vs.Values.Any(v => v.Id == id && !v.Deleted);
    }

    public SubjectVersion Lookup(string subject, SchemaRequest request, bool normalize, bool deleted)
    {
        List<SubjectVersion> versions;
        lock (_sync) versions = LiveVersions(subject, deleted);
        if (versions.Count == 0) throw RegistryException.SubjectNotFound(subject);
        var parsed = Parse(request);
        var text = normalize ? parsed.Normalized : parsed.Canonical;
        foreach (var v in versions.AsEnumerable().Reverse())
        {
            if (v.Content.SchemaType != parsed.SchemaType || !v.Content.References.SequenceEqual(request.References)) continue;
            if (v.Content.Schema == text || v.Content.Schema == request.Schema) return v;
            if (ParsedOf(v.Id, v.Content) is { } existing && (normalize ? existing.Normalized == parsed.Normalized : existing.Identity == parsed.Identity)) return v;
        }
        throw RegistryException.SchemaNotFound();
    }

    public JsonObject? SubjectConfig(string subject)
    {
        lock (_sync) return _subjectConfigs.TryGetValue(subject, out var c) ? (JsonObject)c.DeepClone() : null;
    }

    public JsonObject GlobalConfig()
    {
        lock (_sync) return _globalConfig is null ? new JsonObject { ["compatibilityLevel"] = CompatibilityLevels.ToName(DefaultCompatibility) } : (JsonObject)_globalConfig.DeepClone();
    }

    public CompatibilityLevel EffectiveCompatibility(string subject)
    {
        var config = SubjectConfig(subject) ?? GlobalConfig();
        return CompatibilityLevels.TryParse((string?)config["compatibilityLevel"], out var level) ? level : DefaultCompatibility;
    }

    private bool EffectiveNormalize(string subject)
    {
        var config = SubjectConfig(subject) ?? GlobalConfig();
        return config["normalize"] is JsonValue v && v.TryGetValue<bool>(out var b) && b;
    }

    public string? SubjectMode(string subject)
    {
        lock (_sync) return _subjectModes.GetValueOrDefault(subject);
    }

    public string GlobalMode()
    {
        lock (_sync) return _globalMode ?? Modes.ReadWrite;
    }

    public string EffectiveMode(string subject) => SubjectMode(subject) ?? GlobalMode();

    // ---------------------------------------------------------------- writes

    /// <summary>Registers a schema under a subject; returns the existing version when an equal schema is already there.</summary>
    public Task<SubjectVersion> RegisterAsync(string subject, SchemaRequest request, bool normalize, CancellationToken ct = default) =>
        WriteAsync(async shard =>
        {
            var mode = EffectiveMode(subject);
            if (mode is Modes.ReadOnly or Modes.ReadOnlyOverride) throw RegistryException.ReadOnly(subject);
            // An explicit id is an import; an import carries its id (Confluent's checkRegisterMode).
            if (request.Id is not null && mode != Modes.Import)
                throw RegistryException.NotPermitted($"Subject {subject} in context . is not in import mode");
            if (request.Id is null && mode != Modes.ReadWrite)
                throw RegistryException.NotPermitted($"Subject {subject} in context . is not in read-write mode");
            normalize |= EffectiveNormalize(subject);
            var parsed = Parse(request);
            var text = normalize ? parsed.Normalized : parsed.Canonical;
            List<SubjectVersion> all;
            lock (_sync) all = LiveVersions(subject, includeDeleted: true);
            var live = all.Where(v => !v.Deleted).ToList();
            foreach (var v in live.AsEnumerable().Reverse())
            {
                if (v.Content.SchemaType != parsed.SchemaType || !v.Content.References.SequenceEqual(request.References)) continue;
                if (request.Metadata is not null && !JsonNode.DeepEquals(request.Metadata, v.Content.Metadata)) continue;
                if (request.RuleSet is not null && !JsonNode.DeepEquals(request.RuleSet, v.Content.RuleSet)) continue;
                var same = v.Content.Schema == text || v.Content.Schema == request.Schema
                    || (ParsedOf(v.Id, v.Content) is { } existing && (normalize ? existing.Normalized == parsed.Normalized : existing.Identity == parsed.Identity));
                if (!same) continue;
                if (request.Id is { } wanted && wanted != v.Id)
                    throw RegistryException.IdDoesNotMatch(v.Id, wanted);
                return v;
            }
            if (mode != Modes.Import)
            {
                var level = EffectiveCompatibility(subject);
                var issues = CheckAgainst(parsed, live, level, transitiveOverride: null, ct);
                if (issues.Count > 0)
                    throw RegistryException.Incompatible(
                        $"Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{string.Join(", ", issues)}]");
            }
            var content = new SchemaContent(parsed.SchemaType, text, request.References.ToList(), request.Metadata?.DeepClone(), request.RuleSet?.DeepClone());
            // Outside the lock (it may parse every stored schema once); only this loop changes the state meanwhile.
            var sameSchema = request.Id is null ? SameSchemaId(content, parsed) : null;
            int id;
            lock (_sync)
            {
                if (request.Id is { } given)
                {
                    if (_byId.TryGetValue(given, out var existingContent) && ContentKey(existingContent) != ContentKey(content))
                        throw RegistryException.NotPermitted($"Overwrite new schema with id {given} in context . is not permitted.");
                    id = given;
                }
                else
                {
                    id = _idByContent.TryGetValue(ContentKey(content), out var reuse) ? reuse : sameSchema ?? _maxId + 1;
                }
            }
            var version = request.Version ?? (all.Count == 0 ? 1 : all[^1].Version + 1);
            if (request.Version is { } rv && all.Any(v => v.Version == rv))
                throw RegistryException.NotPermitted($"Version {rv} already exists in subject {subject}");
            var registered = new SubjectVersion(subject, version, id, content, false);
            await AppendAndApplyAsync(shard, [(SchemaLogRecords.SchemaKey(subject, version), SchemaLogRecords.SchemaValue(registered))]).ConfigureAwait(false);
            // Only once the id stands for this content: a failed append must not leave a parse under an unused id.
            _parsed.TryAdd(id, parsed);
            return registered;
        }, ct);

    /// <summary>Soft (or, after a soft delete, permanent) deletion of all versions; returns the version numbers deleted.</summary>
    public Task<List<int>> DeleteSubjectAsync(string subject, bool permanent, CancellationToken ct = default) =>
        WriteAsync(async shard =>
        {
            CheckWritable(subject);
            List<SubjectVersion> all;
            lock (_sync) all = LiveVersions(subject, includeDeleted: true);
            if (all.Count == 0) throw RegistryException.SubjectNotFound(subject);
            var live = all.Where(v => !v.Deleted).ToList();
            if (permanent)
            {
                if (live.Count > 0) throw RegistryException.SubjectNotSoftDeleted(subject);
                foreach (var v in all) CheckNotReferenced(v);
                List<(byte[] Key, byte[]? Value)> records = [MaxIdRecord()];
                records.AddRange(all.Select(v => (SchemaLogRecords.SchemaKey(subject, v.Version), (byte[]?)null)));
                if (SubjectConfig(subject) is not null) records.Add((SchemaLogRecords.ConfigKey(subject), null));
                if (SubjectMode(subject) is not null) records.Add((SchemaLogRecords.ModeKey(subject), null));
                await AppendAndApplyAsync(shard, records).ConfigureAwait(false);
                return all.Select(v => v.Version).ToList();
            }
            if (live.Count == 0) throw RegistryException.SubjectSoftDeleted(subject);
            foreach (var v in live) CheckNotReferenced(v);
            await AppendAndApplyAsync(shard, [.. live.Select(v => (SchemaLogRecords.SchemaKey(subject, v.Version), (byte[]?)SchemaLogRecords.SchemaValue(v with { Deleted = true })))])
                .ConfigureAwait(false);
            return live.Select(v => v.Version).ToList();
        }, ct);

    public Task<int> DeleteVersionAsync(string subject, string version, bool permanent, CancellationToken ct = default) =>
        WriteAsync(async shard =>
        {
            CheckWritable(subject);
            List<SubjectVersion> all;
            lock (_sync) all = LiveVersions(subject, includeDeleted: true);
            if (all.Count == 0) throw RegistryException.SubjectNotFound(subject);
            SubjectVersion target;
            if (IsLatest(version))
            {
                target = all.LastOrDefault(v => !v.Deleted) ?? (permanent ? all[^1] : throw RegistryException.VersionNotFound(subject, -1));
            }
            else
            {
                var number = ParseVersion(version);
                target = all.FirstOrDefault(v => v.Version == number) ?? throw RegistryException.VersionNotFound(subject, number);
            }
            CheckNotReferenced(target);
            if (permanent)
            {
                if (!target.Deleted) throw RegistryException.VersionNotSoftDeleted(subject, target.Version);
                await AppendAndApplyAsync(shard, [MaxIdRecord(), (SchemaLogRecords.SchemaKey(subject, target.Version), null)]).ConfigureAwait(false);
            }
            else
            {
                if (target.Deleted) throw RegistryException.VersionSoftDeleted(subject, target.Version);
                await AppendAndApplyAsync(shard, [(SchemaLogRecords.SchemaKey(subject, target.Version), SchemaLogRecords.SchemaValue(target with { Deleted = true }))]).ConfigureAwait(false);
            }
            return target.Version;
        }, ct);

    /// <summary>Sets (value) or removes (null) the global (subject null) or a subject's config; returns the previous one.</summary>
    public Task<JsonObject?> SetConfigAsync(string? subject, JsonObject? config, CancellationToken ct = default) =>
        WriteAsync(async shard =>
        {
            var previous = subject is null ? GlobalConfig() : SubjectConfig(subject);
            await AppendAndApplyAsync(shard, [(SchemaLogRecords.ConfigKey(subject), config is null ? null : SchemaLogRecords.Serialize(config))]).ConfigureAwait(false);
            return previous;
        }, ct);

    public Task<string?> SetModeAsync(string? subject, string? mode, bool force, CancellationToken ct = default) =>
        WriteAsync(async shard =>
        {
            if (mode == Modes.Import && !force)
            {
                var hasSchemas = subject is null ? Subjects(deleted: false).Count > 0 : Versions(subject, deleted: false).Count > 0;
                if (hasSchemas)
                    throw RegistryException.NotPermitted("Cannot import since found existing subjects");
            }
            var previous = subject is null ? GlobalMode() : SubjectMode(subject);
            await AppendAndApplyAsync(shard, [(SchemaLogRecords.ModeKey(subject), mode is null ? null : SchemaLogRecords.Serialize(new JsonObject { ["mode"] = mode }))]).ConfigureAwait(false);
            return previous;
        }, ct);

    /// <summary>
    /// Runs a change alone on the shard's loop, to its end: the checks it makes against the state hold until it has
    /// appended and applied. A cancellation that comes before the change starts skips it; one that comes later stops
    /// only a compatibility check, which comes before anything is appended. The shard unavailable (the store disposed): 50001, Confluent's error for its backend store.
    /// </summary>
    private async Task<T> WriteAsync<T>(Func<SchemaShard, Task<T>> write, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var (ran, result) = await _runtime.RunExclusiveAsync<(bool, T)>(Partition, async shard =>
        {
            ct.ThrowIfCancellationRequested();
            // Following a replica: decide on the whole local log, records a former leader left uncommitted included.
            await CatchUpWithLocalLogAsync().ConfigureAwait(false);
            return (true, await write(shard).ConfigureAwait(false));
        }, _ => (false, default!)).ConfigureAwait(false);
        if (!ran)
            throw RegistryException.Store($"the registry's log (_schemas partition {Partition}) is {_runtime.StatusOf(Partition)}, so it takes no writes");
        return result;
    }

    // ---------------------------------------------------------------- compatibility

    /// <summary>
    /// Checks a candidate against a subject: one version (<paramref name="version"/>) or, when null, the versions
    /// the subject's level covers (the latest, or all for a transitive level). Returns the reasons it is incompatible.
    /// As Confluent: soft-deleted versions are not checked against; "latest" of a subject without versions is
    /// compatible; a numbered version that does not exist is 40402, even when the subject does not exist.
    /// </summary>
    public IReadOnlyList<string> TestCompatibility(string subject, SchemaRequest request, string? version, bool normalize, CancellationToken ct = default)
    {
        List<SubjectVersion> live;
        lock (_sync) live = LiveVersions(subject, includeDeleted: false);
        List<SubjectVersion> against = live;
        if (version is not null && IsLatest(version))
        {
            against = live.Count == 0 ? [] : [live[^1]];
        }
        else if (version is not null)
        {
            var number = ParseVersion(version);
            against = [live.FirstOrDefault(v => v.Version == number) ?? throw RegistryException.VersionNotFound(subject, number)];
        }
        var parsed = Parse(request);
        var level = EffectiveCompatibility(subject);
        return CheckAgainst(parsed, against, level, transitiveOverride: version is null ? null : true, ct);
    }

    /// <summary>A client that has gone (<paramref name="ct"/>) stops the check: a hostile schema cannot hold a core after it.</summary>
    private List<string> CheckAgainst(ParsedSchema candidate, List<SubjectVersion> previous, CompatibilityLevel level, bool? transitiveOverride, CancellationToken ct)
    {
        var issues = new List<string>();
        if (level == CompatibilityLevel.None || previous.Count == 0) return issues;
        var transitive = transitiveOverride ?? CompatibilityLevels.IsTransitive(level);
        var targets = transitive ? previous.AsEnumerable().Reverse().ToList() : [previous[^1]];
        foreach (var old in targets)
        {
            ct.ThrowIfCancellationRequested();
            var oldParsed = ParsedOf(old.Id, old.Content);
            if (oldParsed is null || oldParsed.SchemaType != candidate.SchemaType)
            {
                issues.Add($"{{errorType:'TYPE_MISMATCH', description:'The schema type changed from {old.Content.SchemaType} to {candidate.SchemaType}'}}");
                continue;
            }
            var found = new List<string>();
            if (CompatibilityLevels.ChecksBackward(level))
                found.AddRange(candidate.ReaderIssues(oldParsed, ct).Select(i => "BACKWARD: " + i));
            if (CompatibilityLevels.ChecksForward(level))
                found.AddRange(oldParsed.ReaderIssues(candidate, ct).Select(i => "FORWARD: " + i));
            if (found.Count == 0) continue;
            issues.AddRange(found);
            issues.Add($"{{oldSchemaVersion: {old.Version}}}");
            issues.Add($"{{oldSchema: '{old.Content.Schema}'}}");
            issues.Add($"{{compatibility: '{CompatibilityLevels.ToName(level)}'}}");
        }
        return issues;
    }

    // ---------------------------------------------------------------- helpers

    public ParsedSchema Parse(SchemaRequest request)
    {
        if (!_providers.TryGetValue(request.SchemaType, out var provider))
            throw RegistryException.InvalidSchemaType(request.SchemaType);
        var resolved = new List<KeyValuePair<string, string>>();
        var seen = new HashSet<(string, int)>();
        ResolveReferences(request.Schema, request.References, resolved, seen, 1);
        return provider.Parse(request.Schema, resolved);
    }

    /// <summary>
    /// Depth-first, dependencies before dependents, each subject version once. References to "latest" can make a
    /// chain longer after registration, so its depth is bounded here.
    /// </summary>
    private void ResolveReferences(string schema, IReadOnlyList<SchemaReference> references, List<KeyValuePair<string, string>> resolved, HashSet<(string, int)> seen, int depth)
    {
        if (references.Count > 0) SchemaNesting.Check(depth);
        foreach (var reference in references)
        {
            SubjectVersion target;
            try
            {
                target = GetVersion(reference.Subject, reference.Version == -1 ? "latest" : reference.Version.ToString(System.Globalization.CultureInfo.InvariantCulture), deleted: true);
            }
            catch (RegistryException)
            {
                throw RegistryException.InvalidSchema($"{schema}, details: No schema reference found for subject \"{reference.Subject}\" and version {reference.Version}");
            }
            if (!seen.Add((target.Subject, target.Version))) continue;
            ResolveReferences(schema, target.Content.References, resolved, seen, depth + 1);
            resolved.Add(new(reference.Name, target.Content.Schema));
        }
    }

    private ParsedSchema? ParsedOf(int id, SchemaContent content)
    {
        if (_parsed.TryGetValue(id, out var p)) return p;
        try
        {
            p = Parse(new SchemaRequest(content.Schema, content.SchemaType, content.References, null, null));
        }
        catch (RegistryException)
        {
            return null;
        }
        _parsed.TryAdd(id, p);
        return p;
    }

    private void CheckWritable(string subject)
    {
        if (EffectiveMode(subject) is Modes.ReadOnly or Modes.ReadOnlyOverride)
            throw RegistryException.ReadOnly(subject);
    }

    private void CheckNotReferenced(SubjectVersion v)
    {
        lock (_sync)
        {
            var referrers = _subjects.Values.SelectMany(s => s.Values)
                .Where(o => !o.Deleted && o.Content.References.Any(r => r.Subject == v.Subject && r.Version == v.Version)).ToList();
            if (referrers.Count > 0)
                throw RegistryException.ReferenceExists($"subject {v.Subject} version {v.Version} (referenced by ids {string.Join(", ", referrers.Select(r => r.Id).Distinct())})");
        }
    }

    private List<SubjectVersion> LiveVersions(string subject, bool includeDeleted) =>
        _subjects.TryGetValue(subject, out var versions) ? versions.Values.Where(v => includeDeleted || !v.Deleted).ToList() : [];

    private static bool IsLatest(string version) => version is "latest" or "-1";

    public static int ParseVersion(string version) =>
        int.TryParse(version, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) && n >= 1
            ? n
            : throw RegistryException.InvalidVersion(version);

    /// <summary>
    /// The id of a schema registered before (under any subject) that is the same schema spelled differently: same type,
    /// references, metadata and rule set, equal <see cref="ParsedSchema.Identity"/>. Confluent gives it the same id.
    /// Registrations are rare, so a scan; each stored schema is parsed once (cached), outside the lock.
    /// </summary>
    private int? SameSchemaId(SchemaContent content, ParsedSchema parsed)
    {
        List<KeyValuePair<int, SchemaContent>> stored;
        lock (_sync) stored = [.. _byId];
        foreach (var (id, existing) in stored)
        {
            if (existing.SchemaType != content.SchemaType || !existing.References.SequenceEqual(content.References)) continue;
            if (!JsonNode.DeepEquals(existing.Metadata, content.Metadata) || !JsonNode.DeepEquals(existing.RuleSet, content.RuleSet)) continue;
            if (ParsedOf(id, existing) is { } other && other.Identity == parsed.Identity) return id;
        }
        return null;
    }

    private static string ContentKey(SchemaContent c) =>
        string.Join('\n', c.SchemaType, c.Schema, JsonSerializer.Serialize(c.References), c.Metadata?.ToJsonString() ?? "", c.RuleSet?.ToJsonString() ?? "");

    /// <summary>
    /// Goes before schemas are tombstoned: the highest id ever assigned under the NOOP key (whose value Confluent
    /// ignores), so that once compaction drops the tombstoned values, replay still starts new ids above every old one.
    /// </summary>
    private (byte[] Key, byte[]? Value) MaxIdRecord()
    {
        int maxId;
        lock (_sync) maxId = _maxId;
        return (SchemaLogRecords.NoopKey(), SchemaLogRecords.Serialize(new JsonObject { ["tributaryMaxId"] = maxId }));
    }

    /// <summary>
    /// Appends the records as one batch and, once it is durable, applies them: all of a change or, if the append fails,
    /// none of it (50001).
    /// </summary>
    private async Task AppendAndApplyAsync(SchemaShard shard, IReadOnlyList<(byte[] Key, byte[]? Value)> records)
    {
        try
        {
            await shard.Context.AppendAsync(records).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException and not RegistryException)
        {
            throw RegistryException.Store(e.Message);
        }
        if (_tail is null)
        {
            foreach (var (key, value) in records) Apply(SchemaLogEntry.Decode(key, value));
            return;
        }
        // Committed (the append waited for the ISR): the tail applies it, as on every other broker.
        await CatchUpWithLocalLogAsync().ConfigureAwait(false);
    }

    /// <summary>Decodes and applies one record of <c>_schemas</c> (replay and the tail alike).</summary>
    private void ApplyLogRecord(CoordinatorRecord record)
    {
        if (record.Key is not { } key) throw new SchemaLogFormatException("a record without a key");
        Apply(SchemaLogEntry.Decode(key.ToArray(), record.Value?.ToArray()));
    }

    /// <summary>Applies one record of the log to the in-memory state (replay and live writes alike).</summary>
    private void Apply(SchemaLogEntry entry)
    {
        var changedIds = new List<int>();
        lock (_sync)
        {
            switch (entry)
            {
                case SchemaLogEntry.Schema(var subject, var version, var value):
                    {
                        var versions = _subjects.TryGetValue(subject, out var vs) ? vs : _subjects[subject] = new SortedDictionary<int, SubjectVersion>();
                        if (versions.TryGetValue(version, out var previous)) versions.Remove(version);
                        if (value is { } v)
                        {
                            versions[version] = v;
                            _maxId = Math.Max(_maxId, v.Id);
                            if (!_byId.ContainsKey(v.Id))
                            {
                                _byId[v.Id] = v.Content;
                                changedIds.Add(v.Id);
                            }
                            _idByContent.TryAdd(ContentKey(v.Content), v.Id);
                        }
                        if (previous is not null && value is null && !_subjects.Values.Any(s => s.Values.Any(o => o.Id == previous.Id)))
                        {
                            _byId.Remove(previous.Id);
                            _idByContent.Remove(ContentKey(previous.Content));
                            _parsed.TryRemove(previous.Id, out _);
                            changedIds.Add(previous.Id);
                        }
                        if (versions.Count == 0) _subjects.Remove(subject);
                        break;
                    }
                case SchemaLogEntry.Config(var subject, var value):
                    if (subject is null) _globalConfig = value;
                    else if (value is null) _subjectConfigs.Remove(subject);
                    else _subjectConfigs[subject] = value;
                    break;
                case SchemaLogEntry.Mode(var subject, var mode):
                    if (subject is null) _globalMode = mode;
                    else if (mode is null) _subjectModes.Remove(subject);
                    else _subjectModes[subject] = mode;
                    break;
                case SchemaLogEntry.DeleteSubject(var subject, var upTo):
                    {
                        if (_subjects.TryGetValue(subject, out var vs))
                            foreach (var v in vs.Values.Where(v => v.Version <= upTo).ToList())
                                vs[v.Version] = v with { Deleted = true };
                        break;
                    }
                case SchemaLogEntry.MaxId(var recordedMax):
                    _maxId = Math.Max(_maxId, recordedMax);
                    break;
                case SchemaLogEntry.ClearSubject(var subject):
                    if (_subjects.TryGetValue(subject, out var cleared))
                        foreach (var v in cleared.Values.Where(v => v.Deleted).ToList())
                            cleared.Remove(v.Version);
                    break;
            }
        }
        foreach (var id in changedIds) IdChanged?.Invoke(id);
    }
}
