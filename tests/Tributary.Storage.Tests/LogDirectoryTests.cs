using System.Diagnostics.Metrics;

namespace Tributary.Storage.Tests;

/// <summary>
/// Several data directories (log.dirs) and Kafka's log-directory failure: an I/O failure on one partition's files takes
/// its whole directory offline, its partitions answer StorageFailure without touching the disk, the others go on.
/// </summary>
public sealed class LogDirectoryTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private readonly TempDir _root = new();
    private readonly FakeTimeProvider _time = FakeTime.Create();
    private readonly FaultyFileSystem _fs = new();

    public void Dispose() => _root.Dispose();

    private string Dir(string name) => Path.Combine(_root.Path, name);

    private static LogConfig Durable => new() { FlushPolicy = FlushPolicy.Durable };

    [Fact]
    public async Task A_write_failure_takes_its_directory_offline_and_leaves_the_other_serving()
    {
        string a = Dir("a"), b = Dir("b");
        using var manager = new LogManager([a, b], _time, _fs);
        var problems = new List<StorageProblem>();
        manager.Diagnostics.Problem += p =>
        {
            lock (problems) problems.Add(p);
        };
        LogDirectoryFailure? failure = null;
        manager.LogDirectoryFailed += f => Volatile.Write(ref failure, f);
        using var offlineGauge = new GaugeReader(manager.Metrics.Meter, "tributary.log.directories.offline");

        var logs = Enumerable.Range(0, 4).Select(p => manager.GetOrCreate("t", p, Durable)).ToArray();
        Assert.Equal([a, b, a, b], logs.Select(l => Path.GetDirectoryName(l.Directory)));
        foreach (var log in logs) await log.AppendAsync(Batches.Make(2, 1, "before"));
        Assert.Equal(0, offlineGauge.Read());

        // An append to partition 3 (dir b) waits behind a held sync; a second one waits for the next sync.
        _fs.HoldFlushes = true;
        var synced = logs[3].AppendAsync(Batches.Make(1, 1, "held")).AsTask();
        Assert.True(await _fs.FlushEntered.WaitAsync(Timeout));
        var waiting = logs[3].AppendAsync(Batches.Make(1, 1, "waiting")).AsTask();

        // Dir b's disk fails: the append that meets it fails, the directory goes offline, the waiting append fails.
        _fs.FailUnder = b + Path.DirectorySeparatorChar;
        var failed = await Assert.ThrowsAsync<StorageException>(() => logs[1].AppendAsync(Batches.Make(1, 1, "lost")).AsTask());
        Assert.Equal(StorageError.StorageFailure, failed.Error);
        Assert.True(logs[1].IsOffline && logs[3].IsOffline && manager.Directories[1].IsOffline);
        Assert.False(logs[0].IsOffline || logs[2].IsOffline || manager.Directories[0].IsOffline);
        var waitingError = await Assert.ThrowsAsync<StorageException>(() => waiting.WaitAsync(Timeout));
        Assert.Equal(StorageError.StorageFailure, waitingError.Error);
        _fs.HoldFlushes = false;
        _fs.FlushGate.Set();
        await Record.ExceptionAsync(() => synced.WaitAsync(Timeout)); // completes one way or the other, never hangs

        await Eventually.TrueAsync(() => Volatile.Read(ref failure) is not null, Timeout, "the LogDirectoryFailed event");
        Assert.Same(manager.Directories[1], failure!.Directory);
        Assert.False(failure.Fatal);
        Assert.Equal([("t", 1), ("t", 3)], failure.Partitions.Order());
        lock (problems) Assert.Contains(problems, p => p.Where == b && p.Operation.Contains("offline", StringComparison.Ordinal));
        Assert.Equal(1, offlineGauge.Read());
        Assert.Equal([("t", 1), ("t", 3)], manager.OfflinePartitions().Order());

        // From now on dir b's partitions refuse everything without touching the disk.
        _fs.CountUnder = b;
        foreach (var log in new[] { logs[1], logs[3] })
        {
            Assert.Equal(StorageError.StorageFailure, (await Assert.ThrowsAsync<StorageException>(() => log.AppendAsync(Batches.Make(1, 1)).AsTask())).Error);
            Assert.Equal(StorageError.StorageFailure, Assert.Throws<StorageException>(() => log.Read(0, 1024)).Error);
            Assert.Equal(StorageError.StorageFailure, Assert.Throws<StorageException>(() => log.FindOffsetByTimestamp(0)).Error);
            Assert.Equal(StorageError.StorageFailure, Assert.Throws<StorageException>(() => log.DeleteRecordsBefore(1)).Error);
            Assert.Equal(StorageError.StorageFailure, Assert.Throws<StorageException>(() => log.Roll()).Error);
            Assert.Equal(StorageError.StorageFailure, Assert.Throws<StorageException>(() => log.EnforceRetention()).Error);
        }

        manager.EnforceRetentionOnce();
        Assert.Equal(0, _fs.AccessesUnder);

        // Dir a goes on: appends, reads, and new partitions (placed on the one online directory).
        foreach (var log in new[] { logs[0], logs[2] })
        {
            await log.AppendAsync(Batches.Make(1, 1, "after"));
            Assert.Equal(["before-0", "before-1", "after-0"], Batches.ReadAll(log).Select(Batches.Value));
        }

        Assert.Equal(a, Path.GetDirectoryName(manager.GetOrCreate("new", 0, Durable).Directory));
        Assert.Equal(0, _fs.AccessesUnder);
    }

    [Fact]
    public async Task A_failed_sync_takes_the_directory_offline_and_the_metadata_directory_failing_is_fatal()
    {
        string a = Dir("a"), b = Dir("b");
        using var manager = new LogManager([a, b], _time, _fs);
        var failures = new List<LogDirectoryFailure>();
        manager.LogDirectoryFailed += f =>
        {
            lock (failures) failures.Add(f);
        };
        var inA = manager.GetOrCreate("t", 0, Durable);
        var inB = manager.GetOrCreate("t", 1, Durable);

        _fs.FailFlushesUnder = a + Path.DirectorySeparatorChar;
        var error = await Assert.ThrowsAsync<StorageException>(() => inA.AppendAsync(Batches.Make(1, 1)).AsTask().WaitAsync(Timeout));
        Assert.Equal(StorageError.StorageFailure, error.Error);
        Assert.True(manager.Directories[0].IsOffline);
        await Eventually.TrueAsync(() =>
        {
            lock (failures) return failures.Count == 1;
        }, Timeout, "one LogDirectoryFailed event");
        Assert.True(failures[0].Fatal); // the metadata directory
        await inB.AppendAsync(Batches.Make(1, 1));
        Assert.Equal(1, inB.HighWatermark);
    }

    [Fact]
    public async Task Every_directory_offline_is_fatal_and_a_single_directory_goes_offline_too()
    {
        string a = Dir("a");
        using var manager = new LogManager(a, _time, _fs);
        LogDirectoryFailure? failure = null;
        manager.LogDirectoryFailed += f => Volatile.Write(ref failure, f);
        var log = manager.GetOrCreate("t", 0, Durable);
        Assert.Equal(Path.Combine(a, "t-0"), log.Directory); // today's layout
        _fs.FailFlushesUnder = a;
        await Assert.ThrowsAsync<StorageException>(() => log.AppendAsync(Batches.Make(1, 1)).AsTask().WaitAsync(Timeout));
        await Eventually.TrueAsync(() => Volatile.Read(ref failure) is not null, Timeout, "the LogDirectoryFailed event");
        Assert.True(failure!.Fatal);
    }

    [Fact]
    public async Task A_full_disk_fails_only_the_append_and_keeps_the_directory_online()
    {
        using var manager = new LogManager([Dir("a"), Dir("b")], _time, _fs);
        var log = manager.GetOrCreate("t", 0, Durable);
        _fs.DiskFull = true;
        Assert.Equal(StorageError.StorageFailure, (await Assert.ThrowsAsync<StorageException>(() => log.AppendAsync(Batches.Make(1, 1)).AsTask())).Error);
        _fs.DiskFull = false;
        Assert.False(log.IsOffline);
        await log.AppendAsync(Batches.Make(1, 1));
        Assert.Equal(1, log.HighWatermark);
    }

    [Fact]
    public async Task New_partitions_go_to_the_directory_with_the_fewest()
    {
        string a = Dir("a"), b = Dir("b"), c = Dir("c");
        using (var manager = new LogManager([a, b], _time, _fs))
        {
            for (int p = 0; p < 3; p++) await manager.GetOrCreate("x", p, Durable).AppendAsync(Batches.Make(1, 1));
        }

        Assert.Equal(["x-0", "x-2"], Directory.GetDirectories(a).Select(Path.GetFileName).Order());
        Assert.Equal(["x-1"], Directory.GetDirectories(b).Select(Path.GetFileName));

        // Restart with a third, empty directory: existing partitions stay where they are, new ones fill c, then b.
        using (var manager = new LogManager([a, b, c], _time, _fs))
        {
            Assert.Equal(1, manager.GetOrCreate("x", 2, Durable).LogEndOffset);
            Assert.Equal(a, manager.DirectoryOf("x", 2)!.Path);
            Assert.Equal(c, Path.GetDirectoryName(manager.GetOrCreate("y", 0, Durable).Directory));
            Assert.Equal(b, Path.GetDirectoryName(manager.GetOrCreate("y", 1, Durable).Directory)); // b and c hold one each, b first
            Assert.Equal(c, Path.GetDirectoryName(manager.GetOrCreate("y", 2, Durable).Directory));
        }
    }

    [Fact]
    public void A_partition_in_two_directories_refuses_start()
    {
        string a = Dir("a"), b = Dir("b");
        Directory.CreateDirectory(Path.Combine(a, "t-0"));
        Directory.CreateDirectory(Path.Combine(b, "t-0"));
        var error = Assert.Throws<StorageException>(() => new LogManager([a, b], _time, _fs));
        Assert.Contains("t-0", error.Message, StringComparison.Ordinal);
        Assert.Contains(a, error.Message, StringComparison.Ordinal);
        Assert.Contains(b, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_directory_that_cannot_be_opened_starts_offline_unless_it_is_the_metadata_directory()
    {
        string a = Dir("a"), b = Dir("b");
        File.WriteAllText(b, "not a directory");
        using (var manager = new LogManager([a, b], _time, _fs))
        {
            Assert.True(manager.Directories[1].IsOffline);
            Assert.False(manager.Directories[0].IsOffline);
            // A known partition not found on an online directory may be on the offline one: not created empty.
            Assert.Equal(StorageError.StorageFailure, Assert.Throws<StorageException>(() => manager.GetOrCreate("t", 0, Durable, Guid.NewGuid(), fresh: false)).Error);
            Assert.True(manager.IsOffline("t", 0));
            var fresh = manager.GetOrCreate("u", 0, Durable, Guid.NewGuid(), fresh: true);
            Assert.Equal(a, Path.GetDirectoryName(fresh.Directory));
            await fresh.AppendAsync(Batches.Make(1, 1));
        }

        var error = Assert.Throws<StorageException>(() => new LogManager([b, a], _time, _fs));
        Assert.Contains("metadata log directory " + b, error.Message, StringComparison.Ordinal);
    }

    /// <summary>Reads one observable gauge of a meter on demand.</summary>
    private sealed class GaugeReader : IDisposable
    {
        private readonly MeterListener _listener = new();
        private long _value = -1;

        public GaugeReader(Meter meter, string name)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (ReferenceEquals(instrument.Meter, meter) && instrument.Name == name) listener.EnableMeasurementEvents(instrument);
            };
            _listener.SetMeasurementEventCallback<int>((_, value, _, _) => _value = value);
            _listener.Start();
        }

        public long Read()
        {
            _value = -1;
            _listener.RecordObservableInstruments();
            return _value;
        }

        public void Dispose() => _listener.Dispose();
    }
}
