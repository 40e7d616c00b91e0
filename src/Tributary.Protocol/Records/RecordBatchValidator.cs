namespace Tributary.Protocol.Records;

/// <summary>
/// Checks the record batches of a produce request as Kafka's LogValidator does, without materialising any record:
/// per batch, the framing (length fits, at least a header), magic 2, the CRC-32C, the codec id, the size limit, the
/// counts (recordsCount ≥ 1 and lastOffsetDelta = recordsCount - 1, which holds for every batch a producer sends),
/// and that the records section holds exactly those records (<see cref="RecordWalker"/>; compressed sections are
/// decompressed once, bounded). So a batch that lies about its records is never stored and never moves the log end.
/// Uncompressed batches are checked in place without allocating; messages are constant strings so a rejection does
/// not allocate either.
/// </summary>
public static class RecordBatchValidator
{
    public static RecordsError Validate(ReadOnlySpan<byte> records, int maxBatchBytes, out BatchSummary summary) =>
        Validate(records, maxBatchBytes, allowZstd: true, out summary, out _);

    public static RecordsError Validate(ReadOnlySpan<byte> records, int maxBatchBytes, out BatchSummary summary, out string? message) =>
        Validate(records, maxBatchBytes, allowZstd: true, out summary, out message);

    /// <param name="allowZstd">False for produce versions below 7, where Kafka answers UNSUPPORTED_COMPRESSION_TYPE for zstd.</param>
    public static RecordsError Validate(ReadOnlySpan<byte> records, int maxBatchBytes, bool allowZstd, out BatchSummary summary, out string? message)
    {
        summary = default;
        if (records.IsEmpty)
        {
            message = "The request contains no record batch.";
            return RecordsError.CorruptMessage;
        }

        int batches = 0;
        long count = 0;
        long maxTimestamp = -1;
        int codecs = 0;
        int lastSequence = -1;
        bool transactional = false, control = false;
        long firstTimestamp = -1, producerId = -1;
        short producerEpoch = -1;
        int baseSequence = -1;

        while (!records.IsEmpty)
        {
            if (records.Length < RecordBatchHeader.MagicOffset + 1)
            {
                message = "Truncated record batch: fewer bytes than a batch header.";
                return RecordsError.CorruptMessage;
            }

            sbyte magic = (sbyte)records[RecordBatchHeader.MagicOffset];
            if (magic is 0 or 1)
            {
                message = "Message format v0/v1 (magic 0 or 1) is not supported; use record batches (magic 2).";
                return RecordsError.UnsupportedForMessageFormat;
            }

            if (magic != 2)
            {
                message = "Unknown record batch magic byte.";
                return RecordsError.CorruptMessage;
            }

            int batchLength = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(records[RecordBatchHeader.BatchLengthOffset..]);
            if (batchLength < RecordBatchHeader.HeaderSize - RecordBatchHeader.LogOverhead)
            {
                message = "Record batch length is smaller than a batch header.";
                return RecordsError.CorruptMessage;
            }

            long total = (long)batchLength + RecordBatchHeader.LogOverhead;
            if (total > maxBatchBytes)
            {
                message = "Record batch is larger than the maximum allowed size (max.message.bytes).";
                return RecordsError.MessageTooLarge;
            }

            if (total > records.Length)
            {
                message = "Record batch length runs past the end of the request.";
                return RecordsError.CorruptMessage;
            }

            ReadOnlySpan<byte> batch = records[..(int)total];
            var header = new RecordBatchHeader(batch);
            if (header.Crc != RecordBatchHeader.ComputeCrc(batch))
            {
                message = "Record batch CRC-32C does not match its contents.";
                return RecordsError.CorruptMessage;
            }

            var codec = header.Codec;
            if (codec > CompressionCodec.Zstd)
            {
                message = "Unknown compression codec id in record batch attributes.";
                return RecordsError.UnsupportedCompressionType;
            }

            if (codec == CompressionCodec.Zstd && !allowZstd)
            {
                message = "zstd compression needs produce request version 7 or later.";
                return RecordsError.UnsupportedCompressionType;
            }

            int recordsCount = header.RecordsCount;
            int lastOffsetDelta = header.LastOffsetDelta;
            if (recordsCount < 1)
            {
                message = "Record batch has no records.";
                return RecordsError.InvalidRecord;
            }

            if (lastOffsetDelta != recordsCount - 1)
            {
                message = "Record batch lastOffsetDelta does not match its record count.";
                return RecordsError.InvalidRecord;
            }

            var recordsError = WalkRecords(batch[RecordBatchHeader.HeaderSize..], codec, recordsCount, maxBatchBytes, out message);
            if (recordsError != RecordsError.None)
            {
                return recordsError;
            }

            if (batches == 0)
            {
                firstTimestamp = header.BaseTimestamp;
                producerId = header.ProducerId;
                producerEpoch = header.ProducerEpoch;
                baseSequence = header.BaseSequence;
            }

            transactional |= header.IsTransactional;
            control |= header.IsControl;
            codecs |= 1 << (int)codec;
            maxTimestamp = Math.Max(maxTimestamp, header.MaxTimestamp);
            lastSequence = header.BaseSequence < 0 ? -1 : header.BaseSequence + lastOffsetDelta;
            count += lastOffsetDelta + 1L;
            batches++;
            records = records[(int)total..];
        }

        summary = new BatchSummary(batches, count, firstTimestamp, maxTimestamp, producerId, producerEpoch,
            baseSequence, lastSequence, transactional, control, codecs);
        message = null;
        return RecordsError.None;
    }

