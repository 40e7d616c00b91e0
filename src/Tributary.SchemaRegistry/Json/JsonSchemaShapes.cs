using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Tributary.SchemaRegistry.Json;

/// <summary>What a subschema is, as Confluent's checker classifies it (its JSON Schema library's schema classes).</summary>
internal enum SchemaShape
{
    Empty,
    True,
    False,
    Null,
    Boolean,
    String,
    Number,
    Object,
    Array,
    Enum,
    Const,
    Combined,
    Not,
    Conditional,
    Reference,
}

internal enum Criterion
{
    AllOf,
    AnyOf,
    OneOf,
}

/// <summary>
/// One subschema in the form Confluent's JSON Schema diff compares. The shape decides what is compared: two subschemas of
/// different shapes are a type change, whatever their keywords say. A schema object whose keywords fall into several
/// shapes (<c>{"type":"string","enum":["a"]}</c>: a string and an enum) is an allOf of one part per shape, as Confluent's
/// loader builds it, so removing the enum there is an allOf narrowed, not a changed type.
/// </summary>
internal sealed class ShapedSchema
{
    public SchemaShape Shape { get; init; }

    /// <summary>The schema text this came from; equal texts are one branch of a combined schema.</summary>
    public JsonNode? Source { get; set; }

    public bool HasDefault { get; set; }

    /// <summary>Kafka Connect's <c>connect.type</c>: two <c>bytes</c> schemas match whatever their shapes.</summary>
    public string? ConnectType { get; set; }

    public double? MaxLength { get; set; }
    public double? MinLength { get; set; }
    public string? Pattern { get; set; }

    public double? Maximum { get; set; }
    public double? Minimum { get; set; }
    public double? ExclusiveMaximum { get; set; }
    public double? ExclusiveMinimum { get; set; }
    public JsonNode? MultipleOf { get; set; }
    public bool RequiresInteger { get; set; }

    public List<KeyValuePair<string, ShapedSchema>> Properties { get; } = [];
    public HashSet<string> Required { get; } = new(StringComparer.Ordinal);
    public bool PermitsAdditionalProperties { get; set; } = true;
    public ShapedSchema? AdditionalProperties { get; set; }
    public List<(Regex Pattern, ShapedSchema Schema)> PatternProperties { get; } = [];
    public Dictionary<string, HashSet<string>> PropertyDependencies { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, ShapedSchema> SchemaDependencies { get; } = new(StringComparer.Ordinal);
    public ShapedSchema? UnevaluatedProperties { get; set; }
    public double? MaxProperties { get; set; }
    public double? MinProperties { get; set; }

    /// <summary>The schema of every item (<c>items</c> as one schema).</summary>
    public ShapedSchema? AllItems { get; set; }

    /// <summary>The schemas of the leading items (<c>items</c> as an array before 2020-12, <c>prefixItems</c> after).</summary>
    public List<ShapedSchema> ItemSchemas { get; } = [];
    public bool PermitsAdditionalItems { get; set; } = true;
    public ShapedSchema? AdditionalItems { get; set; }
    public ShapedSchema? UnevaluatedItems { get; set; }
    public double? MaxItems { get; set; }
    public double? MinItems { get; set; }
    public bool UniqueItems { get; set; }
    public double? MaxContains { get; set; }
    public double? MinContains { get; set; }

    public List<JsonNode?> Values { get; } = [];

    public Criterion Criterion { get; init; }
    public List<ShapedSchema> Subschemas { get; } = [];

    public ShapedSchema? MustNotMatch { get; init; }

    /// <summary>For a reference: the schema it names, found when first compared (references may be cyclic).</summary>
    public Func<ShapedSchema>? Referred { get; init; }

    /// <summary>True and the empty schema accept everything; Confluent treats both as "empty".</summary>
    public bool AcceptsAnything => Shape is SchemaShape.Empty or SchemaShape.True;

    public ShapedSchema Resolved()
    {
        var s = this;
        for (var hops = 0; s.Shape == SchemaShape.Reference && hops < 32; hops++) s = s.Referred!();
        return s.Shape == SchemaShape.Reference ? JsonSchemaShapes.Anything : s;
    }
}

/// <summary>
/// Builds the <see cref="ShapedSchema"/> of each subschema of one document, once per JSON node, so a subschema reached
/// twice (through <c>$ref</c>) is the same object: the checker remembers outcomes by object and detects cycles by it.
/// Drafts 4 to 7 follow Confluent's everit loader: <c>$ref</c> hides its siblings, <c>items</c> as an array is a tuple
/// closed by <c>additionalItems</c>, <c>dependencies</c> holds both kinds, an empty <c>properties</c> still makes an
/// object. Drafts 2019-09 and 2020-12 follow its json-sKema translation: <c>$ref</c> combines with its siblings,
/// <c>prefixItems</c> is the tuple and <c>items</c> the rest (<c>items: false</c> closes it), <c>dependentRequired</c>
/// and <c>dependentSchemas</c>, <c>unevaluatedProperties</c>/<c>unevaluatedItems</c>, and <c>minContains</c> 1 by default.
/// </summary>
internal sealed class JsonSchemaShapes(JsonParsedSchema document, JsonParsedSchema other)
{
    /// <summary>What an unresolvable reference is taken to be: it constrains nothing.</summary>
    public static readonly ShapedSchema Anything = new() { Shape = SchemaShape.Empty };

