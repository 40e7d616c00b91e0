using System.Text.Json;
using System.Text.Json.Nodes;

namespace Tributary.SchemaRegistry.Avro;

/// <summary>Whether a JSON default value fits an Avro type, per the specification's table (a union's default fits its first branch).</summary>
internal static class AvroDefaults
{
    public static bool IsValid(AvroType type, JsonNode? value) => IsValid(type, value, new HashSet<AvroType>(ReferenceEqualityComparer.Instance));

    private static bool IsValid(AvroType type, JsonNode? value, HashSet<AvroType> visiting)
    {
        var kind = value?.GetValueKind() ?? JsonValueKind.Null;
        switch (type)
        {
            case AvroUnion u:
                return u.Branches.Count > 0 && IsValid(u.Branches[0], value, visiting);
            case AvroRecord r:
                if (value is not JsonObject obj) return false;
                if (!visiting.Add(r)) return true;
                try
                {
                    foreach (var f in r.Fields)
                    {
                        if (obj.TryGetPropertyValue(f.Name, out var fv))
                        {
                            if (!IsValid(f.Type, fv, visiting)) return false;
                        }
                        else if (!f.HasDefault)
                        {
                            return false;
                        }
                    }
                    return true;
                }
                finally
                {
                    visiting.Remove(r);
                }
            case AvroEnum e:
                return kind == JsonValueKind.String && e.Symbols.Contains(value!.GetValue<string>());
            case AvroFixed:
            case AvroPrimitive { Kind: "bytes" or "string" }:
                return kind == JsonValueKind.String;
            case AvroArray a:
                return value is JsonArray arr && arr.All(x => IsValid(a.Items, x, visiting));
            case AvroMap m:
                return value is JsonObject map && map.All(x => IsValid(m.Values, x.Value, visiting));
            case AvroPrimitive p:
                return p.Kind switch
                {
                    "null" => kind == JsonValueKind.Null,
                    "boolean" => kind is JsonValueKind.True or JsonValueKind.False,
                    "int" => kind == JsonValueKind.Number && value!.AsValue().TryGetValue<int>(out _),
                    "long" => kind == JsonValueKind.Number && value!.AsValue().TryGetValue<long>(out _),
                    "float" or "double" => kind == JsonValueKind.Number || (kind == JsonValueKind.String && value!.GetValue<string>() is "NaN" or "Infinity" or "-Infinity"),
                    _ => false,
                };
            default:
                return false;
        }
    }
}
