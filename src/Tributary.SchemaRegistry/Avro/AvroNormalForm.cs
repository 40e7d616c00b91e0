using System.Text.Json.Nodes;

namespace Tributary.SchemaRegistry.Avro;

/// <summary>
/// Writes the normalized JSON of a parsed Avro schema: a named type in full at its first occurrence and by full
/// name afterwards, attributes in a fixed order, no docs or namespaces (names are fully qualified).
/// </summary>
internal static class AvroNormalForm
{
    /// <exception cref="RegistryException">42201 when named types nest deeper than <see cref="SchemaNesting.MaxDepth"/>.</exception>
    public static string Write(AvroType root) => ToNode(root, new HashSet<string>(StringComparer.Ordinal), 1)!.ToJsonString(Http.RegistryJson.Options);

    /// <remarks>A named type defined elsewhere (a reference) is written in full where first used, so the depth follows names, not the text.</remarks>
    private static JsonNode ToNode(AvroType type, HashSet<string> written, int depth)
    {
        SchemaNesting.Check(depth);
        switch (type)
        {
            case AvroNamed named when !written.Add(named.FullName):
                return JsonValue.Create(named.FullName);
            case AvroRecord r:
                {
                    var obj = new JsonObject { ["type"] = r.IsError ? "error" : "record", ["name"] = r.FullName };
                    if (r.Aliases.Count > 0) obj["aliases"] = new JsonArray(r.Aliases.Order(StringComparer.Ordinal).Select(a => (JsonNode)JsonValue.Create(a)).ToArray());
                    var fields = new JsonArray();
                    foreach (var f in r.Fields)
                    {
                        var fo = new JsonObject { ["name"] = f.Name, ["type"] = ToNode(f.Type, written, depth + 1) };
                        if (f.HasDefault) fo["default"] = f.Default?.DeepClone();
                        if (f.Aliases.Count > 0) fo["aliases"] = new JsonArray(f.Aliases.Order(StringComparer.Ordinal).Select(a => (JsonNode)JsonValue.Create(a)).ToArray());
                        if (f.Order is not null and not "ascending") fo["order"] = f.Order;
                        fields.Add(fo);
                    }
                    obj["fields"] = fields;
                    return obj;
                }
            case AvroEnum e:
                {
                    var obj = new JsonObject { ["type"] = "enum", ["name"] = e.FullName };
                    if (e.Aliases.Count > 0) obj["aliases"] = new JsonArray(e.Aliases.Order(StringComparer.Ordinal).Select(a => (JsonNode)JsonValue.Create(a)).ToArray());
                    obj["symbols"] = new JsonArray(e.Symbols.Select(s => (JsonNode)JsonValue.Create(s)).ToArray());
                    if (e.Default is not null) obj["default"] = e.Default;
                    return obj;
                }
            case AvroFixed f:
                {
                    var obj = new JsonObject { ["type"] = "fixed", ["name"] = f.FullName };
                    if (f.Aliases.Count > 0) obj["aliases"] = new JsonArray(f.Aliases.Order(StringComparer.Ordinal).Select(a => (JsonNode)JsonValue.Create(a)).ToArray());
                    obj["size"] = f.Size;
                    return WithLogical(obj, f);
                }
            case AvroArray a:
                return WithLogical(new JsonObject { ["type"] = "array", ["items"] = ToNode(a.Items, written, depth + 1) }, a);
            case AvroMap m:
                return WithLogical(new JsonObject { ["type"] = "map", ["values"] = ToNode(m.Values, written, depth + 1) }, m);
            case AvroUnion u:
                return new JsonArray(u.Branches.Select(b => ToNode(b, written, depth + 1)).ToArray());
            default:
                return type.LogicalType is null ? JsonValue.Create(type.Kind) : WithLogical(new JsonObject { ["type"] = type.Kind }, type);
        }
    }

    private static JsonObject WithLogical(JsonObject obj, AvroType type)
    {
        if (type.LogicalType is not null) obj["logicalType"] = type.LogicalType;
        if (type.Precision is { } precision) obj["precision"] = precision;
        if (type.Scale is { } scale) obj["scale"] = scale;
        return obj;
    }
}
