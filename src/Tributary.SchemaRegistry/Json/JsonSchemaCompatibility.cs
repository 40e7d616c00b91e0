using System.Text.Json.Nodes;

namespace Tributary.SchemaRegistry.Json;

/// <summary>
/// Confluent's JSON Schema compatibility rules: a structural diff of the writer's schema (Confluent's "original") against
/// the reader's ("update"), where each difference has a type (Confluent's <c>Difference.Type</c>) and the change is
/// compatible when every difference is of a type its strict policy allows. Only the disallowed types are recorded:
/// the allowed ones never change a verdict. Subschemas are first given Confluent's shapes (<see cref="JsonSchemaShapes"/>);
/// two of different shapes are TYPE_CHANGED unless the reader accepts anything or the writer nothing.
/// <list type="bullet">
/// <item>Objects: a property the reader adds to an open writer model (no additionalProperties, patternProperties or
/// unevaluatedProperties) is OPTIONAL/REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL unless its schema is empty; to a
/// closed or partly open one it must be covered by the writer's matching patternProperties, additionalProperties or
/// unevaluatedProperties schema, and may not be required without a default. A property the reader drops must be covered
/// the same way by the reader's model; from a closed model that is PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL unless
/// its schema was <c>false</c>. Dependencies, additionalProperties and unevaluatedProperties may only loosen.</item>
/// <item>Arrays: <c>items</c>, tuple items (removed and added ones judged against additionalItems/unevaluatedItems as
/// properties are), additionalItems, unevaluatedItems, and bounds including minContains/maxContains.</item>
/// <item>Combined schemas: a writer branch set and a reader branch set match when a maximum matching of compatible
/// branch pairs covers the smaller set; oneOf/anyOf may gain branches, allOf may lose parts. <c>not</c> compares
/// its two schemas the other way round.</item>
/// </list>
/// Cost is bounded: the differences of each (writer, reader) pair of subschemas are remembered for the whole check, so
/// oneOf/anyOf over self-referencing definitions costs a number of comparisons polynomial in the branches, not
/// exponential (it took 8.7 s at 7 alternatives); a pair met again while being compared is a cycle, assumed compatible,
/// and the check repeats with the pairs found incompatible until that assumption no longer changes the answer. A check
/// that still passes <see cref="MaxComparisons"/> stops with a clear error (50002) rather than hold a core.
/// </summary>
internal sealed class JsonSchemaCompatibility
{
    /// <summary>Comparisons one check may make before it gives up: far above any real schema pair.</summary>
    internal const long MaxComparisons = 2_000_000;

    private readonly long _limit;
    private readonly CancellationToken _cancellation;
    private long _comparisons;

    /// <summary>Nested <see cref="Compare"/> calls: <c>$ref</c> chains make this deeper than the text.</summary>
    private int _depth;

    /// <summary>
    /// The differences of each pair compared in this pass, with paths relative to the pair; not complete when a trial
    /// stopped at the first, so a full comparison of the pair is made again if a report needs it.
    /// </summary>
    private Dictionary<(ShapedSchema, ShapedSchema), (Difference[] Found, bool Complete)> _known = [];

    private readonly HashSet<(ShapedSchema, ShapedSchema)> _comparing = [];

    /// <summary>Pairs a previous pass found incompatible: a cycle back into one of them is not assumed compatible.</summary>
    private Dictionary<(ShapedSchema, ShapedSchema), Difference[]> _incompatible = [];

    private bool _assumedCycleCompatible;

    private JsonSchemaCompatibility(long limit, CancellationToken cancellation)
    {
        _limit = limit;
        _cancellation = cancellation;
    }

    private readonly record struct Difference(string Type, string Path);

    /// <summary>
    /// Where differences are recorded: a path (relative to the pair being compared) and a list. A trial (is this pair
    /// compatible?) stops at its first difference: that keeps a comparison from descending through every pair of
    /// mutually recursive definitions when a cheap check has already settled it.
    /// </summary>
    private sealed class Scope(string path, List<Difference> found, bool firstOnly)
    {
        public List<Difference> Found { get; } = found;

