using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Tributary.SchemaRegistry.Avro;

/// <summary>
/// Parses Avro schema JSON into <see cref="AvroType"/> following the specification: namespaces inherited from the
/// enclosing named type, names defined once, primitive names reserved, field defaults checked against the field's
/// type (for a union, its first branch). Named types of referenced schemas are defined first, so a schema can use
/// them by name.
/// </summary>
internal sealed partial class AvroParser
{
    private static readonly HashSet<string> Primitives = ["null", "boolean", "int", "long", "float", "double", "bytes", "string"];

    private readonly Dictionary<string, AvroNamed> _named = new(StringComparer.Ordinal);

    public IReadOnlyDictionary<string, AvroNamed> Named => _named;

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex NamePattern();

    public AvroType Parse(string json)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(json);
        }
        catch (JsonException e)
        {
            throw new AvroSchemaException($"is not valid JSON: {e.Message}");
        }
        return Parse(node, null);
    }

    public AvroType Parse(JsonNode? node, string? space)
    {
        switch (node)
        {
            case JsonValue v when v.TryGetValue<string>(out var name):
                return Resolve(name, space);
            case JsonArray branches:
                var types = branches.Select(b => Parse(b, space)).ToList();
                for (var i = 0; i < types.Count; i++)
                {
                    if (types[i] is AvroUnion) throw new AvroSchemaException("a union may not immediately contain another union");
                    for (var j = 0; j < i; j++)
                        if (BranchKey(types[i]) == BranchKey(types[j]))
                            throw new AvroSchemaException($"duplicate in union: {BranchKey(types[i])}");
                }
                return new AvroUnion(types);
            case JsonObject obj:
                return ParseObject(obj, space);
            default:
                throw new AvroSchemaException($"unexpected JSON in schema: {node?.ToJsonString() ?? "null"}");
        }
    }

    internal static string BranchKey(AvroType t) => t is AvroNamed n ? n.FullName : t.Kind;

    private AvroType Resolve(string name, string? space)
    {
        if (Primitives.Contains(name)) return new AvroPrimitive(name);
        if (!name.Contains('.') && space is { Length: > 0 } && _named.TryGetValue(space + "." + name, out var inSpace)) return inSpace;
        if (_named.TryGetValue(name, out var named)) return named;
        throw new AvroSchemaException($"undefined name: {name}");
    }

    private AvroType ParseObject(JsonObject obj, string? space)
    {
        var typeNode = obj["type"] ?? throw new AvroSchemaException($"no type: {obj.ToJsonString()}");
        if (typeNode is not JsonValue tv || !tv.TryGetValue<string>(out var type))
            return Parse(typeNode, space);
        var logical = obj["logicalType"] is JsonValue lv && lv.TryGetValue<string>(out var l) ? l : null;
        int? precision = obj["precision"] is JsonValue pv && pv.TryGetValue<int>(out var pn) ? pn : null;
        int? scale = obj["scale"] is JsonValue scv && scv.TryGetValue<int>(out var sn) ? sn : null;
        switch (type)
        {
            case "record":
            case "error":
                {
                    var (fullName, ns) = DefineName(obj, space);
                    var record = new AvroRecord(fullName, Aliases(obj, ns), type == "error");
                    Register(record);
                    if (obj["fields"] is not JsonArray fields) throw new AvroSchemaException($"record {fullName} has no fields array");
                    var seen = new HashSet<string>(StringComparer.Ordinal);
                    foreach (var f in fields)
                    {
                        if (f is not JsonObject field) throw new AvroSchemaException($"field of {fullName} is not an object");
                        var fname = field["name"] is JsonValue fn && fn.TryGetValue<string>(out var s) ? s : throw new AvroSchemaException($"field without a name in {fullName}");
                        if (!NamePattern().IsMatch(fname)) throw new AvroSchemaException($"invalid field name: {fname}");
                        if (!seen.Add(fname)) throw new AvroSchemaException($"duplicate field {fname} in record {fullName}");
                        var ftype = Parse(field["type"] ?? throw new AvroSchemaException($"field {fname} has no type"), ns);
                        var hasDefault = field.ContainsKey("default");
                        var dflt = field["default"];
                        if (hasDefault && !AvroDefaults.IsValid(ftype, dflt))
                            throw new AvroSchemaException($"invalid default for field {fname}: {dflt?.ToJsonString() ?? "null"} not a {Describe(ftype)}");
                        var faliases = field["aliases"] is JsonArray fa ? fa.Select(a => a!.GetValue<string>()).ToList() : [];
                        var order = field["order"] is JsonValue ov && ov.TryGetValue<string>(out var o) ? o : null;
                        record.Fields.Add(new AvroField(fname, faliases, ftype, dflt, hasDefault, order));
                    }
                    return record;
                }
            case "enum":
                {
                    var (fullName, ns) = DefineName(obj, space);
                    if (obj["symbols"] is not JsonArray symbolsNode) throw new AvroSchemaException($"enum {fullName} has no symbols");
                    var symbols = symbolsNode.Select(s => s!.GetValue<string>()).ToList();
                    foreach (var s in symbols)
                        if (!NamePattern().IsMatch(s)) throw new AvroSchemaException($"invalid enum symbol: {s}");
                    if (symbols.Distinct().Count() != symbols.Count) throw new AvroSchemaException($"duplicate enum symbol in {fullName}");
                    var dflt = obj["default"] is JsonValue dv && dv.TryGetValue<string>(out var d) ? d : null;
                    if (dflt is not null && !symbols.Contains(dflt)) throw new AvroSchemaException($"enum default {dflt} is not a symbol of {fullName}");
                    var e = new AvroEnum(fullName, Aliases(obj, ns), symbols, dflt) { LogicalType = logical };
                    Register(e);
                    return e;
                }
            case "fixed":
                {
                    var (fullName, ns) = DefineName(obj, space);
                    if (obj["size"] is not JsonValue sv || !sv.TryGetValue<int>(out var size) || size < 0)
                        throw new AvroSchemaException($"fixed {fullName} needs a non-negative size");
                    var f = new AvroFixed(fullName, Aliases(obj, ns), size) { LogicalType = logical, Precision = precision, Scale = scale };
                    Register(f);
                    return f;
                }
            case "array":
                return new AvroArray(Parse(obj["items"] ?? throw new AvroSchemaException("array without items"), space)) { LogicalType = logical };
            case "map":
                return new AvroMap(Parse(obj["values"] ?? throw new AvroSchemaException("map without values"), space)) { LogicalType = logical };
            default:
                if (Primitives.Contains(type)) return new AvroPrimitive(type) { LogicalType = logical, Precision = precision, Scale = scale };
                return Resolve(type, space);
        }
    }

    private (string FullName, string? Namespace) DefineName(JsonObject obj, string? space)
    {
        var name = obj["name"] is JsonValue nv && nv.TryGetValue<string>(out var n) ? n : throw new AvroSchemaException($"named type without a name: {obj.ToJsonString()}");
        string? ns = obj["namespace"] is JsonValue sv && sv.TryGetValue<string>(out var s) ? s : space;
        string full;
        if (name.Contains('.'))
        {
            full = name;
            ns = name[..name.LastIndexOf('.')];
        }
        else
        {
            full = string.IsNullOrEmpty(ns) ? name : ns + "." + name;
        }
        foreach (var part in full.Split('.'))
            if (!NamePattern().IsMatch(part)) throw new AvroSchemaException($"invalid name: {full}");
        if (Primitives.Contains(full)) throw new AvroSchemaException($"a named type may not be called {full}");
        return (full, string.IsNullOrEmpty(ns) ? null : ns);
    }

    private static List<string> Aliases(JsonObject obj, string? ns) =>
        obj["aliases"] is JsonArray a
            ? a.Select(x => x!.GetValue<string>()).Select(x => x.Contains('.') || string.IsNullOrEmpty(ns) ? x : ns + "." + x).ToList()
            : [];

    private void Register(AvroNamed named)
    {
        if (!_named.TryAdd(named.FullName, named)) throw new AvroSchemaException($"can't redefine: {named.FullName}");
    }

    internal static string Describe(AvroType t) => t is AvroNamed n ? $"{t.Kind} {n.FullName}" : t.Kind;
}

internal sealed class AvroSchemaException(string message) : Exception(message);
