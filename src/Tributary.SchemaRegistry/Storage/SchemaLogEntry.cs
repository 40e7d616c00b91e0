using System.Text.Json;
using System.Text.Json.Nodes;

namespace Tributary.SchemaRegistry.Storage;

/// <summary>
/// One record of <c>_schemas</c>, decoded and checked before it touches the store's state: every field the store
/// reads has the type it expects, so applying an entry cannot fail. A value of null is a tombstone.
/// </summary>
internal abstract record SchemaLogEntry
{
    public sealed record Schema(string Subject, int Version, SubjectVersion? Value) : SchemaLogEntry;

    public sealed record Config(string? Subject, JsonObject? Value) : SchemaLogEntry;

    public sealed record Mode(string? Subject, string? Value) : SchemaLogEntry;

    /// <summary>Soft-deletes the subject's versions up to <see cref="UpTo"/>.</summary>
    public sealed record DeleteSubject(string Subject, int UpTo) : SchemaLogEntry;

    /// <summary>Drops the subject's soft-deleted versions.</summary>
    public sealed record ClearSubject(string Subject) : SchemaLogEntry;

    /// <summary>Tributary's id high-water mark, kept through compaction.</summary>
    public sealed record MaxId(int Value) : SchemaLogEntry;

    /// <summary>A key type this registry does not act on (Confluent skips those too).</summary>
    public sealed record Ignored : SchemaLogEntry;

    /// <summary>Decodes a key and value in Confluent's layouts (<see cref="SchemaLogRecords"/>).</summary>
    /// <exception cref="SchemaLogFormatException">The key or value is not JSON, or a field has the wrong shape.</exception>
    public static SchemaLogEntry Decode(byte[] keyBytes, byte[]? valueBytes)
    {
        try
        {
            var key = JsonNode.Parse(keyBytes) as JsonObject ?? throw new SchemaLogFormatException("the key is not a JSON object");
            JsonObject? value = null;
            if (valueBytes is not null)
                value = JsonNode.Parse(valueBytes) as JsonObject ?? throw new SchemaLogFormatException("the value is not a JSON object");
            var subject = (string?)key["subject"];
            switch ((string?)key["keytype"])
            {
                case "SCHEMA":
                    return new Schema(
                        subject ?? throw new SchemaLogFormatException("a SCHEMA key without a subject"),
                        (int?)key["version"] ?? throw new SchemaLogFormatException("a SCHEMA key without a version"),
                        value is null ? null : SchemaLogRecords.ParseSchemaValue(value));
                case "CONFIG":
                    _ = (string?)value?["compatibilityLevel"]; // the store reads it as a string
                    return new Config(subject, value);
                case "MODE":
                    return new Mode(subject, (string?)value?["mode"]);
                case "DELETE_SUBJECT" when subject is not null && value is not null:
                    return new DeleteSubject(subject, (int?)value["version"] ?? int.MaxValue);
                case "CLEAR_SUBJECT" when subject is not null && value is not null:
                    return new ClearSubject(subject);
                case "NOOP" when value is not null && value["tributaryMaxId"] is { } maxId:
                    return new MaxId((int)maxId);
                default:
                    return new Ignored();
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or OverflowException)
        {
            // JsonNode's typed reads throw these when a field holds another JSON type than the layout's.
            throw new SchemaLogFormatException(e.Message);
        }
    }
}

/// <summary>A <c>_schemas</c> record that is not in Confluent's layouts.</summary>
internal sealed class SchemaLogFormatException(string message) : Exception(message);
