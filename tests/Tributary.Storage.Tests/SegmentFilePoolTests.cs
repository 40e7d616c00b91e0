using Tributary.Storage.FileSystem;

namespace Tributary.Storage.Tests;

/// <summary>
/// Issue 20 #4(b, d): descriptors in proportion to the segments in use, not to the partitions on disk, and running out
/// of descriptors as a recoverable error. Descriptors are counted in /proc/self/fd, so the tests see what the kernel sees.
/// </summary>
public sealed class SegmentFilePoolTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly FakeTimeProvider _time = FakeTime.Create();

    public void Dispose() => _dir.Dispose();

    /// <summary>Descriptors of this process open on files under the test's directory (other tests run in parallel).</summary>
    private int DescriptorsInDirectory() => Directory.GetFiles("/proc/self/fd")
        .Count(fd => (new FileInfo(fd).LinkTarget ?? "").StartsWith(_dir.Path, StringComparison.Ordinal));

    [Fact]
    public async Task Idle_segments_release_descriptors_and_reopen_on_demand()
    {
        const int partitions = 60;
        const int budget = 16;
        using var manager = new LogManager(_dir.Path, _time, maxOpenFiles: budget);
        var logs = new List<PartitionLog>();
        for (int p = 0; p < partitions; p++)
        {
            var log = manager.GetOrCreate("t", p, new LogConfig { FlushPolicy = FlushPolicy.PageCache });
            await log.AppendAsync(Batches.Make(2, 1, tag: $"p{p}"));
            logs.Add(log);
        }

        // Three files per segment would be 180 descriptors; the pool keeps at most its budget open.
        Assert.InRange(manager.OpenFileHandles, 1, budget);
        Assert.InRange(DescriptorsInDirectory(), 1, budget);

        for (int p = 0; p < partitions; p++)
        {
            var records = Batches.ReadAll(logs[p]);
            Assert.Equal([$"p{p}-0", $"p{p}-1"], records.Select(r => System.Text.Encoding.UTF8.GetString(r.Value!.Value.Span)));
            await logs[p].AppendAsync(Batches.Make(1, 2, tag: "again"));
        }

        Assert.InRange(manager.OpenFileHandles, 1, budget);
        Assert.InRange(DescriptorsInDirectory(), 1, budget);
    }

    [Fact]
    public void A_file_closed_while_idle_reopens_under_the_name_it_was_renamed_to()
    {
        var pool = new PooledFileSystem(LocalFileSystem.Instance, capacity: 8);
        string first = Path.Combine(_dir.Path, "first");
        using var file = pool.OpenFile(first, create: true);
        file.Write(0, "hello"u8);
        var others = Enumerable.Range(0, 20).Select(i => pool.OpenFile(Path.Combine(_dir.Path, $"other-{i}"), create: true)).ToList();
        Assert.InRange(pool.OpenHandles, 1, 8);

        pool.MoveFile(first, first + ".deleted");
        var buffer = new byte[5];
        Assert.Equal(5, file.Read(0, buffer));
        Assert.Equal("hello"u8.ToArray(), buffer);
        Assert.Equal(first + ".deleted", file.Path);
        others.ForEach(o => o.Dispose());
    }

    [Fact]
    public void Out_of_descriptors_closes_idle_handles_and_retries_then_fails_with_a_clear_io_error()
    {
        var inner = new DescriptorLimitedFileSystem(limit: 10);
        var pool = new PooledFileSystem(inner, capacity: 100);
        var files = Enumerable.Range(0, 10).Select(i => pool.OpenFile(Path.Combine(_dir.Path, $"f{i}"), create: true)).ToList();

        // The inner limit is reached below the pool's capacity: the pool frees idle handles instead of failing.
        using (var eleventh = pool.OpenFile(Path.Combine(_dir.Path, "f10"), create: true))
        {
            eleventh.Write(0, "x"u8);
        }

        Assert.True(inner.Open <= 10);
        var one = new byte[1];
        files[0].Write(0, "y"u8);
        Assert.Equal(1, files[0].Read(0, one));

        // With no idle handle left to close, the failure is an IOException saying what happened (no crash).
        var busy = new DescriptorLimitedFileSystem(limit: 0);
        var empty = new PooledFileSystem(busy, capacity: 100);
        var error = Assert.Throws<IOException>(() => empty.OpenFile(Path.Combine(_dir.Path, "g"), create: true));
        Assert.Contains("out of file descriptors", error.Message);
        files.ForEach(f => f.Dispose());
    }

    /// <summary>The real disk with a descriptor limit: opens past it fail as EMFILE does.</summary>
    private sealed class DescriptorLimitedFileSystem(int limit) : ISegmentFileSystem
    {
        private int _open;

        public int Open => Volatile.Read(ref _open);

        public ISegmentFile OpenFile(string path, bool create)
        {
            if (Interlocked.Increment(ref _open) > limit)
            {
                Interlocked.Decrement(ref _open);
                throw new IOException($"Too many open files : '{path}'", 24);
            }

            return new Counted(this, LocalFileSystem.Instance.OpenFile(path, create));
        }

        public bool FileExists(string path) => File.Exists(path);
        public void DeleteFile(string path) => File.Delete(path);
        public void MoveFile(string from, string to) => File.Move(from, to, true);
        public IEnumerable<string> EnumerateFiles(string directory) => Directory.EnumerateFiles(directory);
        public DateTimeOffset GetLastWriteTimeUtc(string path) => File.GetLastWriteTimeUtc(path);
        public void CreateDirectory(string path) => Directory.CreateDirectory(path);
        public bool DirectoryExists(string path) => Directory.Exists(path);
        public IEnumerable<string> EnumerateDirectories(string directory) => Directory.EnumerateDirectories(directory);
        public void MoveDirectory(string from, string to) => Directory.Move(from, to);
        public void DeleteDirectory(string path) => Directory.Delete(path, true);
        public void SyncDirectory(string path)
        {
        }

        private sealed class Counted(DescriptorLimitedFileSystem owner, ISegmentFile inner) : ISegmentFile
        {
            public string Path => inner.Path;
            public long Length => inner.Length;
            public int Read(long position, Span<byte> destination) => inner.Read(position, destination);
            public void Write(long position, ReadOnlySpan<byte> source) => inner.Write(position, source);
            public void SetLength(long length) => inner.SetLength(length);
            public void Flush() => inner.Flush();

            public void Dispose()
            {
                inner.Dispose();
                Interlocked.Decrement(ref owner._open);
            }
        }
    }
}
