using System.Text.Json;
using System.Text.Json.Nodes;

namespace Tributary.SchemaRegistry.Storage;

/// <summary>
/// The key and value layouts of Confluent Schema Registry's <c>_schemas</c> topic, so a registry's history can be
/// copied between Confluent and Tributary. Keys are JSON objects with a <c>keytype</c>:
/// <code>
/// SCHEMA          {"keytype":"SCHEMA","subject":"s","version":1,"magic":1}
///                 value {"subject":"s","version":1,"id":3,"schemaType":"JSON","references":[...],
///                        "metadata":{...},"ruleSet":{...},"schema":"...","deleted":false}   (null = permanently deleted)
/// CONFIG          {"keytype":"CONFIG","subject":null|"s","magic":0}  value {"compatibilityLevel":"FULL",...} (null = removed)
/// MODE            {"keytype":"MODE","subject":null|"s","magic":0}    value {"mode":"READONLY"} (null = removed)
/// DELETE_SUBJECT  {"keytype":"DELETE_SUBJECT","subject":"s","magic":0} value {"subject":"s","version":N}
/// CLEAR_SUBJECT   {"keytype":"CLEAR_SUBJECT","subject":"s","magic":0}  value {"subject":"s"}
/// NOOP            {"keytype":"NOOP","magic":0}  Tributary's value {"tributaryMaxId":N} keeps the id high-water mark
///                 through compaction (Confluent ignores NOOP values)
/// </code>
/// <c>schemaType</c> is omitted for AVRO, as Confluent writes it. Unknown key types are skipped on replay.
/// </summary>
internal static class SchemaLogRecords
{
    public static byte[] SchemaKey(string subject, int version) =>
        Serialize(new JsonObject { ["keytype"] = "SCHEMA", ["subject"] = subject, ["version"] = version, ["magic"] = 1 });

    public static byte[] ConfigKey(string? subject) =>
        Serialize(new JsonObject { ["keytype"] = "CONFIG", ["subject"] = subject, ["magic"] = 0 });

    public static byte[] ModeKey(string? subject) =>
        Serialize(new JsonObject { ["keytype"] = "MODE", ["subject"] = subject, ["magic"] = 0 });

    public static byte[] NoopKey() => Serialize(new JsonObject { ["keytype"] = "NOOP", ["magic"] = 0 });

    public static byte[] DeleteSubjectKey(string subject) =>
        Serialize(new JsonObject { ["keytype"] = "DELETE_SUBJECT", ["subject"] = subject, ["magic"] = 0 });

    public static byte[] SchemaValue(SubjectVersion v)
    {
        var obj = new JsonObject { ["subject"] = v.Subject, ["version"] = v.Version, ["id"] = v.Id };
        if (v.Content.SchemaType != SchemaTypes.Avro) obj["schemaType"] = v.Content.SchemaType;
        if (v.Content.References.Count > 0) obj["references"] = ReferencesToJson(v.Content.References);
        if (v.Content.Metadata is not null) obj["metadata"] = v.Content.Metadata.DeepClone();
        if (v.Content.RuleSet is not null) obj["ruleSet"] = v.Content.RuleSet.DeepClone();
        obj["schema"] = v.Content.Schema;
        obj["deleted"] = v.Deleted;
        return Serialize(obj);
    }

    public static byte[] DeleteSubjectValue(string subject, int version) =>
        Serialize(new JsonObject { ["subject"] = subject, ["version"] = version });

    public static JsonArray ReferencesToJson(IEnumerable<SchemaReference> references) =>
        new(references.Select(r => (JsonNode)new JsonObject { ["name"] = r.Name, ["subject"] = r.Subject, ["version"] = r.Version }).ToArray());

    public static List<SchemaReference> ReferencesFromJson(JsonNode? node) =>
        node is JsonArray arr
            ? arr.OfType<JsonObject>().Select(r => new SchemaReference(
                (string?)r["name"] ?? "", (string?)r["subject"] ?? "", r["version"] is JsonValue v && v.TryGetValue<int>(out var n) ? n : -1)).ToList()
            : [];

    /// <exception cref="SchemaLogFormatException">A required field is missing.</exception>
    /// <exception cref="InvalidOperationException">A field holds another JSON type (see <see cref="SchemaLogEntry.Decode"/>).</exception>
    public static SubjectVersion ParseSchemaValue(JsonObject value)
    {
        var content = new SchemaContent(
            SchemaTypes.Normalize((string?)value["schemaType"]),
            (string?)value["schema"] ?? "",
            ReferencesFromJson(value["references"]),
            value["metadata"]?.DeepClone(),
            value["ruleSet"]?.DeepClone());
        return new SubjectVersion(
            (string?)value["subject"] ?? throw new SchemaLogFormatException("a schema value without a subject"),
            (int?)value["version"] ?? throw new SchemaLogFormatException("a schema value without a version"),
            (int?)value["id"] ?? throw new SchemaLogFormatException("a schema value without an id"),
            content,
            (bool?)value["deleted"] ?? false);
    }

    public static byte[] Serialize(JsonNode node) => JsonSerializer.SerializeToUtf8Bytes(node, Http.RegistryJson.Options);
}
