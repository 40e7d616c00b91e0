using Tributary.Protocol.Records;

namespace Tributary.Storage.Cleaning;

/// <summary>
/// Kafka's LogValidator rule for compacted topics: every record needs a key (compaction keeps the last record per
/// key, so a keyless record could never be compacted). An append holding keyless records is refused whole with
/// INVALID_RECORD and one record error per keyless record (its index in its batch), as Kafka answers. Only compacted
/// logs pay for this walk over the records (compressed batches are decompressed for it, as Kafka does); markers come
/// from the coordinator and are not checked. Runs after <see cref="RecordBatchValidator"/>, so a compressed body
/// here is known to decompress within the bound.
/// </summary>
internal static class CompactedTopicValidator
{
    /// <returns>Null when every record has a key; else the refusal (batches already validated structurally).</returns>
    public static StorageException? Check(ReadOnlySpan<byte> batches, string topicPartition, int maxDecompressedBytes)
    {
        List<RecordError>? errors = null;
        try
        {
            for (int position = 0; position < batches.Length;)
            {
                var header = new RecordBatchHeader(batches[position..]);
                int size = header.TotalSize;
                if (!header.IsControl)
                {
                    CollectKeyless(batches.Slice(position, size), header, topicPartition, maxDecompressedBytes, ref errors);
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

        string shown = string.Join(", ", errors.Take(3).Select(e => $"RecordError(batchIndex={e.BatchIndex}, message='{e.Message}')"));
        return new StorageException(StorageError.InvalidRecord,
            $"One or more records have been rejected due to {errors.Count} record errors in total, and only showing the first three errors at most: [{shown}]")
        {
            RecordErrors = errors,
        };
    }

    private static void CollectKeyless(ReadOnlySpan<byte> batch, RecordBatchHeader header, string topicPartition, int maxDecompressedBytes,
        ref List<RecordError>? errors)
    {
        var body = batch[RecordBatchHeader.HeaderSize..];
        using var decompressed = header.Codec == CompressionCodec.None ? default
            : CompressionCodecs.DecompressPooled(header.Codec, body, maxDecompressedBytes);
        var data = header.Codec == CompressionCodec.None ? body : decompressed.Span;
        foreach (var record in new RecordPrefixes(data, header.RecordsCount))
        {
            if (!record.HasKey)
            {
                (errors ??= []).Add(new RecordError(record.Index, $"Compacted topic cannot accept message without key in topic partition {topicPartition}."));
            }
        }
    }
}