    /// <summary>
    /// The records section holds exactly the announced records (<see cref="RecordWalker"/>). An uncompressed section
    /// is walked in place without allocating. A compressed one is decompressed once, as it is walked, through a pooled
    /// window (lz4: one decoded block at a time, <see cref="Lz4RecordSource"/>; snappy: decoded whole, into pooled
    /// memory), to at most <see cref="CompressionCodecs.MaxDecompressedBytes"/>:
    /// beyond it MESSAGE_TOO_LARGE, undecodable data CORRUPT_MESSAGE, records that lie INVALID_RECORD, as Kafka answers.
    /// </summary>
    private static RecordsError WalkRecords(ReadOnlySpan<byte> body, CompressionCodec codec, int count, int maxBatchBytes, out string? message)
    {
        if (codec == CompressionCodec.None)
        {
            message = RecordWalker.Walk(body, count);
            return message is null ? RecordsError.None : RecordsError.InvalidRecord;
        }

        int maxBytes = CompressionCodecs.MaxDecompressedBytes(maxBatchBytes);
        try
        {
            if (codec == CompressionCodec.Snappy)
            {
                using var decompressed = CompressionCodecs.DecompressPooled(codec, body, maxBytes);
                message = RecordWalker.Walk(decompressed.Span, count);
                return message is null ? RecordsError.None : RecordsError.InvalidRecord;
            }

            return codec == CompressionCodec.Lz4
                ? WalkLz4(body, count, maxBytes, out message)
                : WalkStream(body, codec, count, maxBytes, out message);
        }
        catch (DecompressionLimitException)
        {
            message = TooLarge;
            return RecordsError.MessageTooLarge;
        }
        catch (Exception e) when (e is InvalidRecordException || CompressionCodecs.IsCodecFailure(e))
        {
            message = "Record batch's compressed records cannot be decompressed.";
            return RecordsError.CorruptMessage;
        }
    }

    private const string TooLarge = "Record batch expands beyond 64 x max.message.bytes when decompressed.";

    private static RecordsError WalkLz4(ReadOnlySpan<byte> body, int count, int maxBytes, out string? message)
    {
        var source = new Lz4RecordSource(body, maxBytes);
        try
        {
            return WalkSource(ref source, count, out message);
        }
        finally
        {
            source.Dispose();
        }
    }

    /// <summary>Walks a decompressing source; running past the bound is MESSAGE_TOO_LARGE, whatever the walk said.</summary>
    private static RecordsError WalkSource<TSource>(ref TSource source, int count, out string? message)
        where TSource : IBoundedRecordSource, allows ref struct
    {
        message = RecordWalker.Walk(ref source, count);
        if (source.LimitExceeded)
        {
            message = TooLarge;
            return RecordsError.MessageTooLarge;
        }

        return message is null ? RecordsError.None : RecordsError.InvalidRecord;
    }

    private static unsafe RecordsError WalkStream(ReadOnlySpan<byte> body, CompressionCodec codec, int count, int maxBytes, out string? message)
    {
        var window = PooledBytes.Pool.Rent(16 << 10);
        try
        {
            fixed (byte* pointer = body)
            {
                using var input = new UnmanagedMemoryStream(pointer, body.Length);
                using var decoder = CompressionCodecs.OpenDecoder(codec, input);
                var source = new StreamRecordSource(decoder, window, maxBytes);
                return WalkSource(ref source, count, out message);
            }
        }
        finally
        {
            PooledBytes.Pool.Return(window);
        }
    }
}
