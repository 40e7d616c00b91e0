using System.Buffers.Binary;
using Tributary.Protocol.Records;

namespace Tributary.SchemaRegistry.Validation;

/// <summary>
/// Broker-side schema validation (topic configs <c>confluent.value.schema.validation</c> and
/// <c>confluent.key.schema.validation</c>): every record's value (key) must be in Confluent's wire format — magic
/// byte 0, then a 4-byte big-endian schema id — and the id must be registered under the topic's subject
/// (<c>{topic}-value</c> / <c>{topic}-key</c>, the TopicNameStrategy). The broker reads the configs and says which
/// parts to check; with neither, no batch is decoded.
/// </summary>
public sealed class RecordSchemaValidator(SchemaStore store)
{
    /// <summary>Null when the batches may be appended, else the reason (naming the record) they may not.</summary>
    /// <param name="keys">Check every record's key (the broker reads this from the topic's configs).</param>
    /// <param name="values">Check every record's value.</param>
    public string? Validate(string topic, bool keys, bool values, ReadOnlyMemory<byte> batches)
    {
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

    private string? Check(string subject, ReadOnlyMemory<byte>? data)
    {
        if (data is not { Length: >= 5 } bytes || bytes.Span[0] != 0)
            return "does not start with the schema registry magic byte and a schema id";
        var id = BinaryPrimitives.ReadInt32BigEndian(bytes.Span[1..5]);
        return store.SubjectHasId(subject, id) ? null : $"schema id {id} is not registered under subject {subject}";
    }
}
