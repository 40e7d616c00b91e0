using CsCheck;
using Tributary.Protocol.Records;

namespace Tributary.Storage.Tests;

public sealed class RecoveryTests
{
    private static readonly LogConfig SmallSegments = new() { SegmentBytes = 2048, IndexIntervalBytes = 150, FlushPolicy = FlushPolicy.PageCache };

    private static string LastLogFile(string directory) =>
        Directory.GetFiles(directory, "*.log").Order(StringComparer.Ordinal).Last();

    [Fact]
    public void Damage_to_the_active_segment_tail_loses_only_batches_from_the_damage_on()
    {
        var gen = Gen.Select(Gen.Int[1, 40], Gen.Int[0, int.MaxValue], Gen.Bool, Gen.Int[0, int.MaxValue]);
        gen.Sample((batches, cutSeed, truncate, dataSeed) =>
        {
            using var dir = new TempDir();
            var time = FakeTime.Create();
            var random = new Random(dataSeed);
            var appended = new List<(long Base, long Last)>();
            using (var log = PartitionLog.Open(dir.Path, SmallSegments, time))
            {
                for (int i = 0; i < batches; i++)
                {
                    var result = log.AppendAsync(Batches.Make(random.Next(1, 6), random.Next(1000), $"b{i}")).AsTask().GetAwaiter().GetResult();
                    appended.Add((result.BaseOffset, result.LastOffset));
                }
            }

            // A crash leaves no clean-shutdown marker. Then damage the active segment at a random byte.
            File.Delete(Path.Combine(dir.Path, PartitionLog.CleanShutdownFile));
            string file = LastLogFile(dir.Path);
            long segmentBase = long.Parse(Path.GetFileNameWithoutExtension(file), System.Globalization.CultureInfo.InvariantCulture);
            var bytes = File.ReadAllBytes(file);
            int cut = (int)(cutSeed % bytes.Length);
            var starts = new List<int>();
            for (int p = 0; p < bytes.Length; p += RecordBatchHeader.ReadTotalSize(bytes.AsSpan(p)))
            {
                starts.Add(p);
            }

            int damaged = starts.FindLastIndex(s => s <= cut);
            int withinBatch = cut - starts[damaged];
            if (truncate)
            {
                File.WriteAllBytes(file, bytes[..cut]);
            }
            else
            {
                bytes[cut] ^= 0x5A;
                File.WriteAllBytes(file, bytes);
            }

            int firstInSegment = appended.FindIndex(a => a.Base == segmentBase);
            int lost = firstInSegment + damaged;
            bool undetectable = !truncate && withinBatch is >= RecordBatchHeader.PartitionLeaderEpochOffset and < RecordBatchHeader.MagicOffset;
            long expectedEnd = undetectable ? appended[^1].Last + 1 : lost == 0 ? 0 : appended[lost - 1].Last + 1;

            using (var log = PartitionLog.Open(dir.Path, SmallSegments, time))
            {
                Assert.Equal(expectedEnd, log.LogEndOffset);
                Assert.Equal(expectedEnd, log.HighWatermark);
                var records = expectedEnd == 0 ? [] : Batches.ReadAll(log);
                Assert.Equal(Enumerable.Range(0, (int)expectedEnd).Select(i => (long)i), records.Select(r => r.Offset));
                var next = log.AppendAsync(Batches.Make(2, 5, "next")).AsTask().GetAwaiter().GetResult();
                Assert.Equal(expectedEnd, next.BaseOffset);
            }

            using (var log = PartitionLog.Open(dir.Path, SmallSegments, time))
            {
                Assert.Equal(expectedEnd + 2, log.LogEndOffset);
                Assert.Equal("next-1", Batches.Value(Batches.ReadAll(log)[^1]));
            }
        }, iter: 60, threads: 1);
    }

