namespace Tributary.Protocol.Records;

/// <summary>
/// Walks the records of a batch's (decompressed) records section reading only each record's prefix: its length,
/// timestamp delta, offset delta and key. What the cleaner, the compacted-topic check and the timestamp lookup need,
/// without decoding values or headers, and without allocating.
/// </summary>
/// <example><c>foreach (var record in new RecordPrefixes(data, count)) { … record.OffsetDelta … }</c></example>
public ref struct RecordPrefixes
{
    private readonly ReadOnlySpan<byte> _data;
    private readonly int _count;
    private int _index;
    private int _position;

    /// <param name="data">The records section, uncompressed.</param>
    /// <param name="count">The batch's record count.</param>
    public RecordPrefixes(ReadOnlySpan<byte> data, int count)
    {
        _data = data;
        _count = count;
        _index = -1;
        _position = 0;
        Current = default;
    }

    public RecordPrefix Current { get; private set; }

    public readonly RecordPrefixes GetEnumerator() => this;

    /// <exception cref="InvalidRecordException">A record's length runs past the end of the section.</exception>
    public bool MoveNext()
    {
        if (++_index >= _count)
        {
            return false;
        }

        Current = ReadAt(_data, _position, _index);
        _position = Current.End;
        return true;
    }

    /// <summary>The prefix of the record that starts at <paramref name="start"/> (record number <paramref name="index"/>).</summary>
    /// <exception cref="InvalidRecordException">The record's length or key runs past the end.</exception>
    public static RecordPrefix ReadAt(ReadOnlySpan<byte> data, int start, int index)
    {
        int position = start;
        int length = RecordVarint.ReadVarint(data, ref position);
        if (length < 0 || length > data.Length - position)
        {
            throw new InvalidRecordException("Record length runs past the end of the batch.");
        }

        int end = position + length;
        var record = data[..end];
        int p = position + 1; // attributes: unused in magic 2
        long timestampDelta = RecordVarint.ReadVarlong(record, ref p);
        int timestampEnd = p;
        int offsetDelta = RecordVarint.ReadVarint(record, ref p);
        int keyLength = RecordVarint.ReadVarint(record, ref p);
        if (keyLength > end - p)
        {
            throw new InvalidRecordException("Record field runs past the end of the record.");
        }

        return new RecordPrefix(index, start, end, timestampDelta, timestampEnd, offsetDelta, p, keyLength);
    }
}

/// <summary>One record's prefix, positions relative to the records section.</summary>
/// <param name="Index">The record's index in its batch.</param>
/// <param name="Start">Where the record (its length varint) starts.</param>
/// <param name="End">Where the record ends.</param>
/// <param name="TimestampEnd">Where the timestamp delta ends (the offset delta starts).</param>
/// <param name="KeyStart">Where the key's bytes start (just after its length).</param>
/// <param name="KeyLength">The key's length; negative for a record without a key.</param>
public readonly record struct RecordPrefix(int Index, int Start, int End, long TimestampDelta, int TimestampEnd, int OffsetDelta, int KeyStart, int KeyLength)
{
    public bool HasKey => KeyLength >= 0;

    /// <summary>Where the value's length varint starts (after the key).</summary>
    public int ValueStart => KeyStart + Math.Max(KeyLength, 0);
}
