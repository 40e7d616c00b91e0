using CsCheck;
using Tributary.Protocol.Records;

namespace Tributary.Storage.Tests;

public sealed class ReadPropertyTests
{
    [Fact]
    public async Task Reads_return_whole_batches_from_the_one_containing_the_offset_within_the_byte_limit()
    {
        using var dir = new TempDir();
        var config = new LogConfig { SegmentBytes = 3000, IndexIntervalBytes = 256, FlushPolicy = FlushPolicy.PageCache };
        using var log = PartitionLog.Open(dir.Path, config, FakeTime.Create());
        var random = new Random(11);
        var batchSizes = new Dictionary<long, int>();
        for (int i = 0; i < 300; i++)
        {
            var batch = Batches.Make(random.Next(1, 10), i, new string('x', random.Next(0, 60)));
            var result = await log.AppendAsync(batch);
            batchSizes[result.BaseOffset] = batch.Length;
        }

        long end = log.LogEndOffset;
        Gen.Select(Gen.Long[0, end], Gen.Int[0, 5000], Gen.Long[0, end + 5].Select(v => v > end ? (long?)null : v)).Sample((offset, maxBytes, bound) =>
        {
            using var slice = log.Read(offset, maxBytes, bound);
            long upper = Math.Min(end, bound ?? long.MaxValue);
            if (offset >= upper)
            {
                Assert.True(slice.IsEmpty);
                return;
            }

            var bytes = slice.Memory;
            Assert.Equal(RecordsError.None, RecordBatchValidator.Validate(bytes.Span, int.MaxValue, out var summary));
            var first = new RecordBatchHeader(bytes.Span);
            Assert.True(first.BaseOffset <= offset && offset <= first.LastOffset);
            Assert.Equal(first.BaseOffset, slice.FirstOffset);
            Assert.True(bytes.Length <= Math.Max(maxBytes, batchSizes[first.BaseOffset]));
            long next = first.BaseOffset + summary.RecordCount;
            for (int position = 0; position < bytes.Length; position += RecordBatchHeader.ReadTotalSize(bytes.Span[position..]))
            {
                Assert.True(new RecordBatchHeader(bytes.Span[position..]).BaseOffset < upper); // a batch is included when it starts below the bound
            }

            if (next < upper && batchSizes.TryGetValue(next, out int nextSize) && bytes.Length + nextSize <= maxBytes)
            {
                // The next batch would have fitted: it must be in another segment.
                using var following = log.Read(next, int.MaxValue);
                Assert.NotEqual(0, following.Length);
                Assert.True(log.SegmentCount > 1);
            }
        }, iter: 500);
    }

    [Fact]
    public async Task Durable_appends_to_many_partitions_all_complete()
    {
        using var dir = new TempDir();
        using var manager = new LogManager(dir.Path, FakeTime.Create());
        var logs = Enumerable.Range(0, 4).Select(p => manager.GetOrCreate("t", p, new LogConfig())).ToList();
        var appends = logs.SelectMany(log => Enumerable.Range(0, 50).Select(i => log.AppendAsync(Batches.Make(1, i, $"p{i}")).AsTask())).ToList();
        await Task.WhenAll(appends);
        Assert.All(logs, log =>
        {
            Assert.Equal(50, log.HighWatermark);
            Assert.Equal(Enumerable.Range(0, 50).Select(i => $"p{i}-0"), Batches.ReadAll(log).Select(Batches.Value));
        });
    }
}