    private static readonly string[] StringKeywords = ["maxLength", "minLength", "pattern"];
    private static readonly string[] NumberKeywords = ["maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum", "multipleOf"];
    private static readonly string[] ClassicArrayKeywords = ["items", "additionalItems", "maxItems", "minItems", "uniqueItems", "contains"];
    private static readonly string[] ModernArrayKeywords = ["prefixItems", "items", "maxItems", "minItems", "uniqueItems", "contains", "unevaluatedItems"];
    private static readonly string[] ClassicObjectKeywords =
        ["properties", "required", "minProperties", "maxProperties", "dependencies", "patternProperties", "additionalProperties", "propertyNames"];
    private static readonly string[] ModernObjectKeywords =
        ["required", "minProperties", "maxProperties", "additionalProperties", "dependentRequired", "dependentSchemas", "propertyNames", "unevaluatedProperties"];

    private readonly Dictionary<JsonNode, ShapedSchema> _built = new(ReferenceEqualityComparer.Instance);
    private readonly JsonSchemaDraft _draft = document.Draft;
    private bool Modern => _draft is JsonSchemaDraft.Draft201909 or JsonSchemaDraft.Draft202012;

    public ShapedSchema Of(JsonNode? node)
    {
        if (node is null) return Anything;
        if (_built.TryGetValue(node, out var known)) return known;
        var built = Build(node);
        _built[node] = built;
        return built;
    }

    private ShapedSchema Build(JsonNode node)
    {
        if (node is not JsonObject o)
        {
            return node.GetValueKind() switch
            {
                JsonValueKind.True => new ShapedSchema { Shape = SchemaShape.True, Source = node },
                JsonValueKind.False => new ShapedSchema { Shape = SchemaShape.False, Source = node },
                _ => Anything,
            };
        }
        var parts = new List<ShapedSchema>();
        if (o["$ref"] is JsonValue rv && rv.TryGetValue<string>(out var reference))
        {
            parts.Add(new ShapedSchema { Shape = SchemaShape.Reference, Referred = () => Of(Resolve(reference)) });
            if (!Modern) return Common(o, parts[0]);
        }
        if (o["enum"] is JsonArray values)
        {
            var e = new ShapedSchema { Shape = SchemaShape.Enum };
            e.Values.AddRange(values);
            parts.Add(e);
        }
        foreach (var (keyword, criterion) in new[] { ("allOf", Criterion.AllOf), ("anyOf", Criterion.AnyOf), ("oneOf", Criterion.OneOf) })
        {
            if (o[keyword] is not JsonArray branches) continue;
            var c = new ShapedSchema { Shape = SchemaShape.Combined, Criterion = criterion };
            c.Subschemas.AddRange(branches.Select(Of));
            parts.Add(c);
        }
        if (o.TryGetPropertyValue("not", out var not)) parts.Add(new ShapedSchema { Shape = SchemaShape.Not, MustNotMatch = Of(not) });
        if (o.TryGetPropertyValue("const", out var constant) && _draft != JsonSchemaDraft.Draft4)
        {
            var c = new ShapedSchema { Shape = SchemaShape.Const };
            c.Values.Add(constant);
            parts.Add(c);
        }

        // The types named in "type" take their keywords; keywords of other types make parts of their own.
        var typed = new HashSet<SchemaShape>();
        var types = o["type"] switch
        {
            JsonValue v when v.TryGetValue<string>(out var one) => [one],
            JsonArray a => a.Select(t => t?.GetValue<string>() ?? "").ToList(),
            _ => (List<string>?)null,
        };
        if (types is not null)
        {
            var named = types.Select(t => Typed(o, t, typed)).ToList();
            if (o["type"] is JsonArray)
            {
                var any = new ShapedSchema { Shape = SchemaShape.Combined, Criterion = Criterion.AnyOf };
                any.Subschemas.AddRange(named);
                parts.Add(any);
            }
            else
            {
                parts.AddRange(named);
            }
        }
        if (!typed.Contains(SchemaShape.Array) && Any(o, Modern ? ModernArrayKeywords : ClassicArrayKeywords)) parts.Add(Array(o));
        if (!typed.Contains(SchemaShape.Object) && HasObjectKeywords(o)) parts.Add(Object(o));
        if (!typed.Contains(SchemaShape.Number) && Any(o, NumberKeywords)) parts.Add(Number(o, integer: false));
        if (!typed.Contains(SchemaShape.String) && (Any(o, StringKeywords) || !Modern && o.ContainsKey("format"))) parts.Add(String(o));
        if (_draft != JsonSchemaDraft.Draft4 && (o.ContainsKey("if") || o.ContainsKey("then") || o.ContainsKey("else")))
            parts.Add(new ShapedSchema { Shape = SchemaShape.Conditional });

        ShapedSchema result;
        if (parts.Count == 0) result = new ShapedSchema { Shape = SchemaShape.Empty };
        else if (parts.Count == 1) result = parts[0];
        else
        {
            result = new ShapedSchema { Shape = SchemaShape.Combined, Criterion = Criterion.AllOf };
            result.Subschemas.AddRange(parts);
        }
        // Before 2019-09, minContains and maxContains are unknown keywords, kept only on an array schema.
        if (!Modern && result.Shape == SchemaShape.Array)
        {
            result.MinContains = Num(o, "minContains");
            result.MaxContains = Num(o, "maxContains");
        }
        return Common(o, result);
    }

