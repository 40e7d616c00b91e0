namespace Tributary.Storage.Tests;

public sealed class RetentionTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly FakeTimeProvider _time = FakeTime.Create();

    public void Dispose() => _dir.Dispose();

    private static LogConfig OneBatchPerSegment(int batchSize) => new()
    {
        SegmentBytes = batchSize,
        SegmentMs = long.MaxValue / 4,
        RetentionMs = -1,
        FileDeleteDelayMs = 0,
        FlushPolicy = FlushPolicy.PageCache,
    };

    [Fact]
    public async Task Time_retention_deletes_whole_expired_segments_but_never_the_active_one()
    {
        int batchSize = Batches.Make(2, 0).Length;
        using var log = PartitionLog.Open(_dir.Path, OneBatchPerSegment(batchSize) with { RetentionMs = 10_000 }, _time);
        for (int i = 0; i < 10; i++)
        {
            await log.AppendAsync(Batches.Make(2, _time.NowMs));
            _time.Advance(1000);
        }

        Assert.Equal(10, log.SegmentCount);
        Assert.Equal(0, log.EnforceRetention());

        _time.Advance(4500); // now = start + 14.5 s: batches stamped at start+0..4 s are older than 10 s
        Assert.Equal(5, log.EnforceRetention());
        Assert.Equal(5, log.SegmentCount);
        Assert.Equal(10, log.LogStartOffset);
        Assert.Equal(StorageError.OffsetOutOfRange, Assert.Throws<StorageException>(() => log.Read(9, 100)).Error);
        Assert.Equal(10, Batches.ReadAll(log)[0].Offset);

        _time.Advance(1_000_000);
        Assert.Equal(4, log.EnforceRetention());
        Assert.Equal(1, log.SegmentCount);
        Assert.Equal(20, log.LogEndOffset);
        Assert.Equal(18, log.LogStartOffset);
        Assert.Equal(2, Batches.ReadAll(log).Count);
    }

    [Fact]
    public async Task Size_retention_deletes_oldest_whole_segments_until_under_the_limit()
    {
        int batchSize = Batches.Make(3, 0).Length;
        using var log = PartitionLog.Open(_dir.Path, OneBatchPerSegment(batchSize) with { RetentionBytes = batchSize * 4 + 10 }, _time);
        for (int i = 0; i < 10; i++)
        {
            await log.AppendAsync(Batches.Make(3, 0));
        }

        Assert.Equal(5, log.EnforceRetention());
        Assert.Equal(5, log.SegmentCount);
        Assert.Equal(batchSize * 5, log.SizeInBytes);
        Assert.Equal(15, log.LogStartOffset);
        Assert.Equal(15, Batches.ReadAll(log).Count);
        Assert.Equal(0, log.EnforceRetention());
    }

    [Fact]
    public async Task Removed_segments_stay_as_deleted_files_until_the_delay_passes()
    {
        int batchSize = Batches.Make(1, 0).Length;
        using var log = PartitionLog.Open(_dir.Path, OneBatchPerSegment(batchSize) with { RetentionBytes = 0, FileDeleteDelayMs = 60_000 }, _time);
        for (int i = 0; i < 3; i++)
        {
            await log.AppendAsync(Batches.Make(1, 0));
        }

        Assert.Equal(2, log.EnforceRetention());
        Assert.Equal(6, Directory.GetFiles(_dir.Path, "*.deleted").Length);
        _time.Advance(60_000);
        Assert.Equal(0, log.EnforceRetention());
        Assert.Empty(Directory.GetFiles(_dir.Path, "*.deleted"));
        Assert.Single(Directory.GetFiles(_dir.Path, "*.log"));
    }

    [Fact]
    public async Task Segment_ms_rolls_the_active_segment_on_the_retention_pass()
    {
        using var log = PartitionLog.Open(_dir.Path, new LogConfig { SegmentMs = 1000, FlushPolicy = FlushPolicy.PageCache }, _time);
        await log.AppendAsync(Batches.Make(1, _time.NowMs));
        Assert.Equal(0, log.EnforceRetention());
        Assert.Equal(1, log.SegmentCount);
        _time.Advance(1000);
        log.EnforceRetention();
        Assert.Equal(2, log.SegmentCount);
        var next = await log.AppendAsync(Batches.Make(1, 0));
        Assert.Equal(1, next.BaseOffset);
    }

    [Fact]
    public async Task Retention_changes_apply_when_the_config_is_altered()
    {
        int batchSize = Batches.Make(1, 0).Length;
        using var log = PartitionLog.Open(_dir.Path, OneBatchPerSegment(batchSize), _time);
        for (int i = 0; i < 4; i++)
        {
            await log.AppendAsync(Batches.Make(1, 0));
        }

        Assert.Equal(0, log.EnforceRetention());
        log.Config = log.Config with { RetentionBytes = 1 };
        Assert.Equal(3, log.EnforceRetention());
    }
}