        public bool FirstOnly { get; } = firstOnly;

        /// <summary>A trial that has found a difference needs no more.</summary>
        public bool Settled => FirstOnly && Found.Count > 0;

        public Scope At(string segment) => new(path.Length == 0 ? segment : path + "/" + segment, Found, FirstOnly);

        public static Scope Trial() => new("", [], firstOnly: true);

        public void Add(string type) => Found.Add(new Difference(type, "#/" + path));

        public void AddRelative(IEnumerable<Difference> relative)
        {
            foreach (var d in relative)
                Found.Add(path.Length == 0 ? d : d with { Path = d.Path.Length <= 2 ? "#/" + path : "#/" + path + "/" + d.Path[2..] });
        }
    }

    /// <exception cref="OperationCanceledException">When <paramref name="cancellation"/> fires: its client has gone.</exception>
    public static IReadOnlyList<string> Check(JsonParsedSchema reader, JsonParsedSchema writer, CancellationToken cancellation = default) =>
        Check(reader, writer, out _, cancellation: cancellation);

    /// <param name="comparisons">How many subschema pairs were compared (what the bound counts).</param>
    /// <param name="limit">The bound (tests lower it).</param>
    internal static IReadOnlyList<string> Check(JsonParsedSchema reader, JsonParsedSchema writer, out long comparisons, long limit = MaxComparisons,
        CancellationToken cancellation = default)
    {
        var original = new JsonSchemaShapes(writer, reader).Of(writer.Root);
        var update = new JsonSchemaShapes(reader, writer).Of(reader.Root);
        var check = new JsonSchemaCompatibility(limit, cancellation);
        while (true)
        {
            var root = new Scope("", [], firstOnly: false);
            check.Compare(root, original, update);
            var incompatible = check._known.Where(p => p.Value.Found.Length > 0).ToDictionary(p => p.Key, p => p.Value.Found);
            if (!check._assumedCycleCompatible || incompatible.Keys.All(check._incompatible.ContainsKey) && incompatible.Count == check._incompatible.Count)
            {
                comparisons = check._comparisons;
                return root.Found.Select(d => Describe(d.Type, d.Path)).ToList();
            }
            check._incompatible = incompatible;
            check._known = [];
            check._assumedCycleCompatible = false;
        }
    }

    /// <exception cref="RegistryException">42201 when the comparison nests deeper than <see cref="SchemaNesting.MaxDepth"/>.</exception>
    private void Compare(Scope at, ShapedSchema? original, ShapedSchema? update)
    {
        if (++_comparisons > _limit)
            throw RegistryException.CheckTooLarge($"the compatibility check compared more than {_limit:N0} pairs of subschemas");
        if ((_comparisons & 1023) == 0) _cancellation.ThrowIfCancellationRequested();
        if (at.Settled) return;
        if (original is null || update is null)
        {
            if (original is null && update is not null) at.Add("SCHEMA_ADDED");
            return;
        }
        var pair = (original.Resolved(), update.Resolved());
        if (_known.TryGetValue(pair, out var known) && (known.Complete || at.FirstOnly))
        {
            at.AddRelative(known.Found);
            return;
        }
        if (!_comparing.Add(pair))
        {
            if (_incompatible.TryGetValue(pair, out var seeded)) at.AddRelative(seeded);
            else _assumedCycleCompatible = true;
            return;
        }
        SchemaNesting.Check(++_depth);
        try
        {
            var scope = new Scope("", [], at.FirstOnly);
            CompareShapes(scope, pair.Item1, pair.Item2);
            var found = scope.Found.ToArray();
            _known[pair] = (found, !at.FirstOnly || found.Length == 0);
            at.AddRelative(found);
        }
        finally
        {
            _depth--;
            _comparing.Remove(pair);
        }
    }

    private bool Compatible(ShapedSchema? original, ShapedSchema? update) => Differences(original, update).Count == 0;

