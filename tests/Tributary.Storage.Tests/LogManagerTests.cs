namespace Tributary.Storage.Tests;

public sealed class LogManagerTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly FakeTimeProvider _time = FakeTime.Create();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Partitions_are_discovered_after_restart_with_their_data()
    {
        using (var manager = new LogManager(_dir.Path, _time))
        {
            Assert.Empty(manager.ExistingPartitions());
            var log = manager.GetOrCreate("orders-eu", 3, new LogConfig());
            Assert.Same(log, manager.GetOrCreate("orders-eu", 3, new LogConfig()));
            Assert.Same(log, manager.Get("orders-eu", 3));
            Assert.Null(manager.Get("orders-eu", 4));
            await log.AppendAsync(Batches.Make(2, 1));
            await manager.GetOrCreate("audit", 0, new LogConfig()).AppendAsync(Batches.Make(1, 1));
        }

        Assert.True(Directory.Exists(Path.Combine(_dir.Path, "orders-eu-3")));
        using (var manager = new LogManager(_dir.Path, _time))
        {
            Assert.Equal([("audit", 0), ("orders-eu", 3)], manager.ExistingPartitions().Order());
            Assert.Equal(2, manager.GetOrCreate("orders-eu", 3, new LogConfig()).LogEndOffset);
        }
    }

    [Fact]
    public async Task DeleteTopic_removes_open_and_unopened_partitions_only_of_that_topic()
    {
        using (var manager = new LogManager(_dir.Path, _time))
        {
            await manager.GetOrCreate("a", 0, new LogConfig()).AppendAsync(Batches.Make(1, 1));
            await manager.GetOrCreate("a", 1, new LogConfig()).AppendAsync(Batches.Make(1, 1));
            await manager.GetOrCreate("a-b", 0, new LogConfig()).AppendAsync(Batches.Make(1, 1));
        }

        using (var manager = new LogManager(_dir.Path, _time))
        {
            manager.GetOrCreate("a", 0, new LogConfig());
            manager.DeleteTopic("a");
            manager.WaitForDeletions();
            Assert.Null(manager.Get("a", 0));
            Assert.Equal(["a-b-0"], Directory.GetDirectories(_dir.Path).Select(Path.GetFileName));
            Assert.Equal(1, manager.GetOrCreate("a-b", 0, new LogConfig()).LogEndOffset);
            Assert.Equal(0, manager.GetOrCreate("a", 0, new LogConfig()).LogEndOffset);
        }
    }

    [Fact]
    public async Task Background_retention_runs_on_the_injected_clock()
    {
        using var manager = new LogManager(_dir.Path, _time);
        int batchSize = Batches.Make(1, 0).Length;
        var log = manager.GetOrCreate("t", 0, new LogConfig { SegmentBytes = batchSize, RetentionBytes = 0, FileDeleteDelayMs = 0, FlushPolicy = FlushPolicy.PageCache });
        for (int i = 0; i < 3; i++)
        {
            await log.AppendAsync(Batches.Make(1, 0));
        }

        Assert.Equal(2, manager.EnforceRetentionOnce());
        Assert.Equal(1, log.SegmentCount);
        manager.StartBackgroundTasks(1000);
        await manager.StopAsync();
    }
}
