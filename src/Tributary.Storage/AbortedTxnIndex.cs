using System.Buffers.Binary;
using Tributary.Storage.FileSystem;

namespace Tributary.Storage;

/// <summary>
/// The aborted transactions of one partition, in marker order, kept in memory and in
/// <c>aborted-transactions.txnindex</c> in the partition directory: 32-byte big-endian entries
/// (producer id, first offset, last offset = the abort marker's offset, last stable offset after the abort).
///
/// Why one file per partition rather than Kafka's one per segment: the entries are few (one per aborted
/// transaction), and a single file keeps segment roll and compaction free of producer concerns. When the log start
/// moves past an entry's marker, the entry is dropped (<see cref="RemoveBelow"/>).
///
/// Durability: entries are appended without fsync and the file is synced before each producer-state snapshot. At
/// open, entries at or after the snapshot offset are dropped and rebuilt by the tail scan from the abort markers in
/// the log, so a torn or lost tail of this file costs nothing. Removing entries (open, and compaction removing abort
/// markers) rewrites the file whole: temp file, fsync, rename, directory fsync. All of it goes through the
/// file-system seam, so tests can fail or tear these writes.
/// </summary>
internal sealed class AbortedTxnIndex : IDisposable
{
    public const string FileName = "aborted-transactions.txnindex";
    private const int EntrySize = 32;
    private readonly ISegmentFileSystem _fs;
    private readonly string _path;
    private readonly List<AbortedTxn> _entries = [];
    private ISegmentFile? _file;
    private long _length;
    private bool _rewritePending;

    private AbortedTxnIndex(ISegmentFileSystem fs, string path)
    {
        _fs = fs;
        _path = path;
    }

    public IReadOnlyList<AbortedTxn> Entries => _entries;

    /// <summary>
    /// Loads the entries whose marker lies below <paramref name="keepBelowOffset"/> and rewrites the file with just
    /// those. The file is created only once there is an entry, so partitions without transactions have none.
    /// </summary>
    public static AbortedTxnIndex Load(ISegmentFileSystem fs, string directory, long keepBelowOffset)
    {
        var index = new AbortedTxnIndex(fs, Path.Combine(directory, FileName));
        if (!fs.FileExists(index._path))
        {
            return index;
        }

        byte[] bytes;
        using (var existing = fs.OpenFile(index._path, create: false))
        {
            bytes = new byte[existing.Length];
            bytes = bytes[..existing.Read(0, bytes)];
        }

        for (int p = 0; p + EntrySize <= bytes.Length; p += EntrySize)
        {
            var e = bytes.AsSpan(p, EntrySize);
            var entry = new AbortedTxn(BinaryPrimitives.ReadInt64BigEndian(e), BinaryPrimitives.ReadInt64BigEndian(e[8..]),
                BinaryPrimitives.ReadInt64BigEndian(e[16..]), BinaryPrimitives.ReadInt64BigEndian(e[24..]));
            if (entry.LastOffset < keepBelowOffset) index._entries.Add(entry);
        }

        index.Rewrite();
        return index;
    }

    /// <summary>Opens the file for appending at its end.</summary>
    private void Open()
    {
        if (_file is not null) return;
        _file = _fs.OpenFile(_path, create: true);
        _length = _file.Length;
    }

    /// <summary>Removes the entries whose abort marker is at one of <paramref name="markerOffsets"/>; durable on return.</summary>
    public void Remove(IReadOnlyCollection<long> markerOffsets)
    {
        if (_entries.RemoveAll(e => markerOffsets.Contains(e.LastOffset)) > 0)
        {
            Rewrite();
        }
    }

    /// <summary>
    /// Drops the entries whose abort marker lies below <paramref name="logStartOffset"/> (retention or DeleteRecords
    /// removed them from the log); durable on return. Kafka deletes a segment's index with the segment; without this
    /// a partition with steady aborts would grow its index, in memory and on disk, for as long as it lives.
    /// </summary>
    public void RemoveBelow(long logStartOffset)
    {
        int count = FirstEndingAtOrAfter(logStartOffset);
        if (count > 0)
        {
            _entries.RemoveRange(0, count);
            Rewrite();
        }
    }

    private void Rewrite()
    {
        string temp = _path + LogStartCheckpoint.TempSuffix; // recovery removes leftovers with this suffix
        var bytes = new byte[_entries.Count * EntrySize];
        for (int i = 0; i < _entries.Count; i++)
        {
            Encode(_entries[i], bytes.AsSpan(i * EntrySize, EntrySize));
        }

        using (var file = _fs.OpenFile(temp, create: true))
        {
            file.SetLength(0);
            file.Write(0, bytes);
            file.Flush();
        }

        _file?.Dispose();
        _file = null;
        _fs.MoveFile(temp, _path);
        _fs.SyncDirectory(Path.GetDirectoryName(_path)!);
        _rewritePending = false;
        Open();
    }

    /// <summary>
    /// Records an abort whose marker is already in the log. A failed write (a full disk) must not fail that append:
    /// the entry is kept in memory and the file rewritten whole at the next <see cref="Sync"/>, before a snapshot
    /// relies on it; until then a restart rebuilds the entry from its marker, which lies after the last snapshot.
    /// </summary>
    public void Add(AbortedTxn entry)
    {
        _entries.Add(entry);
        if (_rewritePending) return;
        try
        {
            Open();
            Write(entry);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _rewritePending = true;
        }
    }

    /// <summary>Aborted transactions that overlap [<paramref name="from"/>, <paramref name="toExclusive"/>).</summary>
    public List<AbortedTxn> Overlapping(long from, long toExclusive)
    {
        var result = new List<AbortedTxn>();
        for (int i = FirstEndingAtOrAfter(from); i < _entries.Count; i++)
        {
            if (_entries[i].FirstOffset < toExclusive) result.Add(_entries[i]);
        }

        return result;
    }

    /// <summary>
    /// The index of the first entry whose marker is at or after <paramref name="offset"/>. Entries are in marker
    /// order, so the ones before it (ending below the offset) are a prefix: found by binary search.
    /// </summary>
    private int FirstEndingAtOrAfter(long offset)
    {
        int lo = 0, hi = _entries.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_entries[mid].LastOffset < offset) lo = mid + 1;
            else hi = mid;
        }

        return lo;
    }

    /// <summary>Makes every entry durable (a snapshot follows); throws when the file cannot be written.</summary>
    public void Sync()
    {
        if (_rewritePending) Rewrite();
        else _file?.Flush();
    }

    private void Write(AbortedTxn entry)
    {
        Span<byte> e = stackalloc byte[EntrySize];
        Encode(entry, e);
        _file!.Write(_length, e);
        _length += EntrySize;
    }

    private static void Encode(AbortedTxn entry, Span<byte> e)
    {
        BinaryPrimitives.WriteInt64BigEndian(e, entry.ProducerId);
        BinaryPrimitives.WriteInt64BigEndian(e[8..], entry.FirstOffset);
        BinaryPrimitives.WriteInt64BigEndian(e[16..], entry.LastOffset);
        BinaryPrimitives.WriteInt64BigEndian(e[24..], entry.LastStableOffset);
    }

    public void Dispose()
    {
        _file?.Dispose();
        _file = null;
    }
}