    private List<Difference> Differences(ShapedSchema? original, ShapedSchema? update)
    {
        var trial = Scope.Trial();
        Compare(trial, original, update);
        return trial.Found;
    }

    private void CompareShapes(Scope at, ShapedSchema o, ShapedSchema u)
    {
        // A plain schema may become a oneOf/anyOf that has a compatible branch, and an allOf may become one of its parts.
        if (o.Shape != SchemaShape.Combined && u.Shape == SchemaShape.Combined)
        {
            if (u.Subschemas.Count == 1 ? Compatible(o, u.Subschemas[0]) : u.Criterion != Criterion.AllOf && u.Subschemas.Any(s => Compatible(o, s))) return;
        }
        else if (o.Shape == SchemaShape.Combined && u.Shape != SchemaShape.Combined)
        {
            if (o.Subschemas.Count == 1 ? Compatible(o.Subschemas[0], u) : o.Criterion == Criterion.AllOf && o.Subschemas.Any(s => Compatible(s, u))) return;
        }
        if (o.Shape != u.Shape)
        {
            if (o.Shape == SchemaShape.False || u.AcceptsAnything || o.ConnectType == "bytes" && u.ConnectType == "bytes") return;
            at.Add("TYPE_CHANGED");
            return;
        }
        switch (o.Shape)
        {
            case SchemaShape.String: CompareString(at, o, u); break;
            case SchemaShape.Number: CompareNumber(at, o, u); break;
            case SchemaShape.Object: CompareObject(at, o, u); break;
            case SchemaShape.Array: CompareArray(at, o, u); break;
            case SchemaShape.Combined: CompareCombined(at, o, u); break;
            case SchemaShape.Enum: CompareEnum(at, o, u); break;
            case SchemaShape.Const:
                if (!JsonNode.DeepEquals(o.Values[0], u.Values[0])) at.At("const").Add("ENUM_ARRAY_CHANGED");
                break;
            case SchemaShape.Not:
                // A reader's not must exclude no more than the writer's: compare the excluded schemas the other way round.
                if (!Compatible(u.MustNotMatch, o.MustNotMatch)) at.At("not").Add("NOT_TYPE_EXTENDED");
                break;
        }
    }

    private static void CompareString(Scope at, ShapedSchema o, ShapedSchema u)
    {
        Upper(at, "maxLength", "MAX_LENGTH", o.MaxLength, u.MaxLength);
        Lower(at, "minLength", "MIN_LENGTH", o.MinLength, u.MinLength);
        if (u.Pattern is not null && o.Pattern != u.Pattern) at.At("pattern").Add(o.Pattern is null ? "PATTERN_ADDED" : "PATTERN_CHANGED");
    }

    private static void CompareNumber(Scope at, ShapedSchema o, ShapedSchema u)
    {
        Upper(at, "maximum", "MAXIMUM", o.Maximum, u.Maximum);
        Lower(at, "minimum", "MINIMUM", o.Minimum, u.Minimum);
        Upper(at, "exclusiveMaximum", "EXCLUSIVE_MAXIMUM", o.ExclusiveMaximum, u.ExclusiveMaximum);
        Lower(at, "exclusiveMinimum", "EXCLUSIVE_MINIMUM", o.ExclusiveMinimum, u.ExclusiveMinimum);
        if (u.MultipleOf is not null)
        {
            if (o.MultipleOf is null) at.At("multipleOf").Add("MULTIPLE_OF_ADDED");
            else if (!Divides(u.MultipleOf, o.MultipleOf)) at.At("multipleOf").Add(Divides(o.MultipleOf, u.MultipleOf) ? "MULTIPLE_OF_EXPANDED" : "MULTIPLE_OF_CHANGED");
        }
        if (!o.RequiresInteger && u.RequiresInteger) at.Add("TYPE_NARROWED");
    }

