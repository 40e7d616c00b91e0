using System.Globalization;
using System.Text;
using Tributary.Protocol.Records;
using Tributary.Storage.FileSystem;

namespace Tributary.Storage;

/// <summary>
/// The leader epochs of one partition and the offset each began at (Kafka's <c>LeaderEpochFileCache</c>, KIP-101/279):
/// what a follower asks for with OffsetForLeaderEpoch to find where its log diverges from the leader's.
///
/// Invariant: entries are strictly increasing in epoch and non-decreasing in start offset, and every start offset is
/// below the log end. An entry is added when a batch carrying an epoch above the latest is appended (the leader stamps
/// its epoch into each batch's partitionLeaderEpoch field; a follower keeps the leader's); truncating the log drops the
/// entries starting at or after the new end.
///
/// File: <c>leader-epoch-checkpoint</c> in Kafka's text format: line 1 the version <c>0</c>, line 2 the entry count,
/// then one <c>epoch startOffset</c> line per entry. Rewritten whole on every change (temp file, fsync, rename,
/// directory fsync), so a crash leaves the old or the new list. A change is written after the batches it describes,
/// so the file can only lack the newest entry (the batch is in the log, the checkpoint write did not happen); the open
/// path repairs that (see <see cref="Load"/>). Entries are few (one per leader change), so writes are rare.
///
/// Threads: changed under the log's append lock; <see cref="EndOffsetFor"/> and <see cref="LatestEpoch"/> may be called
/// from any thread, so a small lock guards the list.
/// </summary>
internal sealed class LeaderEpochCache
{
    public const string FileName = "leader-epoch-checkpoint";
    private const string Version = "0";
    private readonly object _sync = new();
    private readonly ISegmentFileSystem _fs;
    private readonly string _directory;
    private readonly List<(int Epoch, long StartOffset)> _entries;
    private bool _dirty;

    private LeaderEpochCache(ISegmentFileSystem fs, string directory, List<(int Epoch, long StartOffset)> entries)
    {
        _fs = fs;
        _directory = directory;
        _entries = entries;
    }

    public int LatestEpoch
    {
        get
        {
            lock (_sync)
            {
                return _entries.Count == 0 ? -1 : _entries[^1].Epoch;
            }
        }
    }

    public IReadOnlyList<(int Epoch, long StartOffset)> Entries
    {
        get
        {
            lock (_sync)
            {
                return [.. _entries];
            }
        }
    }

    /// <summary>
    /// Loads the checkpoint and makes it fit the recovered log. A missing or unreadable file is rebuilt by reading the
    /// partitionLeaderEpoch of every batch header of every segment (headers only; rare: a log from before epochs, or a
    /// damaged file). After an unclean shutdown the active segment's batches after the latest entry are read too, since
    /// the last append's checkpoint write may not have happened (a crash between the batch write and it); a write can only
    /// miss that way in the active segment, because both happen under one hold of the append lock. Entries starting at or
    /// past the recovered log end are dropped (their batches were lost: Durable policy tail, torn write). The file is
    /// rewritten when anything changed.
    /// </summary>
    internal static LeaderEpochCache Load(ISegmentFileSystem fs, string directory, IReadOnlyList<LogSegment> segments, bool cleanShutdown)
    {
        long logEnd = segments[^1].NextOffset;
        var entries = Read(fs, directory);
        bool changed = false;
        if (entries is null)
        {
            entries = [];
            foreach (var segment in segments)
            {
                ScanInto(entries, segment, segment.BaseOffset);
            }

            changed = true;
        }
        else
        {
            changed |= entries.RemoveAll(e => e.StartOffset >= logEnd) > 0;
            if (!cleanShutdown)
            {
                var active = segments[^1];
                long from = entries.Count == 0 ? active.BaseOffset : Math.Max(active.BaseOffset, entries[^1].StartOffset);
                int before = entries.Count;
                ScanInto(entries, active, from);
                changed |= entries.Count != before;
            }
        }

        var cache = new LeaderEpochCache(fs, directory, entries);
        if (changed)
        {
            cache.WriteLocked();
        }

        return cache;
    }

    private static void ScanInto(List<(int Epoch, long StartOffset)> entries, LogSegment segment, long fromOffset)
    {
        if (segment.Size == 0)
        {
            return;
        }

        long start = fromOffset > segment.BaseOffset ? segment.OffsetIndex.FloorPosition(fromOffset - segment.BaseOffset) : 0;
        using var scanner = new BatchScanner(segment.Log, start, segment.Size, 0, verify: false) { LazyBodies = true };
        while (scanner.TryNext(out var batch))
        {
            int epoch = new RecordBatchHeader(scanner.Header(batch)).PartitionLeaderEpoch;
            if (epoch >= 0 && (entries.Count == 0 || epoch > entries[^1].Epoch))
            {
                entries.Add((epoch, batch.BaseOffset));
            }
        }
    }