    private static ShapedSchema Common(JsonObject o, ShapedSchema s)
    {
        s.Source = o;
        s.HasDefault = o.ContainsKey("default");
        s.ConnectType = o["connect.type"] is JsonValue v && v.TryGetValue<string>(out var t) ? t : null;
        return s;
    }

    private ShapedSchema Typed(JsonObject o, string type, HashSet<SchemaShape> typed)
    {
        var s = type switch
        {
            "string" => String(o),
            "integer" => Number(o, integer: true),
            "number" => Number(o, integer: false),
            "object" => Object(o),
            "array" => Array(o),
            "boolean" => new ShapedSchema { Shape = SchemaShape.Boolean },
            _ => new ShapedSchema { Shape = SchemaShape.Null },
        };
        typed.Add(s.Shape);
        return s;
    }

    private bool HasObjectKeywords(JsonObject o) =>
        Modern
            ? Any(o, ModernObjectKeywords) || o["properties"] is JsonObject { Count: > 0 } || o["patternProperties"] is JsonObject { Count: > 0 }
            : Any(o, ClassicObjectKeywords);

    private static bool Any(JsonObject o, string[] keywords) => keywords.Any(o.ContainsKey);

    private static ShapedSchema String(JsonObject o) => new()
    {
        Shape = SchemaShape.String,
        MaxLength = Num(o, "maxLength"),
        MinLength = Num(o, "minLength"),
        Pattern = o["pattern"] is JsonValue p && p.TryGetValue<string>(out var text) ? text : null,
    };

    private ShapedSchema Number(JsonObject o, bool integer) => new()
    {
        Shape = SchemaShape.Number,
        RequiresInteger = integer,
        Maximum = Num(o, "maximum"),
        Minimum = Num(o, "minimum"),
        // Draft 4's exclusiveMaximum/exclusiveMinimum are booleans qualifying maximum/minimum: no bound of their own.
        ExclusiveMaximum = Num(o, "exclusiveMaximum"),
        ExclusiveMinimum = Num(o, "exclusiveMinimum"),
        MultipleOf = o["multipleOf"] is JsonValue m && m.GetValueKind() == JsonValueKind.Number ? m : null,
    };

