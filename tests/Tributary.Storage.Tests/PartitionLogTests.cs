using Tributary.Protocol.Records;

namespace Tributary.Storage.Tests;

public sealed class PartitionLogTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly FakeTimeProvider _time = FakeTime.Create();

    public void Dispose() => _dir.Dispose();

    private PartitionLog Open(LogConfig? config = null) => PartitionLog.Open(_dir.Path, config ?? new LogConfig(), _time);

    [Fact]
    public async Task Append_then_read_returns_the_records_with_dense_offsets()
    {
        using var log = Open();
        var first = await log.AppendAsync(Batches.Make(3, 1000, "a"));
        var second = await log.AppendAsync(Batches.Make(2, 2000, "b"));

        Assert.Equal(new AppendResult(0, 2, -1, 0), first);
        Assert.Equal(new AppendResult(3, 4, -1, 0), second);
        Assert.Equal(5, log.LogEndOffset);
        Assert.Equal(5, log.HighWatermark);
        var records = Batches.ReadAll(log);
        Assert.Equal([0, 1, 2, 3, 4], records.Select(r => r.Offset));
        Assert.Equal(["a-0", "a-1", "a-2", "b-0", "b-1"], records.Select(Batches.Value));
        Assert.Equal([1000, 1000, 1000, 2000, 2000], records.Select(r => r.Timestamp));
    }

    [Fact]
    public async Task One_request_with_several_batches_gets_consecutive_offsets()
    {
        using var log = Open();
        await log.AppendAsync(Batches.Make(1, 1));
        byte[] request = [.. Batches.Make(2, 5, "x"), .. Batches.Make(3, 6, "y")];
        var result = await log.AppendAsync(request);
        Assert.Equal(1, result.BaseOffset);
        Assert.Equal(5, result.LastOffset);
        Assert.Equal(["v-0", "x-0", "x-1", "y-0", "y-1", "y-2"], Batches.ReadAll(log).Select(Batches.Value));
    }

    [Fact]
    public async Task Offsets_stay_dense_and_readable_across_segment_rolls()
    {
        using var log = Open(new LogConfig { SegmentBytes = 1024, IndexIntervalBytes = 128 });
        long expected = 0;
        for (int i = 0; i < 200; i++)
        {
            int count = 1 + (i % 4);
            var result = await log.AppendAsync(Batches.Make(count, i, $"b{i}"));
            Assert.Equal(expected, result.BaseOffset);
            expected += count;
        }

        Assert.True(log.SegmentCount > 10);
        Assert.Equal(expected, log.LogEndOffset);
        var records = Batches.ReadAll(log, maxBytes: 300);
        Assert.Equal(Enumerable.Range(0, (int)expected).Select(i => (long)i), records.Select(r => r.Offset));

        for (long offset = 0; offset < expected; offset += 7)
        {
            using var slice = log.Read(offset, 1);
            var batch = RecordReader.ReadAll(slice.Memory.ToArray());
            Assert.Contains(batch, r => r.Offset == offset);
        }
    }

    [Fact]
    public async Task Read_from_the_middle_of_a_segment_starts_at_the_batch_containing_the_offset()
    {
        using var log = Open(new LogConfig { IndexIntervalBytes = 64 });
        for (int i = 0; i < 50; i++)
        {
            await log.AppendAsync(Batches.Make(5, i, $"b{i}"));
        }

        using var slice = log.Read(123, 1);
        var records = RecordReader.ReadAllBatches(slice.Memory.ToArray());
        Assert.Equal(120, slice.FirstOffset);
        Assert.Equal(Enumerable.Range(120, 5).Select(i => (long)i), records.Select(r => r.Offset));
    }

    [Fact]
    public async Task MaxBytes_limits_whole_batches_but_the_first_batch_is_always_returned()
    {
        using var log = Open();
        var big = Batches.Make(50, 1, "big");
        var small = Batches.Make(1, 1, "s");
        await log.AppendAsync(big.ToArray());
        await log.AppendAsync(small.ToArray());
        await log.AppendAsync(small.ToArray());

        using (var slice = log.Read(0, 10))
        {
            Assert.Equal(big.Length, slice.Length);
        }

        using (var slice = log.Read(50, small.Length * 2 - 1))
        {
            Assert.Equal(small.Length, slice.Length);
        }

        using (var slice = log.Read(50, small.Length * 2))
        {
            Assert.Equal(small.Length * 2, slice.Length);
        }

        using (var slice = log.Read(0, 1 << 20, maxOffsetExclusive: 51))
        {
            Assert.Equal(big.Length + small.Length, slice.Length);
        }
    }

    [Fact]
    public async Task Reads_outside_the_log_are_out_of_range_and_at_the_high_watermark_are_empty()
    {
        using var log = Open();
        await log.AppendAsync(Batches.Make(3, 1));
        using (var slice = log.Read(3, 100))
        {
            Assert.True(slice.IsEmpty);
            Assert.Equal(3, slice.HighWatermark);
        }

        Assert.Equal(StorageError.OffsetOutOfRange, Assert.Throws<StorageException>(() => log.Read(4, 100)).Error);
        Assert.Equal(StorageError.OffsetOutOfRange, Assert.Throws<StorageException>(() => log.Read(-1, 100)).Error);
    }

    [Fact]
    public async Task Invalid_batches_are_rejected_without_changing_the_log()
    {
        using var log = Open(new LogConfig { MaxMessageBytes = 500 });
        var corrupt = Batches.Make(2, 1);
        corrupt[^1] ^= 0xFF;
        var tooLarge = Batches.Make(60, 1);
        var error1 = await Assert.ThrowsAsync<StorageException>(() => log.AppendAsync(corrupt).AsTask());
        var error2 = await Assert.ThrowsAsync<StorageException>(() => log.AppendAsync(tooLarge).AsTask());
        Assert.Equal(StorageError.CorruptMessage, error1.Error);
        Assert.Equal(StorageError.MessageTooLarge, error2.Error);
        Assert.Equal(0, log.LogEndOffset);
        Assert.Equal(0, log.SizeInBytes);
    }

    [Fact]
    public async Task LogAppendTime_topics_stamp_batches_with_the_broker_clock()
    {
        using var log = Open(new LogConfig { TimestampType = TimestampType.LogAppendTime });
        var result = await log.AppendAsync(Batches.Make([5, 6, 7]));
        Assert.Equal(_time.NowMs, result.LogAppendTime);
        using var slice = log.Read(0, 1000);
        var bytes = slice.Memory.ToArray();
        Assert.Equal(RecordsError.None, RecordBatchValidator.Validate(bytes, 10_000, out _));
        Assert.All(RecordReader.ReadAll(bytes), r => Assert.Equal(_time.NowMs, r.Timestamp));
    }

    [Fact]
    public async Task Reopening_keeps_all_data_and_appends_continue()
    {
        var config = new LogConfig { SegmentBytes = 2048, IndexIntervalBytes = 100 };
        using (var log = Open(config))
        {
            for (int i = 0; i < 60; i++)
            {
                await log.AppendAsync(Batches.Make(3, i, $"b{i}"));
            }
        }

        using (var log = Open(config))
        {
            Assert.Equal(180, log.LogEndOffset);
            Assert.Equal(180, log.HighWatermark);
            var result = await log.AppendAsync(Batches.Make(1, 99, "after"));
            Assert.Equal(180, result.BaseOffset);
            var values = Batches.ReadAll(log).Select(Batches.Value).ToList();
            Assert.Equal(181, values.Count);
            Assert.Equal("b59-2", values[179]);
            Assert.Equal("after-0", values[180]);
        }
    }

    [Fact]
    public async Task PageCache_policy_acknowledges_without_sync_and_raises_the_high_watermark_event()
    {
        using var log = Open(new LogConfig { FlushPolicy = FlushPolicy.PageCache });
        var seen = new List<long>();
        log.HighWatermarkAdvanced += l => seen.Add(l.HighWatermark);
        await log.AppendAsync(Batches.Make(2, 1));
        await log.AppendAsync(Batches.Make(2, 1));
        Assert.Equal([2, 4], seen);
        Assert.Equal(log.LogEndOffset, log.HighWatermark);
    }

    [Fact]
    public async Task Durable_policy_raises_the_high_watermark_event_after_sync()
    {
        using var log = Open();
        var advanced = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        log.HighWatermarkAdvanced += l => advanced.TrySetResult(l.HighWatermark);
        await log.AppendAsync(Batches.Make(2, 1));
        Assert.Equal(2, await advanced.Task);
    }

    [Fact]
    public async Task DeleteRecordsBefore_moves_the_log_start_and_survives_reopen()
    {
        var config = new LogConfig { SegmentBytes = 1024 };
        using (var log = Open(config))
        {
            for (int i = 0; i < 40; i++)
            {
                await log.AppendAsync(Batches.Make(2, i));
            }

            int before = log.SegmentCount;
            log.DeleteRecordsBefore(45);
            Assert.Equal(45, log.LogStartOffset);
            Assert.True(log.SegmentCount < before);
            Assert.Equal(StorageError.OffsetOutOfRange, Assert.Throws<StorageException>(() => log.Read(44, 100)).Error);
            Assert.Equal(45, Batches.ReadAll(log)[0].Offset);
            Assert.Equal(StorageError.OffsetOutOfRange, Assert.Throws<StorageException>(() => log.DeleteRecordsBefore(81)).Error);
        }

        using (var log = Open(config))
        {
            Assert.Equal(45, log.LogStartOffset);
            Assert.Equal(80, log.LogEndOffset);
            Assert.Equal(45, Batches.ReadAll(log)[0].Offset);
        }
    }

    [Fact]
    public async Task A_closed_log_answers_with_storage_errors()
    {
        var log = Open();
        await log.AppendAsync(Batches.Make(1, 1));
        log.Dispose();
        var append = await Assert.ThrowsAsync<StorageException>(() => log.AppendAsync(Batches.Make(1, 1)).AsTask());
        Assert.Equal(StorageError.StorageFailure, append.Error);
        Assert.Equal(StorageError.StorageFailure, Assert.Throws<StorageException>(() => log.Read(0, 100)).Error);
    }

    [Fact]
    public async Task Compressed_batches_are_stored_and_served_as_sent()
    {
        using var log = Open();
        foreach (var codec in new[] { CompressionCodec.Gzip, CompressionCodec.Snappy, CompressionCodec.Lz4, CompressionCodec.Zstd })
        {
            await log.AppendAsync(Batches.Make([1, 2, 3], codec.ToString(), codec));
        }

        var records = Batches.ReadAll(log);
        Assert.Equal(12, records.Count);
        Assert.Equal("Zstd-2", Batches.Value(records[^1]));
        Assert.Equal(11, records[^1].Offset);
    }
}

public sealed class AllocationTests
{
    [Fact]
    public async Task Appending_and_reading_allocate_little_per_request()
    {
        using var dir = new TempDir();
        using var log = PartitionLog.Open(dir.Path, new LogConfig { FlushPolicy = FlushPolicy.PageCache }, FakeTime.Create());
        var batch = Batches.Make(10, 1);
        for (int i = 0; i < 100; i++)
        {
            await log.AppendAsync(batch);
            log.Read(log.LogEndOffset - 5, 1 << 16).Dispose();
        }

        const int Requests = 1000;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < Requests; i++)
        {
            // PageCache appends complete synchronously: no await, so all work stays on this thread.
            var pending = log.AppendAsync(batch);
            Assert.True(pending.IsCompletedSuccessfully);
            log.Read(log.LogEndOffset - 5, 1 << 16).Dispose();
        }

        long perRequest = (GC.GetAllocatedBytesForCurrentThread() - before) / Requests;
        Assert.True(perRequest < 256, $"{perRequest} bytes allocated per append + read");
    }
}
