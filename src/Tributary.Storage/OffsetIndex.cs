using System.Buffers.Binary;
using Tributary.Storage.FileSystem;

namespace Tributary.Storage;

/// <summary>
/// Sparse offset index of one segment: entries of (4-byte offset relative to the segment's base offset,
/// 4-byte file position), big-endian, one for the first batch after every index.interval.bytes of log.
/// An entry names the base offset of a batch, so a floor lookup gives a batch boundary at or before the
/// target and the reader walks batch headers from there.
///
/// Why in memory plus an append-only file rather than a memory map: entries are 8 bytes per 4 KiB of log
/// (2 MiB per GiB), a managed array gives bounds-checked binary search without unsafe views, and the file
/// only ever grows by pwrite at its end, so a crash can at worst leave a short or torn tail. That tail is
/// harmless because the index is derived data: recovery checks it against the log (sizes, monotonic
/// entries, positions inside the log) and rebuilds it from the log when it does not fit.
///
/// Concurrency: one writer (under the partition's append lock), many readers. The writer stores an entry,
/// then publishes the array, then the count (volatile); readers read the count first, so every entry they
/// can see is complete.
/// </summary>
internal sealed class OffsetIndex : IDisposable
{
    public const int EntrySize = 8;
    private readonly ISegmentFile _file;
    private long[] _entries; // (relativeOffset << 32) | position
    private volatile int _count;

    public OffsetIndex(ISegmentFile file)
    {
        _file = file;
        _entries = new long[16];
    }

    public int Count => _count;
    public ISegmentFile File => _file;

    public (int RelativeOffset, int Position) this[int i] => Unpack(Volatile.Read(ref _entries)[i]);

    public (int RelativeOffset, int Position) Last => _count == 0 ? (-1, 0) : this[_count - 1];

    /// <summary>Adds an entry in memory and, when <paramref name="persist"/>, at the end of the file.</summary>
    public void Append(int relativeOffset, int position, bool persist = true)
    {
        int count = _count;
        if (persist)
        {
            Span<byte> bytes = stackalloc byte[EntrySize];
            BinaryPrimitives.WriteInt32BigEndian(bytes, relativeOffset);
            BinaryPrimitives.WriteInt32BigEndian(bytes[4..], position);
            _file.Write((long)count * EntrySize, bytes);
        }

        var entries = _entries;
        if (count == entries.Length)
        {
            Array.Resize(ref entries, entries.Length * 2);
        }

        entries[count] = ((long)relativeOffset << 32) | (uint)position;
        Volatile.Write(ref _entries, entries);
        _count = count + 1;
    }

    /// <summary>File position of the last indexed batch whose base offset is ≤ <paramref name="relativeOffset"/>; 0 when none.</summary>
    public int FloorPosition(long relativeOffset)
    {
        int count = _count;
        var entries = Volatile.Read(ref _entries);
        int lo = 0, hi = count - 1, found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if ((int)(entries[mid] >> 32) <= relativeOffset)
            {
                found = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return found < 0 ? 0 : (int)entries[found];
    }

    /// <summary>Drops entries from <paramref name="count"/> on, in memory and on disk.</summary>
    public void TruncateTo(int count)
    {
        if (count < _count)
        {
            _count = count;
        }

        _file.SetLength((long)count * EntrySize);
    }

    /// <summary>Replaces the file with the in-memory entries (after a rebuild).</summary>
    public void WriteAll()
    {
        int count = _count;
        var bytes = new byte[count * EntrySize];
        for (int i = 0; i < count; i++)
        {
            var (rel, pos) = this[i];
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(i * EntrySize), rel);
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(i * EntrySize + 4), pos);
        }

        _file.SetLength(0);
        _file.Write(0, bytes);
    }

    public void Clear()
    {
        _count = 0;
    }

    /// <summary>
    /// Loads the file; false (and empty) when it is not a plausible index of a log of <paramref name="logSize"/> bytes:
    /// partial entry, non-increasing offsets or positions, or a position outside the log.
    /// </summary>
    public bool TryLoad(long logSize)
    {
        _count = 0;
        long length = _file.Length;
        if (length % EntrySize != 0 || length > int.MaxValue)
        {
            return false;
        }

        var bytes = new byte[length];
        _file.Read(0, bytes);
        int previousOffset = -1, previousPosition = -1;
        for (int i = 0; i < bytes.Length; i += EntrySize)
        {
            int rel = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(i));
            int pos = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(i + 4));
            if (rel <= previousOffset || pos <= previousPosition || pos >= logSize)
            {
                _count = 0;
                return false;
            }

            Append(rel, pos, persist: false);
            previousOffset = rel;
            previousPosition = pos;
        }

        return true;
    }

    public void Dispose() => _file.Dispose();

    private static (int, int) Unpack(long entry) => ((int)(entry >> 32), (int)entry);
}
