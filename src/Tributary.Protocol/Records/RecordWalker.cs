using System.Runtime.CompilerServices;

namespace Tributary.Protocol.Records;

/// <summary>
/// Checks that a batch's records section holds exactly the records its header announces, as Kafka's LogValidator
/// does by iterating them: <c>count</c> records, each with a length that its fields fill exactly (attributes,
/// timestamp delta, offset delta, key, value, headers), offset deltas 0, 1, …, count − 1 in order, and no byte left
/// after the last record. Reads only lengths and varints and skips over keys, values and headers, so it allocates
/// nothing: in place over an uncompressed section, or through a window over decompressed data, where each record that
/// lies whole in the window is checked in place too and only those that cross its end are read byte by byte.
/// </summary>
public static class RecordWalker
{
    private const string FewerRecords = "Record batch holds fewer records than its header's record count.";
    private const string BadLength = "Record length is not a valid varint.";
    private const string FieldsPastEnd = "Record fields run past the end of the batch.";
    private const string BadOffsetDelta = "Record offset deltas are not 0, 1, ... in order.";
    private const string BadKeyValue = "Record key, value or header count runs past the record's length.";
    private const string BadHeader = "Record header runs past the record's length.";
    private const string LengthMismatch = "Record length does not match its fields.";
    private const string MoreData = "Record batch holds more data than its header's record count.";

    /// <summary>
    /// The same checks over an uncompressed section in memory: the produce hot path, so it indexes the span directly
    /// and decodes the one-byte varints that dominate real records without a loop.
    /// </summary>
    /// <returns>Null when the records are what the header claims, else why not (a constant string).</returns>
    public static string? Walk(ReadOnlySpan<byte> data, int count)
    {
        int position = 0;
        for (int index = 0; index < count; index++)
        {
            if (position == data.Length)
            {
                return FewerRecords;
            }

            if (!TryReadVarlong(data, ref position, out long length) || length < 0 || length > data.Length - position)
            {
                return length > data.Length - position ? FieldsPastEnd : BadLength;
            }

            int end = position + (int)length;
            if (CheckRecord(data[..end], position + 1, index) is { } error)
            {
                return error;
            }

            position = end;
        }

        return position == data.Length ? null : MoreData;
    }

    /// <summary>
    /// Checks one record that <paramref name="record"/> ends with: its fields, from the attributes byte just before
    /// <paramref name="position"/> (unused in magic 2), must fill it exactly, and its offset delta be <paramref name="index"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static string? CheckRecord(ReadOnlySpan<byte> record, int position, int index)
    {
        int end = record.Length;
        if (position > end || !TryReadVarlong(record, ref position, out _) || !TryReadVarlong(record, ref position, out long offsetDelta))
        {
            return FieldsPastEnd;
        }

        if (offsetDelta != index)
        {
            return BadOffsetDelta;
        }

        if (!TrySkipField(record, ref position, nullable: true) || !TrySkipField(record, ref position, nullable: true)
            || !TryReadVarlong(record, ref position, out long headers) || headers < 0 || headers > end - position)
        {
            return BadKeyValue;
        }

        for (long h = 0; h < headers; h++)
        {
            if (!TrySkipField(record, ref position, nullable: false) || !TrySkipField(record, ref position, nullable: true))
            {
                return BadHeader;
            }
        }

        return position != end ? LengthMismatch : null;
    }

    /// <summary>Skips one length-prefixed field that must end within <paramref name="record"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool TrySkipField(ReadOnlySpan<byte> record, ref int position, bool nullable)
    {
        if (!TryReadVarlong(record, ref position, out long length) || length < (nullable ? -1 : 0) || length > record.Length - position)
        {
            return false;
        }

        if (length > 0)
        {
            position += (int)length;
        }

        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool TryReadVarlong(ReadOnlySpan<byte> data, ref int position, out long value)
    {
        // One- and two-byte varints (values below 8192 zigzagged) are nearly every field of a real record.
        if ((uint)position + 1 < (uint)data.Length)
        {
            uint first = data[position];
            if (first < 0x80)
            {
                position++;
                value = (int)(first >> 1) ^ -(int)(first & 1);
                return true;
            }

            uint second = data[position + 1];
            if (second < 0x80)
            {
                position += 2;
                uint raw2 = (first & 0x7F) | (second << 7);
                value = (int)(raw2 >> 1) ^ -(int)(raw2 & 1);
                return true;
            }

            // Three bytes: offset deltas of batches over 4096 records.
            if ((uint)position + 2 < (uint)data.Length && data[position + 2] < 0x80)
            {
                uint raw3 = (first & 0x7F) | ((second & 0x7F) << 7) | ((uint)data[position + 2] << 14);
                position += 3;
                value = (int)(raw3 >> 1) ^ -(int)(raw3 & 1);
                return true;
            }
        }

        ulong raw = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if ((uint)position >= (uint)data.Length)
            {
                break;
            }

            byte b = data[position++];
            raw |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                value = (long)(raw >> 1) ^ -(long)(raw & 1);
                return true;
            }
        }

