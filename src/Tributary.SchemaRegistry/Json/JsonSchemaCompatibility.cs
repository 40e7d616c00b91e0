using System.Text.Json;
using System.Text.Json.Nodes;

namespace Tributary.SchemaRegistry.Json;

/// <summary>
/// Confluent's JSON Schema compatibility rules, as a comparison of the writer's schema (what data may look like)
/// with the reader's (what it accepts). A change is incompatible when the reader may reject data the writer allows:
/// <list type="bullet">
/// <item>types narrowed (integer widens to number);</item>
/// <item>a property added that an open writer content model may already have carried with another shape
/// (PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL); a property removed from a closed reader model
/// (PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL); additionalProperties turned off;</item>
/// <item>a required property added; enum values removed; const changed;</item>
/// <item>bounds tightened: maxLength/minLength, maximum/minimum (and exclusive), multipleOf, maxItems/minItems,
/// maxProperties/minProperties, uniqueItems, pattern;</item>
/// <item>combined schemas (oneOf/anyOf): every writer branch needs a reader branch that accepts it;
/// allOf: every reader part must accept the writer.</item>
/// </list>
/// <c>$ref</c> resolves within the document (#/definitions, #/$defs) and to referenced schemas by name; a pair of
/// nodes under comparison is assumed compatible when met again (recursive schemas).
/// Cost is bounded: the outcome of each trial ("does this reader branch accept that writer branch?") is remembered for
/// the whole check, so oneOf/anyOf over self-referencing definitions costs a number of comparisons polynomial in the
/// branches, not exponential (it took 8.7 s at 7 alternatives); and a check that still passes
/// <see cref="MaxComparisons"/> stops with a clear error (50002) rather than hold a core.
/// </summary>
internal sealed class JsonSchemaCompatibility
{
    private readonly JsonParsedSchema _reader;
    private readonly JsonParsedSchema _writer;
    private readonly List<string> _issues = [];
    private readonly HashSet<(JsonNode?, JsonNode?)> _visiting = new(new PairComparer());

    /// <summary>Comparisons one check may make before it gives up: far above any real schema pair.</summary>
    internal const long MaxComparisons = 2_000_000;

    /// <summary>Nested <see cref="Compare"/> calls, trials included: <c>$ref</c> chains make this deeper than the text.</summary>
    private int _depth;

    /// <summary>Shared by a check and all its trials: remembered trial outcomes and the work done.</summary>
    private readonly CheckState _state;

    private sealed class CheckState
    {
        public readonly Dictionary<(JsonNode?, JsonNode?), bool> Accepted = new(new PairComparer());
        public long Comparisons;
        public long Limit = MaxComparisons;
        public CancellationToken Cancellation;
    }

    private JsonSchemaCompatibility(JsonParsedSchema reader, JsonParsedSchema writer, CheckState state)
    {
        _reader = reader;
        _writer = writer;
        _state = state;
    }

    /// <exception cref="OperationCanceledException">When <paramref name="cancellation"/> fires: its client has gone.</exception>
    public static IReadOnlyList<string> Check(JsonParsedSchema reader, JsonParsedSchema writer, CancellationToken cancellation = default) =>
        Check(reader, writer, out _, cancellation: cancellation);

    /// <param name="comparisons">How many node pairs were compared (what the bound counts).</param>
    /// <param name="limit">The bound (tests lower it).</param>
    internal static IReadOnlyList<string> Check(JsonParsedSchema reader, JsonParsedSchema writer, out long comparisons, long limit = MaxComparisons,
        CancellationToken cancellation = default)
    {
        var state = new CheckState { Limit = limit, Cancellation = cancellation };
        var c = new JsonSchemaCompatibility(reader, writer, state);
        c.Compare(writer.Root, reader.Root, "#");
        comparisons = state.Comparisons;
        return c._issues;
    }

    private bool Accepts(JsonNode? writer, JsonNode? reader)
    {
        if (_state.Accepted.TryGetValue((writer, reader), out var known)) return known;
        var c = new JsonSchemaCompatibility(_reader, _writer, _state) { _depth = _depth };
        foreach (var pair in _visiting) c._visiting.Add(pair);
        c.Compare(writer, reader, "#");
        var accepted = c._issues.Count == 0;
        _state.Accepted[(writer, reader)] = accepted;
        return accepted;
    }

    private void Add(string type, string path, string detail) =>
        _issues.Add($"{{errorType:'{type}', description:'{detail} at path '{path}''}}");

