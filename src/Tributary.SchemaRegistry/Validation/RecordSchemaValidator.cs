using System.Buffers.Binary;
using Tributary.Protocol.Records;

namespace Tributary.SchemaRegistry.Validation;

/// <summary>
/// Broker-side schema validation (topic configs <c>confluent.value.schema.validation</c> and
/// <c>confluent.key.schema.validation</c>): every record's value (key) must be in Confluent's wire format — magic
/// byte 0, then a 4-byte big-endian schema id — and the id must be registered under the topic's subject
/// (<c>{topic}-value</c> / <c>{topic}-key</c>, the TopicNameStrategy). Topics without the configs return at the
/// first dictionary lookup and never decode a batch.
/// </summary>
public sealed class RecordSchemaValidator(SchemaStore store)
{
    public const string ValueConfig = "confluent.value.schema.validation";
    public const string KeyConfig = "confluent.key.schema.validation";

    /// <summary>Whether a topic's configs turn validation on for its keys or values.</summary>
    public static bool IsRequired(IReadOnlyDictionary<string, string> topicConfigs) => IsOn(topicConfigs, ValueConfig) || IsOn(topicConfigs, KeyConfig);

    /// <summary>Null when the batches may be appended, else the reason (naming the record) they may not.</summary>
    public string? Validate(string topic, IReadOnlyDictionary<string, string> topicConfigs, ReadOnlyMemory<byte> batches)
    {
        var values = IsOn(topicConfigs, ValueConfig);
        var keys = IsOn(topicConfigs, KeyConfig);
        if (!values && !keys) return null;
        List<DecodedRecord> records;
        try
        {
            records = RecordReader.ReadAllBatches(batches);
        }
        catch (InvalidRecordException e)
        {
            return $"Records of topic {topic} could not be decoded for schema validation: {e.Message}";
        }
        for (var i = 0; i < records.Count; i++)
        {
            if (values && Check(topic + "-value", records[i].Value) is { } valueProblem)
                return $"Record {i} (value) of the batch for topic {topic}: {valueProblem}";
            if (keys && Check(topic + "-key", records[i].Key) is { } keyProblem)
                return $"Record {i} (key) of the batch for topic {topic}: {keyProblem}";
        }
        return null;
    }

    private static bool IsOn(IReadOnlyDictionary<string, string> configs, string name) =>
        configs.TryGetValue(name, out var v) && string.Equals(v.Trim(), "true", StringComparison.OrdinalIgnoreCase);

    private string? Check(string subject, ReadOnlyMemory<byte>? data)
    {
        if (data is not { Length: >= 5 } bytes || bytes.Span[0] != 0)
            return "does not start with the schema registry magic byte and a schema id";
        var id = BinaryPrimitives.ReadInt32BigEndian(bytes.Span[1..5]);
        return store.SubjectHasId(subject, id) ? null : $"schema id {id} is not registered under subject {subject}";
    }
}
