namespace Tributary.Protocol.Records;

/// <summary>
/// Checks that a batch's records section holds exactly the records its header announces, as Kafka's LogValidator
/// does by iterating them: <c>count</c> records, each with a length that its fields fill exactly (attributes,
/// timestamp delta, offset delta, key, value, headers), offset deltas 0, 1, …, count − 1 in order, and no byte left
/// after the last record. Reads only lengths and varints and skips over keys, values and headers, so it allocates
/// nothing: in place over an uncompressed section, or through a fixed window over a decompressing stream.
/// </summary>
public static class RecordWalker
{
    /// <returns>Null when the records are what the header claims, else why not (a constant string).</returns>
    public static string? Walk<TSource>(ref TSource source, int count)
        where TSource : IRecordSource, allows ref struct
    {
        for (int index = 0; index < count; index++)
        {
            if (source.AtEnd())
            {
                return "Record batch holds fewer records than its header's record count.";
            }

            if (!TryReadVarlong(ref source, out long length) || length < 0 || length > int.MaxValue)
            {
                return "Record length is not a valid varint.";
            }

            long start = source.Position;
            long end = start + length;
            if (!source.TrySkip(1) // attributes: unused in magic 2
                || !TryReadVarlong(ref source, out _)
                || !TryReadVarlong(ref source, out long offsetDelta))
            {
                return "Record fields run past the end of the batch.";
            }

            if (offsetDelta != index)
            {
                return "Record offset deltas are not 0, 1, ... in order.";
            }

            if (!TrySkipField(ref source, end, nullable: true) || !TrySkipField(ref source, end, nullable: true)
                || !TryReadVarlong(ref source, out long headers) || headers < 0 || headers > end - source.Position)
            {
                return "Record key, value or header count runs past the record's length.";
            }

            for (long h = 0; h < headers; h++)
            {
                if (!TrySkipField(ref source, end, nullable: false) || !TrySkipField(ref source, end, nullable: true))
                {
                    return "Record header runs past the record's length.";
                }
            }

            if (source.Position != end)
            {
                return "Record length does not match its fields.";
            }
        }

        return source.AtEnd() ? null : "Record batch holds more data than its header's record count.";
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

    bool TryReadByte(out byte value);

    /// <summary>Consumes <paramref name="count"/> bytes; false when fewer remain.</summary>
    bool TrySkip(int count);

    bool AtEnd();
}

/// <summary>An uncompressed records section, read in place.</summary>
public ref struct SpanRecordSource(ReadOnlySpan<byte> data) : IRecordSource
{
    private readonly ReadOnlySpan<byte> _data = data;
    private int _position;

    public readonly long Position => _position;

    public bool TryReadByte(out byte value)
    {
        if (_position < _data.Length)
        {
            value = _data[_position++];
            return true;
        }

        value = 0;
        return false;
    }

    public bool TrySkip(int count)
    {
        if (count > _data.Length - _position)
        {
            _position = _data.Length;
            return false;
        }

        _position += count;
        return true;
    }

    public readonly bool AtEnd() => _position == _data.Length;
}

/// <summary>
/// A decompressing stream read through a caller's fixed window. Stops (as if the data ended) once more than
/// <c>maxBytes</c> have come out, setting <see cref="LimitExceeded"/>: the walk then fails, and the caller refuses
/// the batch as too large having decompressed at most the bound.
/// </summary>
public struct StreamRecordSource(Stream stream, byte[] window, long maxBytes) : IRecordSource
{
    private int _position;
    private int _filled;
    private long _total;

    public bool LimitExceeded { get; private set; }

    public readonly long Position => _total - (_filled - _position);

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
