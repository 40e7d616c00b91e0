namespace Tributary.Storage.Tests;

/// <summary>
/// kill -9 at every step of a cleaning pass: writing the .cleaned files, each rename of the swap, each directory
/// fsync, the checkpoint. Whatever step dies, the reopened log holds either the old segments or the cleaned ones
/// for each range, never a mix, never an overlap, never a loss; no .cleaned or .swap file survives recovery.
/// </summary>
public sealed class CompactionCrashTests
{
    [Fact]
    public async Task A_crash_at_any_step_of_cleaning_leaves_a_consistent_log()
    {
        int completedAt = -1;
        for (int crashAfter = 0; crashAfter < 400 && completedAt < 0; crashAfter++)
        {
            using var dir = new TempDir();
            var time = FakeTime.Create();
            var fs = new CrashingFileSystem();
            var model = new KeyedWorkload();
            var config = new LogConfig
            {
                SegmentBytes = 500,
                FlushPolicy = FlushPolicy.PageCache,
                CleanupCompact = true,
                CleanupDelete = false,
                IndexIntervalBytes = 100,
                DeleteRetentionMs = 0,
            };
            var log = PartitionLog.Open(dir.Path, config, time, fs, LogFlusher.Shared);
            for (int round = 0; round < 8; round++)
            {
                await model.AppendAsync(log, [("a", $"a{round}"), ("b", round == 7 ? null : $"b{round}"), ($"u{round}", "u")], time.NowMs);
            }

            log.Roll();
            await model.AppendAsync(log, [("sentinel", "s")], time.NowMs);
            var cleaner = Cleaners.For(log, time);
            cleaner.Clean(log); // first pass sets the tombstone horizon (retention 0)
            time.Advance(1);
            log.Roll();
            await model.AppendAsync(log, [("a", "last")], time.NowMs);
            log.Roll();
            await model.AppendAsync(log, [("sentinel", "s2")], time.NowMs);

            fs.CrashAfter(crashAfter);
            try
            {
                cleaner.Clean(log);
                if (!fs.Crashed)
                {
                    completedAt = crashAfter;
                }
            }
            catch (Exception e) when (e is IOException or StorageException)
            {
            }

            log.Dispose();
            using var reopened = PartitionLog.Open(dir.Path, config, time);
            Assert.DoesNotContain(Directory.EnumerateFiles(dir.Path), f => f.EndsWith(".cleaned", StringComparison.Ordinal) || f.EndsWith(".swap", StringComparison.Ordinal));
            model.AssertConsistent(reopened);
            Assert.Equal(model.Written.Keys.Max() + 1, reopened.LogEndOffset);
            Assert.Equal(0, reopened.LogStartOffset);
        }

        Assert.True(completedAt > 5, $"the pass completed after {completedAt} disk changes");
    }

    [Fact]
    public async Task A_committed_swap_is_completed_by_recovery_even_if_the_old_segments_are_still_there()
    {
        using var dir = new TempDir();
        var time = FakeTime.Create();
        var model = new KeyedWorkload();
        var config = new LogConfig { SegmentBytes = 400, FlushPolicy = FlushPolicy.PageCache, CleanupCompact = true, CleanupDelete = false };
        using (var log = PartitionLog.Open(dir.Path, config, time))
        {
            for (int round = 0; round < 10; round++)
            {
                await model.AppendAsync(log, [("k", $"v{round}")], time.NowMs);
            }

            log.Roll();
            await model.AppendAsync(log, [("sentinel", "s")], time.NowMs);
        }

        // Hand-made: a swap covering segments 0.. written as the cleaner would, old segments untouched (crash right after the commit rename).
        var first = Directory.EnumerateFiles(dir.Path, "*.log").Order().First();
        using (var log = PartitionLog.Open(dir.Path, config, time))
        {
            var (segments, _) = log.CleanableSnapshot();
            Assert.True(segments.Length >= 2);
        }

        File.Copy(first, first + ".swap");
        using (var reopened = PartitionLog.Open(dir.Path, config, time))
        {
            Assert.False(File.Exists(first + ".swap"));
            model.AssertConsistent(reopened);
        }
    }
}