    private JsonNode? Resolve(JsonNode? node, JsonParsedSchema doc)
    {
        for (var depth = 0; depth < 32 && node is JsonObject o && o["$ref"] is JsonValue rv && rv.TryGetValue<string>(out var reference); depth++)
        {
            JsonNode? target = null;
            if (reference.StartsWith("#/", StringComparison.Ordinal)) target = Pointer(doc.Root, reference[2..]);
            else if (reference == "#") target = doc.Root;
            else
            {
                var hash = reference.IndexOf('#');
                var name = hash >= 0 ? reference[..hash] : reference;
                if (doc.References.TryGetValue(name, out var referenced) || _reader.References.TryGetValue(name, out referenced) || _writer.References.TryGetValue(name, out referenced))
                    target = hash >= 0 && reference.Length > hash + 2 ? Pointer(referenced, reference[(hash + 2)..]) : referenced;
            }
            if (target is null) return node;
            node = target;
        }
        return node;
    }

    private static JsonNode? Pointer(JsonNode? root, string pointer)
    {
        foreach (var raw in pointer.Split('/'))
        {
            var part = raw.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal);
            root = root switch
            {
                JsonObject o => o[part],
                JsonArray a when int.TryParse(part, out var i) && i < a.Count => a[i],
                _ => null,
            };
        }
        return root;
    }

    private static bool IsFalse(JsonNode? n) => n?.GetValueKind() == JsonValueKind.False;

    private static bool IsOpenEverything(JsonNode? n) => n is null || n.GetValueKind() == JsonValueKind.True || n is JsonObject { Count: 0 };

    /// <exception cref="RegistryException">42201 when the comparison nests deeper than <see cref="SchemaNesting.MaxDepth"/>.</exception>
    private void Compare(JsonNode? writer, JsonNode? reader, string path)
    {
        if (++_state.Comparisons > _state.Limit)
            throw RegistryException.CheckTooLarge($"the compatibility check compared more than {_state.Limit:N0} pairs of subschemas");
        if ((_state.Comparisons & 1023) == 0) _state.Cancellation.ThrowIfCancellationRequested();
        SchemaNesting.Check(++_depth);
        try
        {
            ComparePair(writer, reader, path);
        }
        finally
        {
            _depth--;
        }
    }

    private void ComparePair(JsonNode? writer, JsonNode? reader, string path)
    {
        writer = Resolve(writer, _writer);
        reader = Resolve(reader, _reader);
        if (IsOpenEverything(reader)) return;
        if (IsFalse(writer)) return;
        if (IsFalse(reader))
        {
            Add("TYPE_NARROWED", path, "The reader accepts nothing (false) where the writer allows values");
            return;
        }
        if (!_visiting.Add((writer, reader))) return;
        var w = writer as JsonObject ?? new JsonObject();
        var r = (JsonObject)reader!;

        if (Combined(w, r, path)) return;

        var wTypes = Types(w);
        var rTypes = Types(r);
        if (rTypes is not null)
        {
            var missing = (wTypes ?? ["null", "boolean", "object", "array", "number", "string"])
                .Where(t => !rTypes.Contains(t) && !(t == "integer" && rTypes.Contains("number"))).ToList();
            if (missing.Count > 0)
            {
                Add("TYPE_NARROWED", path, $"The reader's type [{string.Join(", ", rTypes)}] does not accept the writer's [{string.Join(", ", missing)}]");
                return;
            }
        }

        // enum and const
        if (r["enum"] is JsonArray re)
        {
            if (w["enum"] is not JsonArray we) Add("ENUM_ARRAY_NARROWED", path, "An enum was added to the reader");
            else if (we.Any(x => !re.Any(y => JsonNode.DeepEquals(x, y)))) Add("ENUM_ARRAY_NARROWED", path, "Enum values were removed");
        }
        if (r.ContainsKey("const") && !(w.ContainsKey("const") && JsonNode.DeepEquals(w["const"], r["const"])))
            Add("CONST_CHANGED", path, "The reader requires a const value the writer does not guarantee");

        // bounds: the reader may not be stricter
        UpperBound(w, r, "maxLength", path, "MAX_LENGTH");
        LowerBound(w, r, "minLength", path, "MIN_LENGTH");
        UpperBound(w, r, "maximum", path, "MAXIMUM");
        LowerBound(w, r, "minimum", path, "MINIMUM");
        UpperBound(w, r, "exclusiveMaximum", path, "EXCLUSIVE_MAXIMUM");
        LowerBound(w, r, "exclusiveMinimum", path, "EXCLUSIVE_MINIMUM");
        UpperBound(w, r, "maxItems", path, "MAX_ITEMS");
        LowerBound(w, r, "minItems", path, "MIN_ITEMS");
        UpperBound(w, r, "maxProperties", path, "MAX_PROPERTIES");
        LowerBound(w, r, "minProperties", path, "MIN_PROPERTIES");
        if (Num(r, "multipleOf") is { } rm && !(Num(w, "multipleOf") is { } wm && wm % rm == 0))
            Add("MULTIPLE_OF_CHANGED", path, $"The reader requires multipleOf {rm}");
        if (r["pattern"] is { } rp && !(w["pattern"] is { } wp && JsonNode.DeepEquals(rp, wp)))
            Add("PATTERN_CHANGED", path, "The reader requires a pattern the writer does not");
        if (r["uniqueItems"]?.GetValueKind() == JsonValueKind.True && w["uniqueItems"]?.GetValueKind() != JsonValueKind.True)
            Add("UNIQUE_ITEMS_ADDED", path, "The reader requires unique items");

        CompareObject(w, r, path);
        CompareArray(w, r, path);
        _visiting.Remove((writer, reader));
    }

    /// <summary>oneOf/anyOf/allOf; true when the comparison was handled here.</summary>
    private bool Combined(JsonObject w, JsonObject r, string path)
    {
        var rAny = (r["oneOf"] ?? r["anyOf"]) as JsonArray;
        var wAny = (w["oneOf"] ?? w["anyOf"]) as JsonArray;
        if (wAny is not null)
        {
            for (var i = 0; i < wAny.Count; i++)
            {
                var branch = wAny[i];
                var ok = rAny is not null ? rAny.Any(rb => Accepts(branch, rb)) : Accepts(branch, WithoutCombiners(r));
                if (!ok) Add("COMBINED_TYPE_SUBSCHEMAS_CHANGED", path + "/" + (w.ContainsKey("oneOf") ? "oneOf" : "anyOf") + "/" + i, "No reader schema accepts this writer subschema");
            }
            return true;
        }
        if (rAny is not null)
        {
            if (!rAny.Any(rb => Accepts(w, rb))) Add("COMBINED_TYPE_SUBSCHEMAS_CHANGED", path, "No branch of the reader's oneOf/anyOf accepts the writer's schema");
            return true;
        }
        if (r["allOf"] is JsonArray rAll)
        {
            var wAll = w["allOf"] as JsonArray;
            for (var i = 0; i < rAll.Count; i++)
            {
                var ok = wAll is not null ? wAll.Any(wb => Accepts(wb, rAll[i])) || Accepts(w, rAll[i]) && !w.ContainsKey("allOf") : Accepts(w, rAll[i]);
                if (!ok) Add("COMBINED_TYPE_SUBSCHEMAS_CHANGED", path + "/allOf/" + i, "The writer's schema does not satisfy this reader allOf part");
            }
            return true;
        }
        if (w["allOf"] is JsonArray wOnlyAll)
        {
            // The writer's data satisfies every part; the reader is satisfied if any part (or the merge) is enough.
            var merged = new JsonObject();
            foreach (var part in wOnlyAll.OfType<JsonObject>())
                foreach (var (k, v) in part)
                    merged[k] = v?.DeepClone();
            Compare(merged, r, path);
            return true;
        }
        return false;
    }

    private static JsonObject WithoutCombiners(JsonObject o) =>
        new(o.Where(p => p.Key is not ("oneOf" or "anyOf")).Select(p => KeyValuePair.Create(p.Key, p.Value?.DeepClone())));

    private void CompareObject(JsonObject w, JsonObject r, string path)
    {
        var wProps = w["properties"] as JsonObject ?? [];
        var rProps = r["properties"] as JsonObject ?? [];
        var wAdditional = w["additionalProperties"];
        var rAdditional = r["additionalProperties"];
        foreach (var (name, wp) in wProps)
        {
            if (rProps.TryGetPropertyValue(name, out var rp)) Compare(wp, rp, $"{path}/properties/{name}");
            else if (IsFalse(rAdditional)) Add("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL", $"{path}/properties/{name}", $"Property '{name}' was removed from a closed content model");
            else if (rAdditional is JsonObject ra && !IsOpenEverything(ra) && !Accepts(wp, ra))
                Add("PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", $"{path}/properties/{name}", $"Property '{name}' was removed and the reader's additionalProperties does not accept it");
        }
        foreach (var (name, rp) in rProps)
        {
            if (wProps.ContainsKey(name)) continue;
            if (IsFalse(wAdditional)) continue;
            if (wAdditional is JsonObject wa && !IsOpenEverything(wa))
            {
                if (!Accepts(wa, rp)) Add("PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", $"{path}/properties/{name}", $"Property '{name}' was added and does not accept what the writer's additionalProperties allows");
            }
            else if (!IsOpenEverything(Resolve(rp, _reader)))
            {
                Add("PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", $"{path}/properties/{name}", $"Property '{name}' was added to an open content model, where the writer may already carry it with any value");
            }
        }
        if (IsFalse(rAdditional) && !IsFalse(wAdditional))
            Add("ADDITIONAL_PROPERTIES_REMOVED", path + "/additionalProperties", "additionalProperties was set to false in the reader");
        else if (rAdditional is JsonObject rao && !IsOpenEverything(rao) && !IsFalse(wAdditional))
            Compare(wAdditional is JsonObject wao ? wao : new JsonObject(), rao, path + "/additionalProperties");

        var wRequired = (w["required"] as JsonArray)?.Select(x => x?.ToString()).ToHashSet() ?? [];
        foreach (var req in (r["required"] as JsonArray)?.Select(x => x?.ToString()) ?? [])
            if (!wRequired.Contains(req))
                Add("REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL", $"{path}/required", $"Property '{req}' became required");
    }

    private void CompareArray(JsonObject w, JsonObject r, string path)
    {
        var rItems = r["items"] ?? r["prefixItems"];
        var wItems = w["items"] ?? w["prefixItems"];
        if (rItems is JsonObject ri)
        {
            if (wItems is JsonArray wTuple) { for (var i = 0; i < wTuple.Count; i++) Compare(wTuple[i], ri, $"{path}/items/{i}"); }
            else Compare(wItems ?? new JsonObject(), ri, path + "/items");
        }
        else if (rItems is JsonArray rTuple)
        {
            for (var i = 0; i < rTuple.Count; i++)
            {
                var wi = wItems is JsonArray wt ? (i < wt.Count ? wt[i] : w["additionalItems"] ?? new JsonObject()) : wItems ?? new JsonObject();
                if (IsFalse(wi)) continue;
                Compare(wi, rTuple[i], $"{path}/items/{i}");
            }
            if (IsFalse(r["additionalItems"]) && !IsFalse(w["additionalItems"]) && !(wItems is JsonArray wt2 && wt2.Count <= rTuple.Count && IsFalse(w["additionalItems"])))
                Add("ADDITIONAL_ITEMS_REMOVED", path + "/additionalItems", "additionalItems was set to false in the reader");
        }
    }

    private static List<string>? Types(JsonObject o) => o["type"] switch
    {
        JsonValue v when v.TryGetValue<string>(out var s) => [s],
        JsonArray a => a.Select(t => t!.ToString()).ToList(),
        _ => o.ContainsKey("properties") || o.ContainsKey("additionalProperties") || o.ContainsKey("required") ? null : null,
    };

    private static double? Num(JsonObject o, string key) =>
        o[key] is JsonValue v && v.TryGetValue<double>(out var d) ? d : null;

    private void UpperBound(JsonObject w, JsonObject r, string key, string path, string name)
    {
        if (Num(r, key) is { } rv && !(Num(w, key) is { } wv && wv <= rv))
            Add(name + (w.ContainsKey(key) ? "_DECREASED" : "_ADDED"), path + "/" + key, $"The reader's {key} {rv} is stricter than the writer's {(w[key]?.ToJsonString() ?? "none")}");
    }

    private void LowerBound(JsonObject w, JsonObject r, string key, string path, string name)
    {
        if (Num(r, key) is { } rv && !(Num(w, key) is { } wv && wv >= rv))
            Add(name + (w.ContainsKey(key) ? "_INCREASED" : "_ADDED"), path + "/" + key, $"The reader's {key} {rv} is stricter than the writer's {(w[key]?.ToJsonString() ?? "none")}");
    }

    private sealed class PairComparer : IEqualityComparer<(JsonNode?, JsonNode?)>
    {
        public bool Equals((JsonNode?, JsonNode?) x, (JsonNode?, JsonNode?) y) => ReferenceEquals(x.Item1, y.Item1) && ReferenceEquals(x.Item2, y.Item2);

        public int GetHashCode((JsonNode?, JsonNode?) obj) => HashCode.Combine(
            obj.Item1 is null ? 0 : System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(obj.Item1),
            obj.Item2 is null ? 0 : System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(obj.Item2));
    }
}
