namespace Tributary.Storage.Cleaning;

/// <summary>
/// One bit per offset of the range a pass indexed ([first dirty offset, map end)): set where a record must survive
/// the key test (the latest record of its key). A dirty batch with no bit set loses all its
/// records, which the cleaner then knows from this bitmap and the batch's header alone, without reading the rest of the
/// batch. In a log overwritten many times most batches are like that: a key's latest record is near the log end.
/// </summary>
internal sealed class LatestOffsets
{
    /// <summary>Bitmaps larger than this (offsets in the range) are not built: the rewriter then parses every batch.</summary>
    private const long MaxBits = 1L << 31;
    private readonly ulong[] _bits;

    private LatestOffsets(long from, long end)
    {
        From = from;
        End = end;
        _bits = new ulong[(end - from + 63) >> 6];
    }

    public long From { get; }
    public long End { get; }

    /// <returns>Null when the range is empty or too large.</returns>
    public static LatestOffsets? Build(OffsetMap map, long from, long end)
    {
        if (end <= from || end - from > MaxBits)
        {
            return null;
        }

        var latest = new LatestOffsets(from, end);
        map.ForEachOffset(latest.Set);

        return latest;
    }

    private void Set(long offset)
    {
        if (offset >= From && offset < End)
        {
            long bit = offset - From;
            _bits[bit >> 6] |= 1UL << (int)(bit & 63);
        }
    }

    /// <summary>True when [<paramref name="first"/>, <paramref name="last"/>] lies in the range and no bit in it is set.</summary>
    public bool NoneSet(long first, long last)
    {
        if (first < From || last >= End || last < first)
        {
            return false;
        }

        long a = first - From, b = last - From;
        int wa = (int)(a >> 6), wb = (int)(b >> 6);
        ulong firstMask = ~0UL << (int)(a & 63);
        ulong lastMask = ~0UL >> (63 - (int)(b & 63));
        if (wa == wb)
        {
            return (_bits[wa] & firstMask & lastMask) == 0;
        }

        if ((_bits[wa] & firstMask) != 0 || (_bits[wb] & lastMask) != 0)
        {
            return false;
        }

        for (int w = wa + 1; w < wb; w++)
        {
            if (_bits[w] != 0)
            {
                return false;
            }
        }

        return true;
    }
}
