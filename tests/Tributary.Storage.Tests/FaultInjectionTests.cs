namespace Tributary.Storage.Tests;

/// <summary>Disk failures and group commit, driven deterministically through the file-system seam.</summary>
public sealed class FaultInjectionTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly FakeTimeProvider _time = FakeTime.Create();
    private readonly FaultyFileSystem _fs = new();
    private readonly LogFlusher _flusher = new("test-flusher");

    public void Dispose()
    {
        _fs.FlushGate.Set();
        _flusher.Dispose();
        _dir.Dispose();
    }

    private PartitionLog Open(LogConfig? config = null) =>
        PartitionLog.Open(_dir.Path, config ?? new LogConfig { IndexIntervalBytes = 64 }, _time, _fs, _flusher);

    [Fact]
    public async Task A_full_disk_fails_the_append_keeps_earlier_data_and_appends_resume_when_space_returns()
    {
        using (var log = Open())
        {
            for (int i = 0; i < 10; i++)
            {
                await log.AppendAsync(Batches.Make(2, i, $"ok{i}"));
            }

            long size = log.SizeInBytes;
            _fs.DiskFull = true;
            var error = await Assert.ThrowsAsync<StorageException>(() => log.AppendAsync(Batches.Make(3, 50, "lost")).AsTask());
            Assert.Equal(StorageError.StorageFailure, error.Error);
            Assert.Equal(20, log.LogEndOffset);
            Assert.Equal(20, log.HighWatermark);
            Assert.Equal(size, log.SizeInBytes);
            Assert.Equal(size, new FileInfo(Path.Combine(_dir.Path, "00000000000000000000.log")).Length);
            Assert.Equal(20, Batches.ReadAll(log).Count);

            _fs.DiskFull = false;
            var result = await log.AppendAsync(Batches.Make(1, 60, "later"));
            Assert.Equal(20, result.BaseOffset);
            Assert.Equal("later-0", Batches.Value(Batches.ReadAll(log)[^1]));
        }

        using (var log = Open())
        {
            var values = Batches.ReadAll(log).Select(Batches.Value).ToList();
            Assert.Equal(21, values.Count);
            Assert.DoesNotContain(values, v => v.StartsWith("lost", StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task A_full_disk_while_rolling_fails_the_append_and_the_log_stays_usable()
    {
        using var log = Open(new LogConfig { SegmentBytes = 300 });
        await log.AppendAsync(Batches.Make(3, 1));
        await log.AppendAsync(Batches.Make(3, 1));
        _fs.DiskFull = true;
        await Assert.ThrowsAsync<StorageException>(() => log.AppendAsync(Batches.Make(3, 1)).AsTask());
        _fs.DiskFull = false;
        var result = await log.AppendAsync(Batches.Make(3, 1));
        Assert.Equal(log.LogEndOffset - 3, result.BaseOffset);
        Assert.Equal(log.LogEndOffset, Batches.ReadAll(log).Count);
    }

    [Fact]
    public async Task A_failed_sync_fails_the_waiting_appends_and_turns_the_log_read_only()
    {
        using (var log = Open())
        {
            await log.AppendAsync(Batches.Make(2, 1, "synced"));
            _fs.FailFlushes = true;
            var error = await Assert.ThrowsAsync<StorageException>(() => log.AppendAsync(Batches.Make(2, 1, "unsynced")).AsTask());
            Assert.Equal(StorageError.StorageFailure, error.Error);
            Assert.Equal(2, log.HighWatermark);
            _fs.FailFlushes = false;
            var again = await Assert.ThrowsAsync<StorageException>(() => log.AppendAsync(Batches.Make(1, 1)).AsTask());
            Assert.Equal(StorageError.StorageFailure, again.Error);
            Assert.Equal(["synced-0", "synced-1"], Batches.ReadAll(log).Select(Batches.Value));
        }

        Assert.False(File.Exists(Path.Combine(_dir.Path, PartitionLog.CleanShutdownFile)));
        using (var log = Open())
        {
            var result = await log.AppendAsync(Batches.Make(1, 1));
            Assert.Equal(log.LogEndOffset - 1, result.BaseOffset);
        }
    }

    [Fact]
    public async Task Rolling_syncs_the_closed_segment_and_the_directory()
    {
        using var log = Open(new LogConfig { SegmentBytes = Batches.Make(3, 1).Length });
        await log.AppendAsync(Batches.Make(3, 1));
        await log.AppendAsync(Batches.Make(3, 1));
        Assert.Equal(2, log.SegmentCount);
        Assert.True(_fs.DirectorySyncCount >= 1);
    }

    [Fact]
    public async Task Concurrent_appends_share_syncs()
    {
        using var log = Open();
        log.LeaderEpoch = 0; // becoming leader writes the epoch checkpoint (one sync) before the appends of the epoch
        int syncsBefore = _fs.FlushCount;
        _fs.HoldFlushes = true;
        var first = log.AppendAsync(Batches.Make(1, 1)).AsTask();
        Assert.True(await _fs.FlushEntered.WaitAsync(TimeSpan.FromSeconds(30)), "the flusher never synced");

        // While that sync is held, appends keep flowing: each writes and joins the next generation.
        var rest = Enumerable.Range(0, 100).Select(i => log.AppendAsync(Batches.Make(1, i)).AsTask()).ToList();
        Assert.Equal(101, log.LogEndOffset);
        Assert.Equal(0, log.HighWatermark);
        Assert.All(rest, t => Assert.False(t.IsCompleted));

        _fs.HoldFlushes = false;
        _fs.FlushGate.Set();
        await first;
        var results = await Task.WhenAll(rest);
        Assert.Equal(Enumerable.Range(1, 100).Select(i => (long)i), results.Select(r => r.BaseOffset).Order());
        Assert.Equal(101, log.HighWatermark);
        Assert.InRange(_fs.FlushCount - syncsBefore, 2, 3);
    }

    [Fact]
    public async Task Concurrent_appends_from_many_threads_all_complete_with_fewer_syncs_than_appends()
    {
        using var log = Open();
        var tasks = Enumerable.Range(0, 8).Select(t => Task.Run(async () =>
        {
            var pending = new List<Task<AppendResult>>();
            for (int i = 0; i < 50; i++)
            {
                pending.Add(log.AppendAsync(Batches.Make(1, i)).AsTask());
            }

            return await Task.WhenAll(pending);
        })).ToList();
        var all = (await Task.WhenAll(tasks)).SelectMany(r => r).Select(r => r.BaseOffset).Order().ToList();
        Assert.Equal(Enumerable.Range(0, 400).Select(i => (long)i), all);
        Assert.True(_fs.FlushCount < 400, $"{_fs.FlushCount} syncs for 400 appends");
    }
}

/// <summary>Issue 12 #6: background failures are reported to the one diagnostics sink, and none leaves an append waiting.</summary>
public sealed class StorageDiagnosticsTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly FakeTimeProvider _time = FakeTime.Create();
    private readonly FaultyFileSystem _fs = new();
    private readonly LogFlusher _flusher = new("test-flusher");
    private readonly StorageDiagnostics _diagnostics = new();
    private readonly System.Collections.Concurrent.ConcurrentQueue<StorageProblem> _problems = new();

    public StorageDiagnosticsTests() => _diagnostics.Problem += _problems.Enqueue;

    public void Dispose()
    {
        _flusher.Dispose();
        _dir.Dispose();
    }

    private PartitionLog Open() => PartitionLog.Open(_dir.Path, new LogConfig(), _time, _fs, _flusher, _diagnostics);

    [Fact]
    public async Task A_sync_that_throws_anything_fails_its_appends_and_is_reported()
    {
        using var log = Open();
        await log.AppendAsync(Batches.Make(1, 1));
        _fs.FlushThrows = new InvalidOperationException("not an I/O error");
        var append = log.AppendAsync(Batches.Make(1, 2)).AsTask();
        // Before, only I/O exceptions were caught: this append waited for ever.
        var error = await Assert.ThrowsAsync<StorageException>(() => append.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(StorageError.StorageFailure, error.Error);
        var problem = Assert.Single(_problems);
        Assert.StartsWith("fsync", problem.Operation, StringComparison.Ordinal);
        Assert.Equal(_dir.Path, problem.Where);
        Assert.IsType<InvalidOperationException>(problem.Error);
        // The log is read-only from then on, as after an I/O error.
        _fs.FlushThrows = null;
        await Assert.ThrowsAsync<StorageException>(() => log.AppendAsync(Batches.Make(1, 3)).AsTask());
    }

    [Fact]
    public async Task A_failing_high_watermark_subscriber_is_reported_and_the_append_succeeds()
    {
        using var log = Open();
        log.HighWatermarkAdvanced += _ => throw new InvalidOperationException("subscriber bug");
        var result = await log.AppendAsync(Batches.Make(2, 1));
        Assert.Equal(0, result.BaseOffset);
        Assert.Contains(_problems, p => p.Operation == "high-watermark subscriber" && p.Error.Message == "subscriber bug");
    }
}