        value = 0;
        return false;
    }

    /// <returns>Null when the records are what the header claims, else why not (a constant string).</returns>
    public static string? Walk<TSource>(ref TSource source, int count)
        where TSource : IRecordSource, allows ref struct
    {
        for (int index = 0; index < count; index++)
        {
            if (source.AtEnd())
            {
                return FewerRecords;
            }

            // A record that lies whole in the source's buffer is checked there, as over an uncompressed section;
            // one that crosses the buffer's end is read byte by byte below.
            var buffered = source.Buffered;
            int position = 0;
            if (TryReadVarlong(buffered, ref position, out long whole) && whole >= 0 && whole <= buffered.Length - position)
            {
                int recordEnd = position + (int)whole;
                if (CheckRecord(buffered[..recordEnd], position + 1, index) is { } error)
                {
                    return error;
                }

                source.Consume(recordEnd);
                continue;
            }

            if (!TryReadVarlong(ref source, out long length) || length < 0 || length > int.MaxValue)
            {
                return BadLength;
            }

            long start = source.Position;
            long end = start + length;
            if (!source.TrySkip(1) // attributes: unused in magic 2
                || !TryReadVarlong(ref source, out _)
                || !TryReadVarlong(ref source, out long offsetDelta))
            {
                return FieldsPastEnd;
            }

            if (offsetDelta != index)
            {
                return BadOffsetDelta;
            }

            if (!TrySkipField(ref source, end, nullable: true) || !TrySkipField(ref source, end, nullable: true)
                || !TryReadVarlong(ref source, out long headers) || headers < 0 || headers > end - source.Position)
            {
                return BadKeyValue;
            }

            for (long h = 0; h < headers; h++)
            {
                if (!TrySkipField(ref source, end, nullable: false) || !TrySkipField(ref source, end, nullable: true))
                {
                    return BadHeader;
                }
            }

            if (source.Position != end)
            {
                return LengthMismatch;
            }
        }

        return source.AtEnd() ? null : MoreData;
    }

    /// <summary>Skips one length-prefixed field that must end within the record (at or before <paramref name="end"/>).</summary>
    private static bool TrySkipField<TSource>(ref TSource source, long end, bool nullable)
        where TSource : IRecordSource, allows ref struct
    {
        if (!TryReadVarlong(ref source, out long length) || length < (nullable ? -1 : 0) || length > end - source.Position)
        {
            return false;
        }

        return length <= 0 || source.TrySkip((int)length);
    }

    private static bool TryReadVarlong<TSource>(ref TSource source, out long value)
        where TSource : IRecordSource, allows ref struct
    {
        ulong raw = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (!source.TryReadByte(out byte b))
            {
                break;
            }

            raw |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                value = (long)(raw >> 1) ^ -(long)(raw & 1);
                return true;
            }
        }

        value = 0;
        return false;
    }
}

/// <summary>Forward-only bytes for <see cref="RecordWalker"/>.</summary>
public interface IRecordSource
{
    /// <summary>Bytes consumed so far.</summary>
    long Position { get; }

    /// <summary>The bytes at hand that are not consumed yet: possibly fewer than remain, and empty before a read or <see cref="AtEnd"/>.</summary>
    ReadOnlySpan<byte> Buffered { get; }

    bool TryReadByte(out byte value);

    /// <summary>Consumes <paramref name="count"/> bytes; false when fewer remain.</summary>
    bool TrySkip(int count);

    /// <summary>Consumes <paramref name="count"/> bytes of <see cref="Buffered"/>.</summary>
    void Consume(int count);

    bool AtEnd();
}

/// <summary>A source that decompresses, and stops once more than its bound has come out.</summary>
public interface IBoundedRecordSource : IRecordSource
{
    /// <summary>True once the source stopped at its bound (the data went on).</summary>
    bool LimitExceeded { get; }
}

/// <summary>
/// A decompressing stream read through a caller's fixed window. Stops (as if the data ended) once more than
/// <c>maxBytes</c> have come out, setting <see cref="LimitExceeded"/>: the walk then fails, and the caller refuses
/// the batch as too large having decompressed at most the bound.
/// </summary>
public struct StreamRecordSource(Stream stream, byte[] window, long maxBytes) : IBoundedRecordSource
{
    private int _position;
    private int _filled;
    private long _total;

    public bool LimitExceeded { get; private set; }

    public readonly long Position => _total - (_filled - _position);

    public readonly ReadOnlySpan<byte> Buffered => window.AsSpan(_position, _filled - _position);

    public void Consume(int count) => _position += count;

    public bool TryReadByte(out byte value)
    {
        if (_position == _filled && !Fill())
        {
            value = 0;
            return false;
        }

        value = window[_position++];
        return true;
    }

    public bool TrySkip(int count)
    {
        while (count > 0)
        {
            if (_position == _filled && !Fill())
            {
                return false;
            }

            int step = Math.Min(count, _filled - _position);
            _position += step;
            count -= step;
        }

        return true;
    }

    public bool AtEnd() => _position == _filled && !Fill();

    private bool Fill()
    {
        if (LimitExceeded)
        {
            return false;
        }

        _position = 0;
        _filled = stream.Read(window);
        _total += _filled;
        if (_total > maxBytes)
        {
            LimitExceeded = true;
            _filled = 0;
            return false;
        }

        return _filled > 0;
    }
}
