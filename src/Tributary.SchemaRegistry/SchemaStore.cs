using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Tributary.SchemaRegistry.Storage;

namespace Tributary.SchemaRegistry;

/// <summary>
/// The registry's state: subjects and their versions, schema contents by global id, configs and modes.
/// <para>
/// Every change is first appended to the <see cref="ISchemaLog"/> and then applied by the same <see cref="Apply"/> that
/// replays the log at start, so the state after a restart is the state before it (ids and versions included).
/// Changes are serialized by one async gate; reads take a short lock over plain dictionaries.
/// </para>
/// <para>
/// Invariants: an id always stands for one content; equal content (type, schema text, references, metadata, rule set)
/// registered under several subjects shares one id; ids only grow (the next id is one more than the highest ever
/// seen in the log, even if that schema was later deleted), so an id is never reused.
/// </para>
/// </summary>
public sealed class SchemaStore
{
    private readonly ISchemaLog _log;
    private readonly IReadOnlyDictionary<string, ISchemaProvider> _providers;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly object _sync = new();
    private readonly Dictionary<string, SortedDictionary<int, SubjectVersion>> _subjects = new(StringComparer.Ordinal);
    private readonly Dictionary<int, SchemaContent> _byId = [];
    private readonly Dictionary<string, int> _idByContent = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<int, ParsedSchema> _parsed = new();
    private readonly Dictionary<string, JsonObject> _subjectConfigs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _subjectModes = new(StringComparer.Ordinal);
    private JsonObject? _globalConfig;
    private string? _globalMode;
    private int _maxId;

    /// <param name="report">Told about each record replay skips; the broker logs it.</param>
    public SchemaStore(ISchemaLog log, CompatibilityLevel defaultCompatibility = CompatibilityLevel.Backward, IEnumerable<ISchemaProvider>? providers = null, Action<string>? report = null)
    {
        _log = log;
        DefaultCompatibility = defaultCompatibility;
        _providers = (providers ?? DefaultProviders()).ToDictionary(p => p.SchemaType, StringComparer.Ordinal);
        Replay(report);
    }

    /// <summary>Records replay skipped because they are not in Confluent's layouts.</summary>
    public int SkippedRecords { get; private set; }

    /// <summary>
    /// Rebuilds the state from the log. A record that does not decode is skipped and reported, as Kafka's coordinators
    /// skip what they cannot read: one bad record must not keep the registry (and the broker) from starting.
    /// </summary>
    private void Replay(Action<string>? report)
    {
        var position = 0;
        foreach (var (key, value) in _log.ReadAll())
        {
            SchemaLogEntry entry;
            try
            {
                entry = SchemaLogEntry.Decode(key, value);
            }
            catch (SchemaLogFormatException e)
            {
                SkippedRecords++;
                report?.Invoke($"_schemas: skipped record {position} (key {Preview(key)}): {e.Message}");
                continue;
            }
            finally
            {
                position++;
            }
            Apply(entry);
        }
    }

