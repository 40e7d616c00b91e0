using System.Text;

namespace Tributary.Protocol.Records;

/// <summary>
/// Iterates the records of one batch, decompressing the records section first when the batch is
/// compressed. DecodedRecord layout: length varint, attributes int8, timestampDelta varlong, offsetDelta varint,
/// key (varint length, -1 = null), value (same), header count varint, then per header a key string
/// (varint length) and a value (varint length, -1 = null). Not used on the produce or fetch path.
/// </summary>
public sealed class RecordReader
{
    private readonly ReadOnlyMemory<byte> _records;
    private readonly long _baseOffset;
    private readonly long _baseTimestamp;
    private readonly long _logAppendTime;
    private readonly int _count;
    private int _position;
    private int _read;

    /// <param name="batch">Exactly one whole batch, header included.</param>
    /// <param name="maxDecompressedBytes">Bound on a compressed records section's decompressed size; negative for
    /// <see cref="CompressionCodecs.DefaultMaxDecompressedBytes"/>.</param>
    public RecordReader(ReadOnlyMemory<byte> batch, int maxDecompressedBytes = -1)
    {
        var span = batch.Span;
        if (span.Length < RecordBatchHeader.HeaderSize)
        {
            throw new InvalidRecordException("Batch is shorter than its header.");
        }

        var header = new RecordBatchHeader(span);
        if (header.Magic != 2)
        {
            throw new InvalidRecordException("Only magic 2 record batches can be read.");
        }

        int total = header.TotalSize;
        if (total < RecordBatchHeader.HeaderSize || total > span.Length)
        {
            throw new InvalidRecordException("Batch length does not match the data.");
        }

        _baseOffset = header.BaseOffset;
        _baseTimestamp = header.BaseTimestamp;
        _logAppendTime = header.IsLogAppendTime ? header.MaxTimestamp : -1;
        _count = header.RecordsCount;
        var body = batch[RecordBatchHeader.HeaderSize..total];
        _records = header.Codec == CompressionCodec.None ? body : CompressionCodecs.Decompress(header.Codec, body.Span, maxDecompressedBytes);
    }

    /// <summary>
    /// The first record of one whole batch with a timestamp at or after <paramref name="timestamp"/> and an offset at
    /// or after <paramref name="minOffset"/>. Reads only each record's length, timestamp and offset deltas, in place
    /// for uncompressed batches, so a lookup allocates nothing (compressed batches are decompressed first, into pooled
    /// memory returned at the end, to at most <paramref name="maxDecompressedBytes"/>).
    /// </summary>
    /// <exception cref="InvalidRecordException">The batch cannot be decoded, or expands beyond the bound.</exception>
    public static bool TryFindFirstAtOrAfter(ReadOnlySpan<byte> batch, long timestamp, long minOffset, int maxDecompressedBytes,
        out long offset, out long foundTimestamp)
    {
        var header = new RecordBatchHeader(batch);
        if (header.Magic != 2 || header.TotalSize > batch.Length || header.TotalSize < RecordBatchHeader.HeaderSize)
        {
            throw new InvalidRecordException("Not one whole magic 2 batch.");
        }

        var body = batch[RecordBatchHeader.HeaderSize..header.TotalSize];
        using var decompressed = header.Codec == CompressionCodec.None ? default
            : CompressionCodecs.DecompressPooled(header.Codec, body, maxDecompressedBytes);
        var records = header.Codec == CompressionCodec.None ? body : decompressed.Span;
        long logAppendTime = header.IsLogAppendTime ? header.MaxTimestamp : -1;
        foreach (var record in new RecordPrefixes(records, header.RecordsCount))
        {
            long recordTimestamp = logAppendTime >= 0 ? logAppendTime : header.BaseTimestamp + record.TimestampDelta;
            long recordOffset = header.BaseOffset + record.OffsetDelta;
            if (recordTimestamp >= timestamp && recordOffset >= minOffset)
            {
                offset = recordOffset;
                foundTimestamp = recordTimestamp;
                return true;
            }
        }

        offset = -1;
        foundTimestamp = -1;
        return false;
    }

    /// <summary>Records announced by the batch header.</summary>
    public int Count => _count;

    public bool TryRead(out DecodedRecord record)
    {
        if (_read >= _count)
        {
            record = default;
            return false;
        }

        var span = _records.Span;
        var prefix = RecordPrefixes.ReadAt(span, _position, _read);
        int end = prefix.End;
        var recordSpan = span[..end];
        ReadOnlyMemory<byte>? key = prefix.HasKey ? _records.Slice(prefix.KeyStart, prefix.KeyLength) : (ReadOnlyMemory<byte>?)null;
        int p = prefix.ValueStart;
        var value = ReadBytes(recordSpan, ref p);
        int headerCount = RecordVarint.ReadVarint(recordSpan, ref p);
        if (headerCount < 0 || headerCount > end - prefix.Start)
        {
            throw new InvalidRecordException("Invalid record header count.");
        }

        IReadOnlyList<RecordHeader> headers = [];
        if (headerCount > 0)
        {
            var list = new RecordHeader[headerCount];
            for (int i = 0; i < headerCount; i++)
            {
                var headerKey = ReadBytes(recordSpan, ref p) ?? throw new InvalidRecordException("Record header key is null.");
                list[i] = new RecordHeader(Encoding.UTF8.GetString(headerKey.Span), ReadBytes(recordSpan, ref p));
            }

            headers = list;
        }

        if (p != end)
        {
            throw new InvalidRecordException("Record length does not match its fields.");
        }

        _position = end;
        _read++;
        long timestamp = _logAppendTime >= 0 ? _logAppendTime : _baseTimestamp + prefix.TimestampDelta;
        record = new DecodedRecord(_baseOffset + prefix.OffsetDelta, timestamp, key, value, headers);
        return true;
    }

    /// <summary>Decodes every record of one batch.</summary>
    public static List<DecodedRecord> ReadAll(ReadOnlyMemory<byte> batch)
    {
        var reader = new RecordReader(batch);
        var records = new List<DecodedRecord>(reader.Count);
        while (reader.TryRead(out var record))
        {
            records.Add(record);
        }

        return records;
    }

    /// <summary>Decodes every record of a sequence of concatenated batches (a fetch response's records, for instance).</summary>
    public static List<DecodedRecord> ReadAllBatches(ReadOnlyMemory<byte> batches)
    {
        var records = new List<DecodedRecord>();
        while (batches.Length >= RecordBatchHeader.HeaderSize)
        {
            int total = RecordBatchHeader.ReadTotalSize(batches.Span);
            if (total > batches.Length)
            {
                break; // a partial trailing batch, as consumers tolerate
            }

            records.AddRange(ReadAll(batches[..total]));
            batches = batches[total..];
        }

        return records;
    }

    private ReadOnlyMemory<byte>? ReadBytes(ReadOnlySpan<byte> span, ref int position)
    {
        int length = RecordVarint.ReadVarint(span, ref position);
        if (length < 0)
        {
            return null;
        }

        if (length > span.Length - position)
        {
            throw new InvalidRecordException("Record field runs past the end of the record.");
        }

        var slice = _records.Slice(position, length);
        position += length;
        return slice;
    }
}