    private ShapedSchema Object(JsonObject o)
    {
        var s = new ShapedSchema
        {
            Shape = SchemaShape.Object,
            MaxProperties = Num(o, "maxProperties"),
            MinProperties = Num(o, "minProperties"),
        };
        if (o["properties"] is JsonObject properties)
            foreach (var (name, schema) in properties) s.Properties.Add(KeyValuePair.Create(name, Of(schema)));
        if (o["required"] is JsonArray required)
            foreach (var name in required) if (name is JsonValue n && n.TryGetValue<string>(out var text)) s.Required.Add(text);
        switch (o["additionalProperties"])
        {
            case JsonValue v when v.GetValueKind() == JsonValueKind.False: s.PermitsAdditionalProperties = false; break;
            case JsonObject additional: s.AdditionalProperties = Of(additional); break;
        }
        if (o["patternProperties"] is JsonObject patterns)
            foreach (var (pattern, schema) in patterns)
                if (Regex(pattern) is { } regex) s.PatternProperties.Add((regex, Of(schema)));
        foreach (var keyword in Modern ? ["dependentRequired", "dependentSchemas"] : new[] { "dependencies" })
        {
            if (o[keyword] is not JsonObject dependencies) continue;
            foreach (var (name, dependency) in dependencies)
            {
                if (dependency is JsonArray names) s.PropertyDependencies[name] = names.Select(x => x?.ToString() ?? "").ToHashSet(StringComparer.Ordinal);
                else s.SchemaDependencies[name] = Of(dependency);
            }
        }
        if (Modern && o.TryGetPropertyValue("unevaluatedProperties", out var unevaluated)) s.UnevaluatedProperties = Of(unevaluated);
        return s;
    }

    private ShapedSchema Array(JsonObject o)
    {
        var s = new ShapedSchema
        {
            Shape = SchemaShape.Array,
            MaxItems = Num(o, "maxItems"),
            MinItems = Num(o, "minItems"),
            UniqueItems = o["uniqueItems"]?.GetValueKind() == JsonValueKind.True,
        };
        var tuple = _draft == JsonSchemaDraft.Draft202012 ? o["prefixItems"] : o["items"];
        if (tuple is JsonArray prefix) s.ItemSchemas.AddRange(prefix.Select(Of));
        if (_draft == JsonSchemaDraft.Draft202012)
        {
            // 2020-12's items is the schema of the items after prefixItems; true adds nothing, false closes the array.
            var rest = o["items"];
            if (rest?.GetValueKind() == JsonValueKind.False) s.PermitsAdditionalItems = false;
            else if (rest is JsonObject) { if (o.ContainsKey("prefixItems")) s.AdditionalItems = Of(rest); else s.AllItems = Of(rest); }
        }
        else
        {
            if (o.TryGetPropertyValue("items", out var items) && items is not JsonArray && !(Modern && items?.GetValueKind() == JsonValueKind.True)) s.AllItems = Of(items);
            switch (o["additionalItems"])
            {
                case JsonValue v when v.GetValueKind() == JsonValueKind.False: s.PermitsAdditionalItems = false; break;
                case JsonObject additional: s.AdditionalItems = Of(additional); break;
            }
        }
        if (Modern)
        {
            if (o.TryGetPropertyValue("unevaluatedItems", out var unevaluated)) s.UnevaluatedItems = Of(unevaluated);
            if (o.ContainsKey("contains"))
            {
                s.MinContains = Num(o, "minContains") ?? 1;
                s.MaxContains = Num(o, "maxContains");
            }
        }
        return s;
    }

    private static double? Num(JsonObject o, string key) =>
        o[key] is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<double>(out var d) ? d : null;

    private static Regex? Regex(string pattern)
    {
        try
        {
            return new Regex(pattern, RegexOptions.None, TimeSpan.FromMilliseconds(100));
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    /// <summary>The node a <c>$ref</c> names: a pointer into this document, or a referenced schema by name (and pointer).</summary>
    private JsonNode? Resolve(string reference)
    {
        if (reference == "#") return document.Root;
        if (reference.StartsWith("#/", StringComparison.Ordinal)) return Pointer(document.Root, reference[2..]);
        var hash = reference.IndexOf('#');
        var name = hash >= 0 ? reference[..hash] : reference;
        if (!document.References.TryGetValue(name, out var referenced) && !other.References.TryGetValue(name, out referenced)) return null;
        return hash >= 0 && reference.Length > hash + 2 ? Pointer(referenced, reference[(hash + 2)..]) : referenced;
    }

    private static JsonNode? Pointer(JsonNode? root, string pointer)
    {
        foreach (var raw in pointer.Split('/'))
        {
            var part = raw.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal);
            root = root switch
            {
                JsonObject o => o[part],
                JsonArray a when int.TryParse(part, out var i) && i >= 0 && i < a.Count => a[i],
                _ => null,
            };
        }
        return root;
    }
}