    /// <summary>The start of a record key for a log line: bounded, control characters escaped.</summary>
    private static string Preview(byte[] bytes)
    {
        const int Shown = 120;
        var text = System.Text.Encoding.UTF8.GetString(bytes, 0, Math.Min(bytes.Length, Shown));
        var escaped = string.Concat(text.Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));
        return bytes.Length > Shown ? escaped + "…" : escaped;
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
            if (normalize && ParsedOf(v.Id, v.Content) is { } existing && existing.Normalized == parsed.Normalized) return v;
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
    public async Task<SubjectVersion> RegisterAsync(string subject, SchemaRequest request, bool normalize, CancellationToken ct = default)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
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
                    || (ParsedOf(v.Id, v.Content) is { } existing && (normalize ? existing.Normalized == parsed.Normalized : existing.Canonical == parsed.Canonical));
                if (!same) continue;
                if (request.Id is { } wanted && wanted != v.Id)
                    throw RegistryException.IdDoesNotMatch(v.Id, wanted);
                return v;
            }
            if (mode != Modes.Import)
            {
                var level = EffectiveCompatibility(subject);
                var issues = CheckAgainst(parsed, live, level, transitiveOverride: null);
                if (issues.Count > 0)
                    throw RegistryException.Incompatible(
                        $"Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{string.Join(", ", issues)}]");
            }
            var content = new SchemaContent(parsed.SchemaType, text, request.References.ToList(), request.Metadata?.DeepClone(), request.RuleSet?.DeepClone());
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
                    id = _idByContent.TryGetValue(ContentKey(content), out var reuse) ? reuse : _maxId + 1;
                }
            }
            var version = request.Version ?? (all.Count == 0 ? 1 : all[^1].Version + 1);
            if (request.Version is { } rv && all.Any(v => v.Version == rv))
                throw RegistryException.NotPermitted($"Version {rv} already exists in subject {subject}");
            var registered = new SubjectVersion(subject, version, id, content, false);
            _parsed.TryAdd(id, parsed);
            await WriteAsync(SchemaLogRecords.SchemaKey(subject, version), SchemaLogRecords.SchemaValue(registered), ct).ConfigureAwait(false);
            return registered;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Soft (or, after a soft delete, permanent) deletion of all versions; returns the version numbers deleted.</summary>
    public async Task<List<int>> DeleteSubjectAsync(string subject, bool permanent, CancellationToken ct = default)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
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
                await WriteMaxIdAsync(ct).ConfigureAwait(false);
                foreach (var v in all) await WriteAsync(SchemaLogRecords.SchemaKey(subject, v.Version), null, ct).ConfigureAwait(false);
                if (SubjectConfig(subject) is not null) await WriteAsync(SchemaLogRecords.ConfigKey(subject), null, ct).ConfigureAwait(false);
                if (SubjectMode(subject) is not null) await WriteAsync(SchemaLogRecords.ModeKey(subject), null, ct).ConfigureAwait(false);
                return all.Select(v => v.Version).ToList();
            }
            if (live.Count == 0) throw RegistryException.SubjectSoftDeleted(subject);
            foreach (var v in live) CheckNotReferenced(v);
            foreach (var v in live)
                await WriteAsync(SchemaLogRecords.SchemaKey(subject, v.Version), SchemaLogRecords.SchemaValue(v with { Deleted = true }), ct).ConfigureAwait(false);
            return live.Select(v => v.Version).ToList();
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task<int> DeleteVersionAsync(string subject, string version, bool permanent, CancellationToken ct = default)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
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
                await WriteMaxIdAsync(ct).ConfigureAwait(false);
                await WriteAsync(SchemaLogRecords.SchemaKey(subject, target.Version), null, ct).ConfigureAwait(false);
            }
            else
            {
                if (target.Deleted) throw RegistryException.VersionSoftDeleted(subject, target.Version);
                await WriteAsync(SchemaLogRecords.SchemaKey(subject, target.Version), SchemaLogRecords.SchemaValue(target with { Deleted = true }), ct).ConfigureAwait(false);
            }
            return target.Version;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Sets (value) or removes (null) the global (subject null) or a subject's config; returns the previous one.</summary>
    public async Task<JsonObject?> SetConfigAsync(string? subject, JsonObject? config, CancellationToken ct = default)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var previous = subject is null ? GlobalConfig() : SubjectConfig(subject);
            await WriteAsync(SchemaLogRecords.ConfigKey(subject), config is null ? null : SchemaLogRecords.Serialize(config), ct).ConfigureAwait(false);
            return previous;
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task<string?> SetModeAsync(string? subject, string? mode, bool force, CancellationToken ct = default)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (mode == Modes.Import && !force)
            {
                var hasSchemas = subject is null ? Subjects(deleted: false).Count > 0 : Versions(subject, deleted: false).Count > 0;
                if (hasSchemas)
                    throw RegistryException.NotPermitted("Cannot import since found existing subjects");
            }
            var previous = subject is null ? GlobalMode() : SubjectMode(subject);
            await WriteAsync(SchemaLogRecords.ModeKey(subject), mode is null ? null : SchemaLogRecords.Serialize(new JsonObject { ["mode"] = mode }), ct).ConfigureAwait(false);
            return previous;
        }
        finally
        {
            _gate.Release();
        }
    }

    // ---------------------------------------------------------------- compatibility

    /// <summary>
    /// Checks a candidate against a subject: one version (<paramref name="version"/>) or, when null, the versions
    /// the subject's level covers (the latest, or all for a transitive level). Returns the reasons it is incompatible.
    /// As Confluent: soft-deleted versions are not checked against; "latest" of a subject without versions is
    /// compatible; a numbered version that does not exist is 40402, even when the subject does not exist.
    /// </summary>
    public IReadOnlyList<string> TestCompatibility(string subject, SchemaRequest request, string? version, bool normalize)
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
        return CheckAgainst(parsed, against, level, transitiveOverride: version is null ? null : true);
    }

    private List<string> CheckAgainst(ParsedSchema candidate, List<SubjectVersion> previous, CompatibilityLevel level, bool? transitiveOverride)
    {
        var issues = new List<string>();
        if (level == CompatibilityLevel.None || previous.Count == 0) return issues;
        var transitive = transitiveOverride ?? CompatibilityLevels.IsTransitive(level);
        var targets = transitive ? previous.AsEnumerable().Reverse().ToList() : [previous[^1]];
        foreach (var old in targets)
        {
            var oldParsed = ParsedOf(old.Id, old.Content);
            if (oldParsed is null || oldParsed.SchemaType != candidate.SchemaType)
            {
                issues.Add($"{{errorType:'TYPE_MISMATCH', description:'The schema type changed from {old.Content.SchemaType} to {candidate.SchemaType}'}}");
                continue;
            }
            var found = new List<string>();
            if (CompatibilityLevels.ChecksBackward(level))
                found.AddRange(candidate.ReaderIssues(oldParsed).Select(i => "BACKWARD: " + i));
            if (CompatibilityLevels.ChecksForward(level))
                found.AddRange(oldParsed.ReaderIssues(candidate).Select(i => "FORWARD: " + i));
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

    private static string ContentKey(SchemaContent c) =>
        string.Join('\n', c.SchemaType, c.Schema, JsonSerializer.Serialize(c.References), c.Metadata?.ToJsonString() ?? "", c.RuleSet?.ToJsonString() ?? "");

    /// <summary>
    /// Before schemas are tombstoned, records the highest id ever assigned under the NOOP key (whose value Confluent
    /// ignores): once compaction drops the tombstoned values, replay still starts new ids above every old one.
    /// </summary>
    private Task WriteMaxIdAsync(CancellationToken ct)
    {
        int maxId;
        lock (_sync) maxId = _maxId;
        return WriteAsync(SchemaLogRecords.NoopKey(), SchemaLogRecords.Serialize(new JsonObject { ["tributaryMaxId"] = maxId }), ct);
    }

    private async Task WriteAsync(byte[] key, byte[]? value, CancellationToken ct)
    {
        try
        {
            await _log.AppendAsync(key, value, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException and not RegistryException)
        {
            throw RegistryException.Store(e.Message);
        }
        Apply(SchemaLogEntry.Decode(key, value));
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
