using Tributary.Protocol.Records;

namespace Tributary.Storage;

/// <summary>
/// Kafka's LogValidator rule for <c>message.timestamp.before.max.ms</c> / <c>message.timestamp.after.max.ms</c>
/// (KIP-937): on a CreateTime topic every record's timestamp must lie within [now − before, now + after] of the
/// broker's clock; a record without a timestamp (-1) is not checked, and LogAppendTime topics are not checked at all
/// (the broker overwrites the timestamps). An append holding such records is refused whole with INVALID_TIMESTAMP and
/// one record error per record out of range (its index in its batch), as Kafka answers. Only topics that set a bound
/// pay for this walk over the records (compressed batches are decompressed for it, as Kafka does); the coordinator's
/// control batches are not checked. Runs after <see cref="RecordBatchValidator"/>, so a compressed body here is
/// known to decompress within the bound.
/// </summary>
internal static class TimestampRangeValidator
{
    /// <summary>True when the configuration asks for the check at all (both bounds default to Long.MAX_VALUE: none).</summary>
    public static bool Applies(LogConfig config) =>
        config.TimestampType == TimestampType.CreateTime
        && (config.TimestampBeforeMaxMs != long.MaxValue || config.TimestampAfterMaxMs != long.MaxValue);

    /// <returns>Null when every record is in range; else the refusal.</returns>
    public static StorageException? Check(ReadOnlySpan<byte> batches, string topicPartition, long now, long beforeMaxMs, long afterMaxMs,
        int maxDecompressedBytes)
    {
        // now ≥ 0 and both bounds ≥ 0, so the lower bound cannot overflow; the upper one saturates.
        long lowest = now - beforeMaxMs;
        long highest = afterMaxMs > long.MaxValue - now ? long.MaxValue : now + afterMaxMs;
        List<RecordError>? errors = null;
        try
        {
            for (int position = 0; position < batches.Length;)
            {
                var header = new RecordBatchHeader(batches[position..]);
                int size = header.TotalSize;
                if (!header.IsControl)
                {
                    Collect(batches.Slice(position, size), header, lowest, highest, maxDecompressedBytes, ref errors);
                }

                position += size;
            }
        }
        catch (InvalidRecordException e)
        {
            return new StorageException(StorageError.CorruptMessage, $"Records of {topicPartition} could not be decoded: {e.Message}", e);
        }

        if (errors is null)
        {
            return null;
        }

        return new StorageException(StorageError.InvalidTimestamp, "One or more records have been rejected due to invalid timestamp")
        {
            RecordErrors = errors,
        };
    }

    private static void Collect(ReadOnlySpan<byte> batch, RecordBatchHeader header, long lowest, long highest, int maxDecompressedBytes,
        ref List<RecordError>? errors)
    {
        var body = batch[RecordBatchHeader.HeaderSize..];
        using var decompressed = header.Codec == CompressionCodec.None ? default
            : CompressionCodecs.DecompressPooled(header.Codec, body, maxDecompressedBytes);
        var data = header.Codec == CompressionCodec.None ? body : decompressed.Span;
        long baseTimestamp = header.BaseTimestamp;
        foreach (var record in new RecordPrefixes(data, header.RecordsCount))
        {
            long timestamp = baseTimestamp + record.TimestampDelta;
            if (timestamp != -1 && (timestamp < lowest || timestamp > highest))
            {
                (errors ??= []).Add(new RecordError(record.Index,
                    $"Timestamp {timestamp} of message with offset {record.OffsetDelta} is out of range. The timestamp should be within [{lowest}, {highest}]"));
            }
        }
    }
}