    [Fact]
    public async Task Missing_and_garbage_index_files_are_rebuilt()
    {
        using var dir = new TempDir();
        var time = FakeTime.Create();
        var random = new Random(7);
        using (var log = PartitionLog.Open(dir.Path, SmallSegments, time))
        {
            for (int i = 0; i < 100; i++)
            {
                await log.AppendAsync(Batches.Make([.. Enumerable.Range(0, 3).Select(_ => (long)random.Next(10_000))], $"b{i}"));
            }
        }

        var indexes = Directory.GetFiles(dir.Path, "*.index").Order(StringComparer.Ordinal).ToList();
        Assert.True(indexes.Count > 3);
        var expectedIndex = File.ReadAllBytes(indexes[1]);
        Assert.NotEmpty(expectedIndex);
        File.Delete(indexes[1]);
        File.Delete(Path.ChangeExtension(indexes[1], ".timeindex"));
        File.WriteAllBytes(indexes[2], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        File.WriteAllBytes(Path.ChangeExtension(indexes[3], ".timeindex"), new byte[24]);

        using (var log = PartitionLog.Open(dir.Path, SmallSegments, time))
        {
            Assert.Equal(300, log.LogEndOffset);
            Assert.Equal(expectedIndex, File.ReadAllBytes(indexes[1]));
            Assert.Equal(0, new FileInfo(indexes[2]).Length % 8);
            var records = Batches.ReadAll(log);
            Assert.Equal(300, records.Count);
            foreach (long target in new long[] { -1, 0, 500, 5000, 9999, 10_000 })
            {
                var expected = records.FirstOrDefault(r => r.Timestamp >= target);
                var found = log.FindOffsetByTimestamp(target);
                Assert.Equal(expected.Value is null ? -1 : expected.Offset, found.Offset);
            }
        }
    }

    [Fact]
    public async Task A_clean_shutdown_leaves_a_marker_that_the_next_open_consumes()
    {
        using var dir = new TempDir();
        string marker = Path.Combine(dir.Path, PartitionLog.CleanShutdownFile);
        using (var log = PartitionLog.Open(dir.Path, SmallSegments, FakeTime.Create()))
        {
            for (int i = 0; i < 30; i++)
            {
                await log.AppendAsync(Batches.Make(2, i));
            }

            Assert.False(File.Exists(marker));
        }

        Assert.True(File.Exists(marker));
        using (var log = PartitionLog.Open(dir.Path, SmallSegments, FakeTime.Create()))
        {
            Assert.False(File.Exists(marker));
            Assert.Equal(60, log.LogEndOffset);
            await log.AppendAsync(Batches.Make(2, 1));
            Assert.Equal(62, Batches.ReadAll(log).Count);
        }

        // A torn tail is still caught after a clean marker: everything after the last index entry is CRC-checked.
        string last = LastLogFile(dir.Path);
        var bytes = File.ReadAllBytes(last);
        File.WriteAllBytes(last, bytes[..^3]);
        using (var log = PartitionLog.Open(dir.Path, SmallSegments, FakeTime.Create()))
        {
            Assert.Equal(60, log.LogEndOffset);
        }
    }

    [Fact]
    public async Task Leftover_deleted_and_temp_files_are_removed_on_open()
    {
        using var dir = new TempDir();
        File.WriteAllText(Path.Combine(dir.Path, "00000000000000000000.log.deleted"), "x");
        File.WriteAllText(Path.Combine(dir.Path, "log-start-offset.checkpoint.tmp"), "x");
        File.WriteAllText(Path.Combine(dir.Path, "00000000000000000042.index"), "orphan");
        using var log = PartitionLog.Open(dir.Path, new LogConfig(), FakeTime.Create());
        await log.AppendAsync(Batches.Make(1, 1));
        Assert.False(File.Exists(Path.Combine(dir.Path, PartitionLog.CleanShutdownFile)));
        Assert.Equal(
            ["00000000000000000000.index", "00000000000000000000.log", "00000000000000000000.timeindex", "leader-epoch-checkpoint"],
            Directory.GetFiles(dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_damaged_closed_segment_is_truncated_and_later_segments_dropped()
    {
        using var dir = new TempDir();
        var time = FakeTime.Create();
        using (var log = PartitionLog.Open(dir.Path, SmallSegments, time))
        {
            for (int i = 0; i < 60; i++)
            {
                await log.AppendAsync(Batches.Make(2, i));
            }
        }

        var logs = Directory.GetFiles(dir.Path, "*.log").Order(StringComparer.Ordinal).ToList();
        Assert.True(logs.Count >= 3);
        var bytes = File.ReadAllBytes(logs[1]);
        File.WriteAllBytes(logs[1], bytes[..(bytes.Length - 5)]);
        long secondBase = long.Parse(Path.GetFileNameWithoutExtension(logs[1]), System.Globalization.CultureInfo.InvariantCulture);

        using (var log = PartitionLog.Open(dir.Path, SmallSegments, time))
        {
            Assert.Equal(2, log.SegmentCount);
            Assert.True(log.LogEndOffset > secondBase);
            Assert.Equal(log.LogEndOffset, Batches.ReadAll(log).Count);
            var next = await log.AppendAsync(Batches.Make(1, 1));
            Assert.Equal(log.LogEndOffset - 1, next.BaseOffset);
        }
    }
}