    /// <summary>
    /// Kafka's <c>assign</c>: records that <paramref name="epoch"/> starts at <paramref name="startOffset"/>. No change when it
    /// is the latest epoch at the same or a later offset; otherwise entries with an epoch at or above it, or a start offset at
    /// or after it, are replaced. Durable on return when anything changed.
    /// </summary>
    /// <returns>True when the list changed.</returns>
    public bool Assign(int epoch, long startOffset)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        ArgumentOutOfRangeException.ThrowIfNegative(startOffset);
        lock (_sync)
        {
            if (_entries.Count > 0 && _entries[^1].Epoch == epoch && startOffset >= _entries[^1].StartOffset)
            {
                return false;
            }

            _entries.RemoveAll(e => e.Epoch >= epoch || e.StartOffset >= startOffset);
            _entries.Add((epoch, startOffset));
            _dirty = true;
            WriteLocked();
            return true;
        }
    }

    /// <summary>Kafka's <c>truncateFromEnd</c>: drops the entries starting at or after <paramref name="endOffset"/> (the new log end); durable on return.</summary>
    public void TruncateFromEnd(long endOffset)
    {
        lock (_sync)
        {
            if (_entries.RemoveAll(e => e.StartOffset >= endOffset) > 0)
            {
                _dirty = true;
                WriteLocked();
            }
        }
    }

    /// <summary>
    /// Kafka's <c>truncateFromStart</c>, when the log start moves up (retention, DeleteRecords): the entries starting at or
    /// below <paramref name="startOffset"/> give way to one entry for the latest of them, starting at the log start, so the
    /// cache describes only offsets the log still holds. Durable on return when anything changed.
    /// </summary>
    public void TruncateFromStart(long startOffset)
    {
        lock (_sync)
        {
            int below = 0;
            while (below < _entries.Count && _entries[below].StartOffset <= startOffset)
            {
                below++;
            }

            if (below == 0 || (below == 1 && _entries[0].StartOffset == startOffset))
            {
                return;
            }

            int epoch = _entries[below - 1].Epoch;
            _entries.RemoveRange(0, below);
            _entries.Insert(0, (epoch, startOffset));
            _dirty = true;
            WriteLocked();
        }
    }

    /// <summary>Empties the cache (the log was emptied); durable on return.</summary>
    public void Clear()
    {
        lock (_sync)
        {
            _entries.Clear();
            _dirty = true;
            WriteLocked();
        }
    }

    /// <summary>Removes the checkpoint file (durably), so that a crash from here on rebuilds it from whatever batches the log keeps.</summary>
    public void DeleteFile()
    {
        _fs.DeleteFile(Path.Combine(_directory, FileName));
        _fs.SyncDirectory(_directory);
    }

    /// <summary>Writes the file again when an earlier write failed (before a clean shutdown relies on it).</summary>
    public void WriteIfDirty()
    {
        lock (_sync)
        {
            if (_dirty)
            {
                WriteLocked();
            }
        }
    }

    /// <summary>
    /// Kafka's <c>endOffsetFor</c>: the latest epoch → (it, log end); an epoch above the latest, or none cached, or
    /// <c>-1</c> → (-1, -1); otherwise the largest cached epoch at or below the requested one and the start offset of the
    /// next higher epoch. An epoch below the first cached one answers (the requested epoch, the first entry's start offset),
    /// as Kafka does since 2.1 (KAFKA-7415): the follower truncates to where the leader's known history begins.
    /// </summary>
    public (int Epoch, long EndOffset) EndOffsetFor(int requestedEpoch, long logEndOffset)
    {
        lock (_sync)
        {
            if (requestedEpoch < 0 || _entries.Count == 0)
            {
                return (-1, -1);
            }

            if (requestedEpoch == _entries[^1].Epoch)
            {
                return (requestedEpoch, logEndOffset);
            }

            int higher = _entries.FindIndex(e => e.Epoch > requestedEpoch);
            if (higher < 0)
            {
                return (-1, -1);
            }

            return higher == 0 ? (requestedEpoch, _entries[0].StartOffset) : (_entries[higher - 1].Epoch, _entries[higher].StartOffset);
        }
    }

    private void WriteLocked()
    {
        var text = new StringBuilder();
        text.Append(Version).Append('\n').Append(_entries.Count.ToString(CultureInfo.InvariantCulture)).Append('\n');
        foreach (var (epoch, start) in _entries)
        {
            text.Append(epoch.ToString(CultureInfo.InvariantCulture)).Append(' ').Append(start.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }

        string path = Path.Combine(_directory, FileName);
        string temp = path + LogStartCheckpoint.TempSuffix; // recovery removes leftovers with this suffix
        using (var file = _fs.OpenFile(temp, create: true))
        {
            file.SetLength(0);
            file.Write(0, Encoding.ASCII.GetBytes(text.ToString()));
            file.Flush();
        }

        _fs.MoveFile(temp, path);
        _fs.SyncDirectory(_directory);
        _dirty = false;
    }

    /// <summary>The entries of the file, or null when it is missing, unreadable, of another version or not a valid list.</summary>
    private static List<(int Epoch, long StartOffset)>? Read(ISegmentFileSystem fs, string directory)
    {
        string path = Path.Combine(directory, FileName);
        string text;
        try
        {
            if (!fs.FileExists(path))
            {
                return null;
            }

            using var file = fs.OpenFile(path, create: false);
            var bytes = new byte[file.Length];
            text = Encoding.ASCII.GetString(bytes, 0, file.Read(0, bytes));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        var lines = text.Split('\n');
        if (lines.Length < 2 || lines[0] != Version
            || !int.TryParse(lines[1], NumberStyles.None, CultureInfo.InvariantCulture, out int count)
            || lines.Length != count + 3 || lines[^1].Length != 0)
        {
            return null;
        }

        var entries = new List<(int, long)>(count);
        for (int i = 0; i < count; i++)
        {
            var parts = lines[2 + i].Split(' ');
            if (parts.Length != 2
                || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int epoch)
                || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long start)
                || (entries.Count > 0 && (epoch <= entries[^1].Item1 || start < entries[^1].Item2)))
            {
                return null;
            }

            entries.Add((epoch, start));
        }

        return entries;
    }
}
