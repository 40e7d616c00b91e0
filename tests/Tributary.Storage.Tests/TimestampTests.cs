using CsCheck;
using Tributary.Protocol.Records;

namespace Tributary.Storage.Tests;

public sealed class TimestampTests
{
    [Fact]
    public void FindOffsetByTimestamp_is_exact_across_many_segments()
    {
        var gen = Gen.Select(Gen.Int[1, 80], Gen.Int[0, int.MaxValue], Gen.Int[0, 2]);
        gen.Sample((batches, seed, spread) =>
        {
            using var dir = new TempDir();
            var random = new Random(seed);
            var config = new LogConfig { SegmentBytes = 1500, IndexIntervalBytes = 200, FlushPolicy = FlushPolicy.PageCache };
            using var log = PartitionLog.Open(dir.Path, config, FakeTime.Create());
            long clock = 1_000_000;
            for (int i = 0; i < batches; i++)
            {
                // Mostly rising timestamps with jitter (CreateTime from many producers), sometimes far back.
                clock += random.Next(0, 50);
                var timestamps = Enumerable.Range(0, random.Next(1, 8))
                    .Select(_ => spread == 0 ? clock + random.Next(-30, 30) : spread == 1 ? random.Next(0, 2_000_000) : clock)
                    .ToArray();
                log.AppendAsync(Batches.Make(timestamps, $"b{i}")).AsTask().GetAwaiter().GetResult();
            }

            var records = Batches.ReadAll(log);
            var targets = records.SelectMany(r => new[] { r.Timestamp - 1, r.Timestamp, r.Timestamp + 1 })
                .Append(long.MinValue).Append(-1).Append(long.MaxValue).Distinct().ToList();
            foreach (long target in targets)
            {
                var expected = records.FirstOrDefault(r => r.Timestamp >= target);
                var expectedLookup = expected.Value is null ? TimestampLookup.None : new TimestampLookup(expected.Offset, expected.Timestamp);
                Assert.Equal(expectedLookup, log.FindOffsetByTimestamp(target));
            }

            long max = records.Max(r => r.Timestamp);
            var first = records.First(r => r.Timestamp == max);
            Assert.Equal(new TimestampLookup(first.Offset, max), log.FindMaxTimestamp());
        }, iter: 40, threads: 1);
    }

    [Fact]
    public async Task Timestamp_lookups_skip_records_below_the_log_start()
    {
        using var dir = new TempDir();
        using var log = PartitionLog.Open(dir.Path, new LogConfig(), FakeTime.Create());
        await log.AppendAsync(Batches.Make([100, 200, 300, 400]));
        log.DeleteRecordsBefore(2);
        Assert.Equal(new TimestampLookup(2, 300), log.FindOffsetByTimestamp(0));
        Assert.Equal(new TimestampLookup(3, 400), log.FindMaxTimestamp());
        Assert.Equal(TimestampLookup.None, log.FindOffsetByTimestamp(401));
    }

    [Fact]
    public void Empty_log_has_no_timestamps()
    {
        using var dir = new TempDir();
        using var log = PartitionLog.Open(dir.Path, new LogConfig(), FakeTime.Create());
        Assert.Equal(TimestampLookup.None, log.FindOffsetByTimestamp(0));
        Assert.Equal(TimestampLookup.None, log.FindMaxTimestamp());
    }

    [Fact]
    public async Task Timestamp_lookups_survive_reopen()
    {
        using var dir = new TempDir();
        var config = new LogConfig { SegmentBytes = 1000, IndexIntervalBytes = 100 };
        using (var log = PartitionLog.Open(dir.Path, config, FakeTime.Create()))
        {
            for (int i = 0; i < 50; i++)
            {
                await log.AppendAsync(Batches.Make([i * 10L, i * 10L + 5]));
            }
        }

        using (var log = PartitionLog.Open(dir.Path, config, FakeTime.Create()))
        {
            Assert.True(log.SegmentCount > 3);
            Assert.Equal(new TimestampLookup(51, 255), log.FindOffsetByTimestamp(251));
            Assert.Equal(new TimestampLookup(99, 495), log.FindMaxTimestamp());
        }
    }
}
