using System.Text;
using CsCheck;
using Tributary.Protocol.Records;
using Tributary.Storage.Cleaning;

namespace Tributary.Storage.Tests;

public sealed class CompactionTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly FakeTimeProvider _time = FakeTime.Create();

    public void Dispose() => _dir.Dispose();

    private static LogConfig Compacted(int segmentBytes = 600) => new()
    {
        SegmentBytes = segmentBytes,
        FlushPolicy = FlushPolicy.PageCache,
        CleanupCompact = true,
        CleanupDelete = false,
        IndexIntervalBytes = 128,
        DeleteRetentionMs = 1000,
        MinCleanableDirtyRatio = 0.5,
    };

    /// <summary>Appends a record of a key nobody else uses, so the high watermark moves into the active segment and every closed one is cleanable.</summary>
    private static async Task SealAsync(PartitionLog log, KeyedWorkload model, FakeTimeProvider time)
    {
        log.Roll();
        await model.AppendAsync(log, [("sentinel", Guid.NewGuid().ToString("N"))], time.NowMs);
    }

    [Fact]
    public async Task Cleaning_keeps_the_last_value_per_key_at_its_original_offset()
    {
        var model = new KeyedWorkload();
        using var log = PartitionLog.Open(_dir.Path, Compacted(), _time);
        for (int round = 0; round < 20; round++)
        {
            await model.AppendAsync(log, [.. Enumerable.Range(0, 5).Select(k => ($"k{k}", (string?)$"v{round}"))], _time.NowMs);
        }

        await SealAsync(log, model, _time);
        long sizeBefore = log.SizeInBytes;
        using var cleaner = Cleaners.For(log, _time);
        var reported = new List<(PartitionLog Log, CleanResult Result)>();
        cleaner.Cleaned += (l, r) => reported.Add((l, r));
        var result = cleaner.Clean(log);

        Assert.True(result.Cleaned);
        // The pass is reported (the broker logs it, with its bytes and speed), and the totals count it.
        Assert.Equal([(log, result)], reported);
        Assert.True(result.BytesRead > 0 && result.BytesWritten > 0 && result.BytesWritten < result.BytesRead);
        Assert.Equal((result.BytesRead, result.BytesWritten), (cleaner.BytesRead, cleaner.BytesWritten));
        Assert.True(log.SizeInBytes < sizeBefore / 2, $"{log.SizeInBytes} of {sizeBefore}");
        model.AssertConsistent(log);
        var records = KeyedWorkload.ReadAll(log);
        Assert.Equal(6, records.Count);
        Assert.All(records.Take(5), r => Assert.Equal("v19", KeyedWorkload.ValueOf(r)));
        Assert.Equal(0, log.LogStartOffset);
        Assert.Equal(101, log.LogEndOffset);
        Assert.Equal(1.0, 1 - log.GetCleanerStatus().DirtyRatio);
    }

    [Fact]
    public async Task Batches_that_keep_no_record_are_emptied_from_their_headers_without_reading_their_records()
    {
        // 40 rounds of the same 8 keys, a batch of 8 large values per round: only the last round survives. The key map
        // reads the dirty log once; the rewrite then reads whole only the batches that keep a record, and of the other
        // 39 just their 61-byte headers. Reading everything twice, as before, would be about twice the log.
        var model = new KeyedWorkload();
        using var log = PartitionLog.Open(_dir.Path, Compacted(segmentBytes: 64 * 1024), _time);
        var value = new string('x', 400);
        for (int round = 0; round < 40; round++)
        {
            await model.AppendAsync(log, [.. Enumerable.Range(0, 8).Select(k => ($"k{k}", (string?)$"{round}:{value}"))], _time.NowMs);
        }

        await SealAsync(log, model, _time);
        long dirty = log.SizeInBytes;
        var result = Cleaners.For(log, _time).Clean(log);

        Assert.True(result.Cleaned);
        Assert.True(result.BytesRead < dirty * 13 / 10, $"read {result.BytesRead} bytes to clean a {dirty}-byte log");
        model.AssertConsistent(log);
        Assert.All(KeyedWorkload.ReadAll(log).Take(8), r => Assert.StartsWith("39:", KeyedWorkload.ValueOf(r)));
    }

    [Fact]
    public async Task Records_without_a_key_written_before_the_topic_became_compacted_are_removed_by_cleaning()
    {
        // A delete-policy topic takes records without keys; AlterConfigs then turns it into a compacted one. Kafka's
        // cleaner drops keyless records (they can never be compacted); keyed ones keep their latest value and offset.
        using var log = PartitionLog.Open(_dir.Path, Compacted() with { CleanupCompact = false, CleanupDelete = true }, _time);
        var keyed = new Dictionary<long, string>();
        for (int round = 0; round < 10; round++)
        {
            var builder = new RecordBatchBuilder();
            builder.Add(_time.NowMs, null, Encoding.UTF8.GetBytes($"keyless {round}a"));
            builder.Add(_time.NowMs, Encoding.UTF8.GetBytes($"k{round % 3}"), Encoding.UTF8.GetBytes($"v{round}"));
            builder.Add(_time.NowMs, null, Encoding.UTF8.GetBytes($"keyless {round}b"));
            var result = await log.AppendAsync(builder.Build());
            keyed[result.BaseOffset + 1] = $"k{round % 3}";
        }

        log.Config = Compacted();
        log.Roll();
        await log.AppendAsync(KeyedWorkload.Batch([("sentinel", "s")], _time.NowMs));
        Assert.True(Cleaners.For(log, _time).Clean(log).Cleaned);

        var records = KeyedWorkload.ReadAll(log);
        Assert.All(records, r => Assert.NotNull(r.Key));
        var survivors = records.Where(r => KeyedWorkload.KeyOf(r) != "sentinel").ToList();
        // The last write of k0, k1 and k2 (rounds 9, 7 and 8), each at the offset it was written at.
        Assert.Equal(["k1=v7", "k2=v8", "k0=v9"], survivors.Select(r => $"{KeyedWorkload.KeyOf(r)}={KeyedWorkload.ValueOf(r)}"));
        Assert.All(survivors, r => Assert.Equal(keyed[r.Offset], KeyedWorkload.KeyOf(r)));
        Assert.Equal(31, log.LogEndOffset);
    }

    [Fact]
    public void The_cleaner_thread_runs_at_the_lowest_cpu_priority()
    {
        Assert.True(OperatingSystem.IsLinux(), "this check reads /proc");
        using var cleaner = new LogCleaner(() => [], new CleanerOptions(), _time);
        cleaner.Start();
        // The thread's own stat line: its name is field 2 (in parentheses), its nice value field 19.
        Eventually.True(() => Directory.GetDirectories("/proc/self/task")
                .Select(task => System.IO.File.ReadAllText(Path.Combine(task, "stat")))
                .Any(line => line.Contains("(tributary-log-c)", StringComparison.Ordinal) && line[(line.LastIndexOf(')') + 2)..].Split(' ')[16] == "19"),
            TimeSpan.FromSeconds(10), "a tributary-log-c thread at nice 19");
    }

    [Fact]
    public async Task The_active_segment_is_never_touched_and_a_reopened_log_reads_the_same()
    {
        var model = new KeyedWorkload();
        using (var log = PartitionLog.Open(_dir.Path, Compacted(), _time))
        {
            for (int round = 0; round < 10; round++)
            {
                await model.AppendAsync(log, [("a", $"a{round}"), ("b", $"b{round}")], _time.NowMs);
            }

            // No seal: the active segment holds unflushed-to-closed data the cleaner must leave alone.
            var activeBefore = KeyedWorkload.ReadAll(log).Where(r => r.Offset >= log.CleanableSnapshot().Segments.LastOrDefault()?.NextOffset).ToList();
            Cleaners.For(log, _time).Clean(log);
            var activeAfter = KeyedWorkload.ReadAll(log).Where(r => r.Offset >= activeBefore.FirstOrDefault().Offset && activeBefore.Count > 0).ToList();
            Assert.Equal(activeBefore.Select(r => r.Offset), activeAfter.Select(r => r.Offset));
            model.AssertConsistent(log);
        }

        using var reopened = PartitionLog.Open(_dir.Path, Compacted(), _time);
        model.AssertConsistent(reopened);
        Assert.Equal(20, reopened.LogEndOffset);
    }

    [Fact]
    public async Task Tombstones_survive_delete_retention_then_vanish()
    {
        var model = new KeyedWorkload();
        using var log = PartitionLog.Open(_dir.Path, Compacted() with { DeleteRetentionMs = 60_000 }, _time);
        var cleaner = Cleaners.For(log, _time);
        for (int round = 0; round < 5; round++)
        {
            await model.AppendAsync(log, [("keep", $"v{round}"), ("gone", $"v{round}")], _time.NowMs);
        }

        await model.AppendAsync(log, [("gone", null)], _time.NowMs);
        await SealAsync(log, model, _time);
        cleaner.Clean(log);
        model.AssertConsistent(log);
        Assert.Contains(KeyedWorkload.ReadAll(log), r => KeyedWorkload.KeyOf(r) == "gone" && r.Value is null);
        Assert.True(cleaner.CleanOnce().Cleaned is false, "nothing dirty and the horizon has not passed");

        _time.Advance(60_001);
        Assert.True(cleaner.CleanOnce().Cleaned, "the passed delete horizon alone makes the log cleanable");
        model.AssertConsistent(log, tombstonesGone: true);
        Assert.DoesNotContain(KeyedWorkload.ReadAll(log), r => KeyedWorkload.KeyOf(r) == "gone");
    }

    [Fact]
    public async Task Tombstone_timestamps_and_other_records_are_unchanged_by_the_delete_horizon()
    {
        var model = new KeyedWorkload();
        using var log = PartitionLog.Open(_dir.Path, Compacted(), _time);
        await model.AppendAsync(log, [("x", "1"), ("y", null), ("z", "3")], 1234);
        await model.AppendAsync(log, [("x", "2")], 5678);
        await SealAsync(log, model, _time);
        Cleaners.For(log, _time).Clean(log);
        var records = KeyedWorkload.ReadAll(log);
        Assert.Equal([1234, 1234, 5678], records.Take(3).Select(r => r.Timestamp));
        Assert.Equal(["y", "z", "x"], records.Take(3).Select(KeyedWorkload.KeyOf));
    }

    [Theory]
    [InlineData(CompressionCodec.Gzip)]
    [InlineData(CompressionCodec.Snappy)]
    [InlineData(CompressionCodec.Lz4)]
    [InlineData(CompressionCodec.Zstd)]
    [InlineData(CompressionCodec.None)]
    public async Task Rewritten_batches_keep_codec_producer_id_epoch_sequence_and_offset_range(CompressionCodec codec)
    {
        using var log = PartitionLog.Open(_dir.Path, Compacted(4096), _time);
        var batch = KeyedWorkload.Batch([("a", "1"), ("b", "1"), ("c", "1")], 100, codec, producerId: 77);
        await log.AppendAsync(batch);
        await log.AppendAsync(KeyedWorkload.Batch([("a", "2")], 200));
        log.Roll();
        await log.AppendAsync(KeyedWorkload.Batch([("s", "s")], 300));
        Cleaners.For(log, _time).Clean(log);

        using var slice = log.Read(0, 1 << 20);
        var bytes = slice.Memory.ToArray();
        var header = new RecordBatchHeader(bytes);
        Assert.Equal(codec, header.Codec);
        Assert.Equal(77, header.ProducerId);
        Assert.Equal(0, header.ProducerEpoch);
        Assert.Equal(0, header.BaseSequence);
        Assert.Equal(0, header.BaseOffset);
        Assert.Equal(2, header.LastOffsetDelta);
        Assert.Equal(2, header.RecordsCount);
        Assert.Equal(header.Crc, RecordBatchHeader.ComputeCrc(bytes.AsSpan(0, header.TotalSize)));
        Assert.Equal([1, 2], RecordReader.ReadAll(bytes.AsMemory(0, header.TotalSize)).Select(r => r.Offset));
    }

    [Fact]
    public async Task A_small_key_map_cleans_in_several_passes()
    {
        var model = new KeyedWorkload();
        using var log = PartitionLog.Open(_dir.Path, Compacted(2000), _time);
        for (int round = 0; round < 6; round++)
        {
            for (int k = 0; k < 60; k += 3)
            {
                await model.AppendAsync(log, [($"k{k}", $"r{round}"), ($"k{k + 1}", $"r{round}"), ($"k{k + 2}", $"r{round}")], _time.NowMs);
            }
        }

        await SealAsync(log, model, _time);
        var cleaner = Cleaners.For(log, _time, dedupeBytes: OffsetMap.BytesPerEntry * 50); // ~45 keys per pass
        int passes = 0;
        while (log.GetCleanerStatus().DirtyRatio > 0)
        {
            var result = cleaner.Clean(log);
            Assert.True(result.Cleaned);
            model.AssertConsistent(log);
            passes++;
            Assert.True(passes < 50);
        }

        Assert.True(passes > 3, $"{passes} passes");
        var records = KeyedWorkload.ReadAll(log);
        Assert.Equal(61, records.Count);
    }

    [Fact]
    public async Task Min_compaction_lag_keeps_young_segments_dirty()
    {
        var model = new KeyedWorkload();
        using var log = PartitionLog.Open(_dir.Path, Compacted() with { MinCompactionLagMs = 10_000 }, _time);
        for (int round = 0; round < 10; round++)
        {
            await model.AppendAsync(log, [("a", $"v{round}"), ("b", $"v{round}")], _time.NowMs);
        }

        await SealAsync(log, model, _time);
        var cleaner = Cleaners.For(log, _time);
        Assert.False(cleaner.Clean(log).Cleaned);
        _time.Advance(10_001);
        Assert.True(cleaner.Clean(log).Cleaned);
        model.AssertConsistent(log);
    }

    [Fact]
    public async Task Max_compaction_lag_makes_a_log_below_the_dirty_ratio_eligible()
    {
        var model = new KeyedWorkload();
        using var log = PartitionLog.Open(_dir.Path, Compacted() with { MinCleanableDirtyRatio = 0.99, MaxCompactionLagMs = 5_000 }, _time);
        for (int round = 0; round < 10; round++)
        {
            await model.AppendAsync(log, [("a", $"v{round}"), ($"unique{round}", "x")], _time.NowMs);
        }

        await SealAsync(log, model, _time);
        var cleaner = Cleaners.For(log, _time);
        Assert.True(cleaner.CleanOnce().Cleaned); // first pass: everything dirty, ratio 1
        for (int round = 0; round < 10; round++)
        {
            await model.AppendAsync(log, [("a", $"w{round}")], _time.NowMs);
        }

        await SealAsync(log, model, _time);
        Assert.False(cleaner.CleanOnce().Cleaned, $"ratio {log.GetCleanerStatus()}");
        _time.Advance(5_001);
        Assert.True(cleaner.CleanOnce().Cleaned);
        model.AssertConsistent(log);
    }

    [Fact]
    public async Task Max_compaction_lag_rolls_the_active_segment_so_its_old_records_get_cleaned()
    {
        var model = new KeyedWorkload();
        var config = Compacted(segmentBytes: 1 << 20) with { MinCleanableDirtyRatio = 0.99, MaxCompactionLagMs = 5_000 };
        using var log = PartitionLog.Open(_dir.Path, config, _time);
        for (int round = 0; round < 10; round++)
        {
            await model.AppendAsync(log, [("a", $"v{round}")], _time.NowMs);
        }

        // Under segment.bytes and segment.ms: without the lag rule everything would stay in the active segment.
        _time.Advance(4_999);
        await model.AppendAsync(log, [("b", "early")], _time.NowMs);
        Assert.Equal(1, log.SegmentCount);
        _time.Advance(2);
        await model.AppendAsync(log, [("a", "after-roll")], _time.NowMs);
        Assert.Equal(2, log.SegmentCount);

        // The closed segment's records are past the lag: cleaned although the ratio test would wait for 0.99.
        var result = Cleaners.For(log, _time).CleanOnce();
        Assert.True(result.Cleaned);
        model.AssertConsistent(log);
        Assert.Equal(["v9", "early", "after-roll"], KeyedWorkload.ReadAll(log).Select(KeyedWorkload.ValueOf));

        // A log that is not compacted keeps rolling by segment.ms alone.
        using var dir = new TempDir();
        using var plain = PartitionLog.Open(dir.Path, config with { CleanupCompact = false, CleanupDelete = true }, _time);
        await plain.AppendAsync(KeyedWorkload.Batch([("a", "1")], _time.NowMs));
        _time.Advance(5_001);
        await plain.AppendAsync(KeyedWorkload.Batch([("a", "2")], _time.NowMs));
        Assert.Equal(1, plain.SegmentCount);
    }

    [Fact]
    public async Task Compact_only_topics_ignore_time_and_size_retention_and_compact_delete_applies_both()
    {
        var model = new KeyedWorkload();
        using var log = PartitionLog.Open(_dir.Path, Compacted() with { RetentionMs = 1000, RetentionBytes = 100 }, _time);
        for (int round = 0; round < 10; round++)
        {
            await model.AppendAsync(log, [("a", $"v{round}"), ("b", $"v{round}")], _time.NowMs);
        }

        await SealAsync(log, model, _time);
        _time.Advance(5000);
        Assert.Equal(0, log.EnforceRetention());
        log.Config = log.Config with { CleanupDelete = true };
        Assert.True(log.EnforceRetention() > 0);
        Assert.True(log.LogStartOffset > 0);
    }

    [Fact]
    public async Task Property_random_keyed_workloads_with_tombstones_and_cleaning_at_random_points()
    {
        var ops = Gen.Select(Gen.Int[0, 11], Gen.Int[0, 9], Gen.Int[1, 3]).Array[20, 120];
        var codecs = Gen.Enum<CompressionCodec>();
        await Task.Run(() => Gen.Select(ops, codecs, Gen.Int[2, 40]).Sample(sample =>
        {
            var (steps, codec, mapKeys) = sample;
            using var dir = new TempDir();
            var time = FakeTime.Create();
            var model = new KeyedWorkload();
            var config = Compacted(Random.Shared.Next(300, 1500)) with { DeleteRetentionMs = 500 };
            using var log = PartitionLog.Open(dir.Path, config, time);
            var cleaner = Cleaners.For(log, time, dedupeBytes: OffsetMap.BytesPerEntry * (mapKeys + 4));
            foreach (var (kind, key, count) in steps)
            {
                if (kind == 0)
                {
                    SealAsync(log, model, time).GetAwaiter().GetResult();
                    cleaner.Clean(log);
                    model.AssertConsistent(log);
                    continue;
                }

                var records = Enumerable.Range(0, count).Select(i => ($"k{(key + i) % 10}", kind == 1 ? null : (string?)$"v{Random.Shared.Next()}")).ToList();
                model.AppendAsync(log, records, time.NowMs, codec).GetAwaiter().GetResult();
                time.Advance(10);
            }

            // Finally: clean until nothing is dirty, let the horizons pass, clean again: exactly the latest live value per key.
            SealAsync(log, model, time).GetAwaiter().GetResult();
            for (int i = 0; i < 100 && log.GetCleanerStatus().DirtyRatio > 0; i++)
            {
                cleaner.Clean(log);
            }

            time.Advance(1000);
            cleaner.Clean(log);
            model.AssertConsistent(log, tombstonesGone: true);
            var live = model.Latest.Where(kv => model.Written[kv.Value].Value is not null).Select(kv => kv.Value).Order().ToList();
            Assert.Equal(live, KeyedWorkload.ReadAll(log).Select(r => r.Offset).Where(o => model.Written[o].Key != "sentinel" || o == model.Latest["sentinel"]).ToList());
            log.Dispose();
            using var reopened = PartitionLog.Open(dir.Path, config, time);
            model.AssertConsistent(reopened, tombstonesGone: true);
        }, iter: 60));
    }
}