    /// <summary>Whether <paramref name="divisor"/> divides <paramref name="value"/> exactly (decimal when both fit).</summary>
    private static bool Divides(JsonNode divisor, JsonNode value)
    {
        if (divisor.AsValue().TryGetValue<decimal>(out var d) && value.AsValue().TryGetValue<decimal>(out var v))
            return d != 0 && v % d == 0;
        var dd = divisor.GetValue<double>();
        return dd != 0 && value.GetValue<double>() % dd == 0;
    }

    /// <summary>An upper bound may be removed or raised, not added or lowered.</summary>
    private static void Upper(Scope at, string keyword, string type, double? original, double? update)
    {
        if (update is not { } u) return;
        if (original is not { } o) at.At(keyword).Add(type + "_ADDED");
        else if (u < o) at.At(keyword).Add(type + "_DECREASED");
    }

    /// <summary>A lower bound may be removed or lowered, not added or raised.</summary>
    private static void Lower(Scope at, string keyword, string type, double? original, double? update)
    {
        if (update is not { } u) return;
        if (original is not { } o) at.At(keyword).Add(type + "_ADDED");
        else if (u > o) at.At(keyword).Add(type + "_INCREASED");
    }

    private static void CompareEnum(Scope at, ShapedSchema o, ShapedSchema u)
    {
        var extended = o.Values.All(v => u.Values.Any(w => JsonNode.DeepEquals(v, w)));
        if (extended) return;
        var narrowed = u.Values.All(v => o.Values.Any(w => JsonNode.DeepEquals(v, w)));
        at.At("enum").Add(narrowed ? "ENUM_ARRAY_NARROWED" : "ENUM_ARRAY_CHANGED");
    }

    private void CompareObject(Scope at, ShapedSchema o, ShapedSchema u)
    {
        var originalProperties = o.Properties.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
        var updateProperties = u.Properties.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
        foreach (var (name, _) in o.Properties)
        {
            if (updateProperties.TryGetValue(name, out var up) && !o.Required.Contains(name) && u.Required.Contains(name) && !up.HasDefault)
                at.At("required").At(name).Add("REQUIRED_ATTRIBUTE_ADDED");
        }
        Upper(at, "maxProperties", "MAX_PROPERTIES", o.MaxProperties, u.MaxProperties);
        Lower(at, "minProperties", "MIN_PROPERTIES", o.MinProperties, u.MinProperties);

        var properties = at.At("properties");
        foreach (var (name, op) in o.Properties)
        {
            if (updateProperties.ContainsKey(name) || IsOpen(u)) continue;
            // Removed: the writer may still send it, so the reader's model must take it.
            if (Covering(u, name) is { } covering) Covered(properties.At(name), op, covering, "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL");
            else if (op.Shape != SchemaShape.False) properties.At(name).Add("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL");
        }
        foreach (var (name, up) in u.Properties)
        {
            if (originalProperties.ContainsKey(name)) continue;
            // Added: an open writer may already send it with any value; a closed one only as its model allows.
            var here = properties.At(name);
            var required = u.Required.Contains(name);
            if (IsOpen(o))
            {
                if (!up.AcceptsAnything)
                {
                    here.Add(!required ? "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"
                        : up.HasDefault ? "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL"
                        : "REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL");
                }
                continue;
            }
            if (Covering(o, name) is { } covering) Covered(here, covering, up, "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL");
            if (required && !up.HasDefault) here.Add("REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL");
        }

        var dependencies = at.At("dependencies");
        foreach (var (name, needs) in u.PropertyDependencies)
        {
            if (!o.PropertyDependencies.TryGetValue(name, out var needed)) dependencies.At(name).Add("DEPENDENCY_ARRAY_ADDED");
            else if (!needed.IsSupersetOf(needs)) dependencies.At(name).Add(needs.IsSupersetOf(needed) ? "DEPENDENCY_ARRAY_EXTENDED" : "DEPENDENCY_ARRAY_CHANGED");
        }
        foreach (var (name, _) in u.SchemaDependencies)
            if (!o.SchemaDependencies.ContainsKey(name)) dependencies.At(name).Add("DEPENDENCY_SCHEMA_ADDED");

        var additional = at.At("additionalProperties");
        if (o.PermitsAdditionalProperties != u.PermitsAdditionalProperties)
        {
            if (!u.PermitsAdditionalProperties) additional.Add("ADDITIONAL_PROPERTIES_REMOVED");
        }
        else if (o.AdditionalProperties is null && u.AdditionalProperties is not null) additional.Add("ADDITIONAL_PROPERTIES_NARROWED");

        // Subschemas last: a trial settled by the checks above does not descend.
        foreach (var (name, op) in o.Properties)
            if (updateProperties.TryGetValue(name, out var up)) Compare(properties.At(name), op, up);
        foreach (var (name, schema) in u.SchemaDependencies)
            if (o.SchemaDependencies.TryGetValue(name, out var was)) Compare(dependencies.At(name), was, schema);
        if (o.PermitsAdditionalProperties == u.PermitsAdditionalProperties && o.AdditionalProperties is not null && u.AdditionalProperties is not null)
            Compare(additional, o.AdditionalProperties, u.AdditionalProperties);
        Unevaluated(at.At("unevaluatedProperties"), o.UnevaluatedProperties, u.UnevaluatedProperties, "UNEVALUATED_PROPERTIES");
    }

