using System.Text;
using Tributary.Protocol.Records;
using Tributary.Storage.Cleaning;
using Tributary.Storage.FileSystem;

namespace Tributary.Storage.Tests;

/// <summary>Keyed workloads for the compaction tests: a model of what was written, and a reader that walks gaps the way clients do.</summary>
internal sealed class KeyedWorkload
{
    /// <summary>Offset → (key, value) of everything appended; value null is a tombstone.</summary>
    public Dictionary<long, (string Key, string? Value)> Written { get; } = [];
    /// <summary>Key → offset of its last write.</summary>
    public Dictionary<string, long> Latest { get; } = [];

    public static byte[] Batch(IEnumerable<(string Key, string? Value)> records, long timestamp, CompressionCodec codec = CompressionCodec.None, long producerId = -1)
    {
        var builder = new RecordBatchBuilder { Codec = codec, ProducerId = producerId, ProducerEpoch = (short)(producerId >= 0 ? 0 : -1), BaseSequence = producerId >= 0 ? 0 : -1 };
        foreach (var (key, value) in records)
        {
            builder.Add(timestamp, Encoding.UTF8.GetBytes(key), value is null ? null : Encoding.UTF8.GetBytes(value));
        }

        return builder.Build();
    }

    public async Task AppendAsync(PartitionLog log, IReadOnlyList<(string Key, string? Value)> records, long timestamp, CompressionCodec codec = CompressionCodec.None)
    {
        var result = await log.AppendAsync(Batch(records, timestamp, codec));
        for (int i = 0; i < records.Count; i++)
        {
            Written[result.BaseOffset + i] = records[i];
            Latest[records[i].Key] = result.BaseOffset + i;
        }
    }

    /// <summary>Every record from the log start to the high watermark, advancing past each batch's last offset (empty batches and gaps included).</summary>
    public static List<DecodedRecord> ReadAll(PartitionLog log)
    {
        var records = new List<DecodedRecord>();
        long offset = log.LogStartOffset;
        while (offset < log.HighWatermark)
        {
            using var slice = log.Read(offset, 256 * 1024);
            Assert.False(slice.IsEmpty);
            var bytes = slice.Memory.ToArray();
            int position = 0;
            while (bytes.Length - position >= RecordBatchHeader.HeaderSize)
            {
                var header = new RecordBatchHeader(bytes.AsSpan(position));
                int size = header.TotalSize;
                if (size > bytes.Length - position)
                {
                    break;
                }

                Assert.Equal(header.Crc, RecordBatchHeader.ComputeCrc(bytes.AsSpan(position, size)));
                foreach (var record in RecordReader.ReadAll(bytes.AsMemory(position, size)))
                {
                    if (record.Offset >= offset)
                    {
                        records.Add(record);
                    }
                }

                offset = Math.Max(offset, header.LastOffset + 1);
                position += size;
            }
        }

        return records;
    }

    public static string KeyOf(DecodedRecord record) => Encoding.UTF8.GetString(record.Key!.Value.Span);
    public static string? ValueOf(DecodedRecord record) => record.Value is { } v ? Encoding.UTF8.GetString(v.Span) : null;

    /// <summary>
    /// What must hold at any time: offsets increase, every record is exactly what was written at its offset, and
    /// the last record per key is the last write of that key (or, for a tombstone, the key may be gone).
    /// </summary>
    public void AssertConsistent(PartitionLog log, bool tombstonesGone = false)
    {
        var records = ReadAll(log);
        long previous = -1;
        var lastSeen = new Dictionary<string, long>();
        foreach (var record in records)
        {
            Assert.True(record.Offset > previous, $"offset {record.Offset} after {previous}");
            previous = record.Offset;
            var (key, value) = Written[record.Offset];
            Assert.Equal(key, KeyOf(record));
            Assert.Equal(value, ValueOf(record));
            lastSeen[key] = record.Offset;
        }

        foreach (var (key, offset) in Latest)
        {
            bool tombstone = Written[offset].Value is null;
            if (lastSeen.TryGetValue(key, out long seen))
            {
                Assert.Equal(offset, seen);
                Assert.False(tombstonesGone && tombstone, $"tombstone of {key} should be gone");
            }
            else
            {
                Assert.True(tombstone, $"key {key} lost its latest value (offset {offset})");
            }
        }
    }
}

/// <summary>Simulates kill -9 at the Nth change to the disk: that change and everything after it never happens (IOException, like a dead process).</summary>
internal sealed class CrashingFileSystem : ISegmentFileSystem
{
    private readonly ISegmentFileSystem _inner = LocalFileSystem.Instance;
    private int _remaining = int.MaxValue;

    public bool Crashed { get; private set; }
    public int Operations { get; private set; }

    /// <summary>Lets <paramref name="operations"/> more changes through, then crashes.</summary>
    public void CrashAfter(int operations)
    {
        _remaining = operations;
        Operations = 0;
    }

    private void Change()
    {
        lock (this)
        {
            if (Crashed || _remaining-- <= 0)
            {
                Crashed = true;
                throw new IOException("simulated crash");
            }

            Operations++;
        }
    }

    public ISegmentFile OpenFile(string path, bool create)
    {
        if (create && !_inner.FileExists(path))
        {
            Change();
        }

        return new File(this, _inner.OpenFile(path, create));
    }

    public bool FileExists(string path) => _inner.FileExists(path);
    public void DeleteFile(string path) { Change(); _inner.DeleteFile(path); }
    public void MoveFile(string from, string to) { Change(); _inner.MoveFile(from, to); }
    public IEnumerable<string> EnumerateFiles(string directory) => _inner.EnumerateFiles(directory);
    public DateTimeOffset GetLastWriteTimeUtc(string path) => _inner.GetLastWriteTimeUtc(path);
    public void CreateDirectory(string path) => _inner.CreateDirectory(path);
    public bool DirectoryExists(string path) => _inner.DirectoryExists(path);
    public IEnumerable<string> EnumerateDirectories(string directory) => _inner.EnumerateDirectories(directory);
    public void MoveDirectory(string from, string to) { Change(); _inner.MoveDirectory(from, to); }
    public void DeleteDirectory(string path) { Change(); _inner.DeleteDirectory(path); }
    public void SyncDirectory(string path) { Change(); _inner.SyncDirectory(path); }

    private sealed class File(CrashingFileSystem fs, ISegmentFile inner) : ISegmentFile
    {
        public string Path => inner.Path;
        public long Length => inner.Length;
        public int Read(long position, Span<byte> destination) => inner.Read(position, destination);
        public void Write(long position, ReadOnlySpan<byte> source) { fs.Change(); inner.Write(position, source); }
        public void SetLength(long length) { fs.Change(); inner.SetLength(length); }
        public void Flush() { fs.Change(); inner.Flush(); }
        public void Dispose() => inner.Dispose();
    }
}

internal static class Cleaners
{
    public static LogCleaner For(PartitionLog log, TimeProvider time, long dedupeBytes = 16 << 20) =>
        new(() => [log], new CleanerOptions { DedupeBufferSize = dedupeBytes }, time);
}
