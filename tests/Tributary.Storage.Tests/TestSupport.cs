using Tributary.Protocol.Records;
using Tributary.Storage.FileSystem;

namespace Tributary.Storage.Tests;

/// <summary>A fresh directory under the temp folder, removed on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "tributary-storage-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>
/// The real file system with switches: count syncs, hold syncs at a gate, and simulate a full disk
/// (a write stores half its bytes, then fails with ENOSPC), so failures are deterministic.
/// </summary>
internal sealed class FaultyFileSystem : ISegmentFileSystem
{
    private const int Enospc = 28;
    private readonly ISegmentFileSystem _inner = LocalFileSystem.Instance;
    private int _flushes;
    private int _writes;
    private int _directorySyncs;

    public volatile bool DiskFull;
    /// <summary>Writes to files whose name ends with this fail with ENOSPC (a full disk hit by one file only).</summary>
    public volatile string? DiskFullFor;
    /// <summary>Syncs fail with EIO.</summary>
    public volatile bool FailFlushes;
    /// <summary>When set, syncs throw this (an exception that is not an I/O error).</summary>
    public volatile Exception? FlushThrows;
    /// <summary>When set, each sync waits on <see cref="FlushGate"/> after signalling <see cref="FlushEntered"/>.</summary>
    public volatile bool HoldFlushes;
    public ManualResetEventSlim FlushGate { get; } = new(false);
    public SemaphoreSlim FlushEntered { get; } = new(0);

    /// <summary>When set, the next read of a segment's .log file signals <see cref="ReadEntered"/> and waits on <see cref="ReadGate"/>.</summary>
    public volatile bool HoldNextLogRead;
    public ManualResetEventSlim ReadEntered { get; } = new(false);
    public ManualResetEventSlim ReadGate { get; } = new(false);

    /// <summary>Writes and syncs of files under this path fail with EIO (one data directory's disk failing).</summary>
    public volatile string? FailUnder;
    /// <summary>Syncs (only) of files under this path fail with EIO.</summary>
    public volatile string? FailFlushesUnder;
    /// <summary>Every access to a path under this one is counted in <see cref="AccessesUnder"/>.</summary>
    public volatile string? CountUnder;
    private int _accessesUnder;

    public int AccessesUnder => Volatile.Read(ref _accessesUnder);

    private void Touch(string path)
    {
        if (CountUnder is { } prefix && path.StartsWith(prefix, StringComparison.Ordinal))
        {
            Interlocked.Increment(ref _accessesUnder);
        }
    }

    private bool Failing(string path) => FailUnder is { } prefix && path.StartsWith(prefix, StringComparison.Ordinal);

    public int FlushCount => Volatile.Read(ref _flushes);
    public int WriteCount => Volatile.Read(ref _writes);

    public ISegmentFile OpenFile(string path, bool create)
    {
        Touch(path);
        return new FaultyFile(this, _inner.OpenFile(path, create));
    }

    public bool FileExists(string path)
    {
        Touch(path);
        return _inner.FileExists(path);
    }

    public void DeleteFile(string path)
    {
        Touch(path);
        _inner.DeleteFile(path);
    }

    public void MoveFile(string from, string to)
    {
        Touch(from);
        _inner.MoveFile(from, to);
    }

    public IEnumerable<string> EnumerateFiles(string directory)
    {
        Touch(directory);
        return _inner.EnumerateFiles(directory);
    }

    public DateTimeOffset GetLastWriteTimeUtc(string path) => _inner.GetLastWriteTimeUtc(path);
    public void CreateDirectory(string path) => _inner.CreateDirectory(path);
    public bool DirectoryExists(string path) => _inner.DirectoryExists(path);
    public IEnumerable<string> EnumerateDirectories(string directory) => _inner.EnumerateDirectories(directory);
    public void MoveDirectory(string from, string to) => _inner.MoveDirectory(from, to);
    public void DeleteDirectory(string path) => _inner.DeleteDirectory(path);

    public void SyncDirectory(string path)
    {
        Touch(path);
        Interlocked.Increment(ref _directorySyncs);
        _inner.SyncDirectory(path);
    }

    public int DirectorySyncCount => Volatile.Read(ref _directorySyncs);

    private sealed class FaultyFile(FaultyFileSystem fs, ISegmentFile inner) : ISegmentFile
    {
        public string Path => inner.Path;
        public long Length => inner.Length;
        public int Read(long position, Span<byte> destination)
        {
            fs.Touch(Path);
            if (fs.HoldNextLogRead && Path.EndsWith(".log", StringComparison.Ordinal))
            {
                fs.HoldNextLogRead = false;
                fs.ReadEntered.Set();
                fs.ReadGate.Wait();
            }

            return inner.Read(position, destination);
        }

        public void Write(long position, ReadOnlySpan<byte> source)
        {
            Interlocked.Increment(ref fs._writes);
            fs.Touch(Path);
            if (fs.Failing(Path))
            {
                throw new IOException("Input/output error", 5);
            }

            if (fs.DiskFull || (fs.DiskFullFor is { } suffix && Path.EndsWith(suffix, StringComparison.Ordinal)))
            {
                inner.Write(position, source[..(source.Length / 2)]);
                throw new IOException("No space left on device", Enospc);
            }

            inner.Write(position, source);
        }

        public void SetLength(long length) => inner.SetLength(length);

        public void Flush()
        {
            Interlocked.Increment(ref fs._flushes);
            fs.Touch(Path);
            if (fs.FailFlushes || fs.Failing(Path) || (fs.FailFlushesUnder is { } under && Path.StartsWith(under, StringComparison.Ordinal)))
            {
                throw new IOException("Input/output error", 5);
            }

            if (fs.FlushThrows is { } unexpected)
            {
                throw unexpected;
            }

            if (fs.HoldFlushes)
            {
                fs.FlushEntered.Release();
                if (!fs.FlushGate.Wait(TimeSpan.FromSeconds(30)))
                {
                    throw new IOException("Test flush gate never opened.");
                }
            }

            inner.Flush();
        }

        public void Dispose() => inner.Dispose();
    }
}

internal static class Batches
{
    /// <summary>A batch of records with the given timestamps; values encode (tag, index) so they can be checked.</summary>
    public static byte[] Make(long[] timestamps, string tag = "v", CompressionCodec codec = CompressionCodec.None)
    {
        var builder = new RecordBatchBuilder { Codec = codec };
        for (int i = 0; i < timestamps.Length; i++)
        {
            builder.Add(timestamps[i], System.Text.Encoding.UTF8.GetBytes($"k{i}"), System.Text.Encoding.UTF8.GetBytes($"{tag}-{i}"));
        }

        return builder.Build();
    }

    public static byte[] Make(int records, long timestamp, string tag = "v") => Make(Enumerable.Repeat(timestamp, records).ToArray(), tag);

    /// <summary>Every record readable from <paramref name="log"/>, by walking Read from the log start to the high watermark.</summary>
    public static List<DecodedRecord> ReadAll(PartitionLog log, int maxBytes = 64 * 1024)
    {
        var records = new List<DecodedRecord>();
        long offset = log.LogStartOffset;
        while (offset < log.HighWatermark)
        {
            using var slice = log.Read(offset, maxBytes);
            Assert.False(slice.IsEmpty);
            foreach (var record in RecordReader.ReadAllBatches(slice.Memory.ToArray()))
            {
                if (record.Offset >= offset)
                {
                    records.Add(record);
                }
            }

            offset = records[^1].Offset + 1;
        }

        return records;
    }

    public static string Value(DecodedRecord record) => System.Text.Encoding.UTF8.GetString(record.Value!.Value.Span);
}