    /// <summary>Open: anything may appear besides the listed properties (no additional, pattern or unevaluated schema).</summary>
    private static bool IsOpen(ShapedSchema s) =>
        s.PermitsAdditionalProperties && s.AdditionalProperties is null && s.PatternProperties.Count == 0 && (s.UnevaluatedProperties?.AcceptsAnything ?? true);

    /// <summary>The schema a partly open model gives an unlisted property: its pattern's, additionalProperties', or unevaluatedProperties'.</summary>
    private static ShapedSchema? Covering(ShapedSchema s, string name)
    {
        foreach (var (pattern, schema) in s.PatternProperties)
        {
            try
            {
                if (pattern.IsMatch(name)) return schema;
            }
            catch (System.Text.RegularExpressions.RegexMatchTimeoutException)
            {
                // A pattern too costly to try is taken as not matching.
            }
        }
        if (s.AdditionalProperties is not null) return s.AdditionalProperties;
        return s.PermitsAdditionalProperties ? Partial(s.UnevaluatedProperties) : null;
    }

    /// <summary>An unevaluated schema that neither closes nor fully opens the model.</summary>
    private static ShapedSchema? Partial(ShapedSchema? unevaluated) =>
        unevaluated is null || unevaluated.Shape == SchemaShape.False || unevaluated.AcceptsAnything ? null : unevaluated;

    private void Covered(Scope here, ShapedSchema original, ShapedSchema update, string notCovered)
    {
        if (here.Settled) return;
        var differences = Differences(original, update);
        if (differences.Count == 0) return;
        here.AddRelative(differences);
        here.Add(notCovered);
    }

    /// <summary>unevaluatedProperties/unevaluatedItems: present and absent, false, true and a schema, loosest to tightest.</summary>
    private void Unevaluated(Scope here, ShapedSchema? o, ShapedSchema? u, string type)
    {
        if (u is null) return;
        if (o is null) here.Add(u.Shape == SchemaShape.False ? type + "_REMOVED" : type + "_NARROWED");
        else if (o.Shape == SchemaShape.False) return;
        else if (u.Shape == SchemaShape.False) here.Add(type + "_REMOVED");
        else if (o.AcceptsAnything && !u.AcceptsAnything) here.Add(type + "_NARROWED");
        else if (!u.AcceptsAnything) Compare(here, o, u);
    }

