namespace Tributary.Protocol.Records;

/// <summary>A header of a record: a UTF-8 key and an optional value.</summary>
public readonly record struct RecordHeader(string Key, ReadOnlyMemory<byte>? Value);

/// <summary>One decoded record. Offset and timestamp are absolute (batch base + delta; LogAppendTime batches report the batch's max timestamp).</summary>
public readonly record struct DecodedRecord(
    long Offset,
    long Timestamp,
    ReadOnlyMemory<byte>? Key,
    ReadOnlyMemory<byte>? Value,
    IReadOnlyList<RecordHeader> Headers);
