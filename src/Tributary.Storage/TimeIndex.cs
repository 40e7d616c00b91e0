using System.Buffers.Binary;
using Tributary.Storage.FileSystem;

namespace Tributary.Storage;

/// <summary>
/// Sparse time index of one segment: entries of (8-byte timestamp, 4-byte relative offset), big-endian,
/// with strictly increasing timestamps. Invariant: an entry (T, o) means every batch of the segment up to
/// and including the batch whose base offset is o has max timestamp ≤ T. So to find the first record with
/// timestamp ≥ target, take the last entry with T &lt; target and start walking at batch o: nothing before
/// it can qualify. Entries are written together with offset index entries (so o is always an indexed batch
/// boundary) when the segment's max timestamp has grown, plus one final entry when the segment is rolled.
/// Persistence and concurrency as in <see cref="OffsetIndex"/>.
/// </summary>
internal sealed class TimeIndex : IDisposable
{
    public const int EntrySize = 12;
    private readonly ISegmentFile _file;
    private (long Timestamp, int RelativeOffset)[] _entries = new (long, int)[16];
    private volatile int _count;

    public TimeIndex(ISegmentFile file)
    {
        _file = file;
    }

    public int Count => _count;
    public ISegmentFile File => _file;
    public long LastTimestamp => _count == 0 ? -1 : Volatile.Read(ref _entries)[_count - 1].Timestamp;

    public (long Timestamp, int RelativeOffset) this[int i] => Volatile.Read(ref _entries)[i];

    public void Append(long timestamp, int relativeOffset, bool persist = true)
    {
        int count = _count;
        if (persist)
        {
            Span<byte> bytes = stackalloc byte[EntrySize];
            BinaryPrimitives.WriteInt64BigEndian(bytes, timestamp);
            BinaryPrimitives.WriteInt32BigEndian(bytes[8..], relativeOffset);
            _file.Write((long)count * EntrySize, bytes);
        }

        var entries = _entries;
        if (count == entries.Length)
        {
            Array.Resize(ref entries, entries.Length * 2);
        }

        entries[count] = (timestamp, relativeOffset);
        Volatile.Write(ref _entries, entries);
        _count = count + 1;
    }

    /// <summary>Relative offset of the batch to start scanning at for <paramref name="target"/>; 0 when none qualifies.</summary>
    public int StartFor(long target)
    {
        int count = _count;
        var entries = Volatile.Read(ref _entries);
        int lo = 0, hi = count - 1, found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (entries[mid].Timestamp < target)
            {
                found = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return found < 0 ? 0 : entries[found].RelativeOffset;
    }

    public void TruncateTo(int count)
    {
        if (count < _count)
        {
            _count = count;
        }

        _file.SetLength((long)count * EntrySize);
    }

    public void WriteAll()
    {
        int count = _count;
        var entries = Volatile.Read(ref _entries);
        var bytes = new byte[count * EntrySize];
        for (int i = 0; i < count; i++)
        {
            BinaryPrimitives.WriteInt64BigEndian(bytes.AsSpan(i * EntrySize), entries[i].Timestamp);
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(i * EntrySize + 8), entries[i].RelativeOffset);
        }

        _file.SetLength(0);
        _file.Write(0, bytes);
    }

    public void Clear()
    {
        _count = 0;
    }

    /// <summary>Loads the file; false (and empty) on a partial entry, non-increasing timestamps or offsets out of range.</summary>
    public bool TryLoad(long maxRelativeOffset)
    {
        _count = 0;
        long length = _file.Length;
        if (length % EntrySize != 0 || length > int.MaxValue)
        {
            return false;
        }

        var bytes = new byte[length];
        _file.Read(0, bytes);
        long previousTimestamp = long.MinValue;
        int previousOffset = 0;
        for (int i = 0; i < bytes.Length; i += EntrySize)
        {
            long ts = BinaryPrimitives.ReadInt64BigEndian(bytes.AsSpan(i));
            int rel = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(i + 8));
            if (ts <= previousTimestamp || rel < previousOffset || rel > maxRelativeOffset)
            {
                _count = 0;
                return false;
            }

            Append(ts, rel, persist: false);
            previousTimestamp = ts;
            previousOffset = rel;
        }

        return true;
    }

    public void Dispose() => _file.Dispose();
}