    private void CompareArray(Scope at, ShapedSchema o, ShapedSchema u)
    {
        Upper(at, "maxItems", "MAX_ITEMS", o.MaxItems, u.MaxItems);
        Lower(at, "minItems", "MIN_ITEMS", o.MinItems, u.MinItems);
        if (u.UniqueItems && !o.UniqueItems) at.At("uniqueItems").Add("UNIQUE_ITEMS_ADDED");
        Upper(at, "maxContains", "MAX_CONTAINS", o.MaxContains, u.MaxContains);
        Lower(at, "minContains", "MIN_CONTAINS", o.MinContains, u.MinContains);
        Compare(at.At("items"), o.AllItems, u.AllItems);

        var shared = Math.Min(o.ItemSchemas.Count, u.ItemSchemas.Count);
        for (var i = 0; i < shared; i++) Compare(at.At("items/" + i), o.ItemSchemas[i], u.ItemSchemas[i]);
        for (var i = shared; i < o.ItemSchemas.Count; i++)
        {
            // The reader dropped a tuple item the writer still sends: its rest-of-array schema must take it.
            var here = at.At("items/" + i);
            if (IsOpenArray(u)) continue;
            if (Rest(u) is { } rest) Covered(here, o.ItemSchemas[i], rest, "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL");
            else if (o.ItemSchemas[i].Shape != SchemaShape.False) here.Add("ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL");
        }
        for (var i = shared; i < u.ItemSchemas.Count; i++)
        {
            var here = at.At("items/" + i);
            if (IsOpenArray(o))
            {
                if (!u.ItemSchemas[i].AcceptsAnything) here.Add("ITEM_ADDED_TO_OPEN_CONTENT_MODEL");
            }
            else if (Rest(o) is { } rest)
            {
                Covered(here, rest, u.ItemSchemas[i], "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL");
            }
        }

        var additional = at.At("additionalItems");
        if (o.PermitsAdditionalItems != u.PermitsAdditionalItems)
        {
            if (!u.PermitsAdditionalItems) additional.Add("ADDITIONAL_ITEMS_REMOVED");
        }
        else if (o.AdditionalItems is null && u.AdditionalItems is not null) additional.Add("ADDITIONAL_ITEMS_NARROWED");
        else if (u.AdditionalItems is not null) Compare(additional, o.AdditionalItems, u.AdditionalItems);

        Unevaluated(at.At("unevaluatedItems"), o.UnevaluatedItems, u.UnevaluatedItems, "UNEVALUATED_ITEMS");
    }

    private static bool IsOpenArray(ShapedSchema s) =>
        s.PermitsAdditionalItems && s.AdditionalItems is null && (s.UnevaluatedItems?.AcceptsAnything ?? true);

    /// <summary>The schema a partly open array gives items past its tuple: additionalItems', or unevaluatedItems'.</summary>
    private static ShapedSchema? Rest(ShapedSchema s) =>
        s.AdditionalItems ?? (s.PermitsAdditionalItems ? Partial(s.UnevaluatedItems) : null);

    private void CompareCombined(Scope at, ShapedSchema o, ShapedSchema u)
    {
        if (o.Criterion != u.Criterion)
        {
            var widened = u.Criterion == Criterion.AnyOf
                || o.Subschemas.Count == 1 && (u.Subschemas.Count == 1 || u.Criterion == Criterion.OneOf)
                || u.Subschemas.Count == 1 && o.Criterion == Criterion.AllOf;
            if (!widened)
            {
                at.Add("COMBINED_TYPE_CHANGED");
                return;
            }
        }
        var originals = Distinct(o.Subschemas);
        var updates = Distinct(u.Subschemas);
        if (originals.Count < updates.Count && u.Criterion == Criterion.AllOf) at.Add("PRODUCT_TYPE_EXTENDED");
        else if (originals.Count > updates.Count && o.Criterion != Criterion.AllOf) at.Add("SUM_TYPE_NARROWED");
        if (!at.Settled && MatchedPairs(originals, updates) < Math.Min(originals.Count, updates.Count)) at.Add("COMBINED_TYPE_SUBSCHEMAS_CHANGED");
    }

    /// <summary>Branches with equal text count once.</summary>
    private static List<ShapedSchema> Distinct(List<ShapedSchema> branches)
    {
        var distinct = new List<ShapedSchema>(branches.Count);
        foreach (var b in branches)
            if (!distinct.Any(d => ReferenceEquals(d, b) || d.Source is not null && b.Source is not null && JsonNode.DeepEquals(d.Source, b.Source)))
                distinct.Add(b);
        return distinct;
    }

