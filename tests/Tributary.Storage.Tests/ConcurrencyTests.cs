using Tributary.Protocol.Records;

namespace Tributary.Storage.Tests;

public sealed class ConcurrencyTests
{
    [Theory]
    [InlineData(FlushPolicy.Durable)]
    [InlineData(FlushPolicy.PageCache)]
    public async Task Readers_see_only_whole_valid_batches_while_appends_roll_and_retention_deletes(FlushPolicy policy)
    {
        using var dir = new TempDir();
        var time = FakeTime.Create();
        var config = new LogConfig { SegmentBytes = 2000, IndexIntervalBytes = 100, RetentionBytes = 8000, FileDeleteDelayMs = 0, FlushPolicy = policy };
        using var log = PartitionLog.Open(dir.Path, config, time);
        using var done = new CancellationTokenSource();

        var writer = Task.Run(async () =>
        {
            try
            {
                var inFlight = new Queue<Task<AppendResult>>();
                for (int i = 0; i < 600; i++)
                {
                    inFlight.Enqueue(log.AppendAsync(Batches.Make(1 + (i % 5), i, $"b{i}")).AsTask());
                    if (inFlight.Count == 8)
                    {
                        await inFlight.Dequeue();
                    }

                    if (i % 50 == 0)
                    {
                        log.EnforceRetention();
                    }
                }

                await Task.WhenAll(inFlight);
            }
            finally
            {
                done.Cancel();
            }
        });

        var readers = Enumerable.Range(0, 2).Select(_ => Task.Run(() =>
        {
            long reads = 0;
            while (!done.IsCancellationRequested || reads == 0)
            {
                long start = log.LogStartOffset;
                long hw = log.HighWatermark;
                long offset = start + (hw - start) / 2;
                try
                {
                    using var slice = log.Read(offset, 700);
                    var bytes = slice.Memory;
                    Assert.Equal(RecordsError.None, bytes.IsEmpty ? RecordsError.None : RecordBatchValidator.Validate(bytes.Span, int.MaxValue, out BatchSummary _));
                    if (!bytes.IsEmpty)
                    {
                        var records = RecordReader.ReadAllBatches(bytes);
                        Assert.Contains(records, r => r.Offset == offset);
                        Assert.Equal(Enumerable.Range(0, records.Count).Select(i => records[0].Offset + i), records.Select(r => r.Offset));
                        Assert.True(records[^1].Offset < slice.HighWatermark);
                    }
                }
                catch (StorageException e) when (e.Error == StorageError.OffsetOutOfRange)
                {
                    // Retention moved the log start past the offset between choosing it and reading.
                    Assert.True(log.LogStartOffset > offset);
                }

                reads++;
                Thread.Yield();
            }
        })).ToList();

        await writer;
        await Task.WhenAll(readers);
        Assert.True(log.SegmentCount < 10);
        Assert.Equal(log.LogEndOffset, log.HighWatermark);
    }
}