    /// <summary>
    /// The size of a maximum matching of writer branches to reader branches they are compatible with (augmenting paths
    /// from the smaller side). Pairs are tried lazily, so identical branch lists cost about half of all pairs.
    /// </summary>
    private int MatchedPairs(List<ShapedSchema> originals, List<ShapedSchema> updates)
    {
        var fromOriginals = originals.Count <= updates.Count;
        var left = fromOriginals ? originals.Count : updates.Count;
        var right = fromOriginals ? updates.Count : originals.Count;
        var edges = new bool?[originals.Count, updates.Count];
        bool Edge(int l, int r)
        {
            var (i, j) = fromOriginals ? (l, r) : (r, l);
            return edges[i, j] ??= Compatible(originals[i], updates[j]);
        }
        var partner = Enumerable.Repeat(-1, right).ToArray();
        bool Augment(int l, bool[] seen)
        {
            for (var r = 0; r < right; r++)
            {
                if (seen[r] || !Edge(l, r)) continue;
                seen[r] = true;
                if (partner[r] < 0 || Augment(partner[r], seen))
                {
                    partner[r] = l;
                    return true;
                }
            }
            return false;
        }
        var matched = 0;
        for (var l = 0; l < left; l++)
            if (Augment(l, new bool[right])) matched++;
        return matched;
    }

    private static string Describe(string type, string path) =>
        $"{{errorType:'{type}', description:'{Explain(type, path)}'}}";

    /// <summary>What a difference type means for the reader, in the categories of Confluent's messages.</summary>
    private static string Explain(string type, string path) => type switch
    {
        "ADDITIONAL_PROPERTIES_REMOVED" or "ADDITIONAL_ITEMS_REMOVED" or "UNEVALUATED_PROPERTIES_REMOVED" or "UNEVALUATED_ITEMS_REMOVED" =>
            $"The reader closes the content model at path '{path}' that the writer leaves open",
        "PATTERN_CHANGED" or "MULTIPLE_OF_CHANGED" or "DEPENDENCY_ARRAY_CHANGED" =>
            $"The value at path '{path}' differs between the writer's and the reader's schemas",
        "TYPE_CHANGED" or "TYPE_NARROWED" or "COMBINED_TYPE_CHANGED" or "COMBINED_TYPE_SUBSCHEMAS_CHANGED" or "ENUM_ARRAY_CHANGED" =>
            $"The type at path '{path}' in the reader's schema does not accept all of the writer's",
        "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL" or "REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"
            or "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL" or "ITEM_ADDED_TO_OPEN_CONTENT_MODEL" =>
            $"The reader has a property or item at path '{path}' that the writer's open content model may already carry with another value",
        "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL" =>
            $"The reader requires the property at path '{path}', which the writer's content model does not list",
        "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL" or "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL" =>
            $"The reader has a closed content model without the property or item at path '{path}' that the writer has",
        "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL" or "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL" =>
            $"The reader lacks the property or item at path '{path}' that the writer has, and its partially open content model does not accept it",
        "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL" or "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL" =>
            $"The reader has the property or item at path '{path}', which does not accept what the writer's partially open content model allows",
        _ when type.EndsWith("_ADDED", StringComparison.Ordinal) =>
            $"The keyword at path '{path}' is in the reader's schema but not the writer's",
        _ when type.EndsWith("_INCREASED", StringComparison.Ordinal) =>
            $"The value at path '{path}' is higher in the reader's schema than in the writer's",
        _ when type.EndsWith("_DECREASED", StringComparison.Ordinal) =>
            $"The value at path '{path}' is lower in the reader's schema than in the writer's",
        _ when type.EndsWith("_NARROWED", StringComparison.Ordinal) =>
            $"The array or combined type at path '{path}' has fewer elements in the reader's schema than in the writer's",
        _ => $"The array or combined type at path '{path}' has more elements in the reader's schema than in the writer's",
    };
}
