namespace Tributary.Storage.Tests;

/// <summary>Retention under sustained produce: disk use stays within one segment of retention.bytes, appends never wait for it.</summary>
public sealed class RetentionBoundTests
{
    [Fact]
    public async Task Size_retention_under_sustained_produce_keeps_disk_use_within_a_segment_of_the_bound()
    {
        using var dir = new TempDir();
        const long segmentBytes = 64 << 10, retentionBytes = 512 << 10;
        using var logs = new LogManager(dir.Path, TimeProvider.System);
        var log = logs.GetOrCreate("t", 0, new LogConfig
        {
            SegmentBytes = segmentBytes,
            RetentionBytes = retentionBytes,
            FileDeleteDelayMs = 0,
            FlushPolicy = FlushPolicy.PageCache,
        });
        var batch = Batches.Make(40, 1);
        // A fixed volume, eight times the bound, rather than a fixed time: on a busy machine a timed run may write
        // too little for retention to matter.
        const long volume = 8 * retentionBytes;
        long appended = 0;
        var producer = Task.Run(async () =>
        {
            for (long bytes = 0; bytes < volume; bytes += batch.Length)
            {
                await log.AppendAsync(batch.ToArray());
                if (++appended % 16 == 0)
                {
                    await Task.Delay(1); // sustained, not a spin: a few MB/s
                }
            }
        });

        long maxAfterPass = 0, lastStart = 0, passes = 0;
        while (!producer.IsCompleted)
        {
            logs.EnforceRetentionOnce();
            passes++;
            long onDisk = Directory.EnumerateFiles(dir.Path, "*.log*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
            maxAfterPass = Math.Max(maxAfterPass, onDisk);
            Assert.True(log.LogStartOffset >= lastStart);
            lastStart = log.LogStartOffset;
            if (log.HighWatermark > log.LogStartOffset)
            {
                using var slice = log.Read(log.LogStartOffset, 1024);
                Assert.False(slice.IsEmpty);
                Assert.Equal(log.LogStartOffset, slice.LogStartOffset);
            }

            await Task.Delay(5);
        }

        await producer;
        Assert.True(passes > 1, $"{passes} retention passes while {appended} batches were appended");
        Assert.True(lastStart > 0);
        // The pass measures after its deletions; appends racing it can add at most one more segment's worth.
        Assert.True(maxAfterPass <= retentionBytes + 2 * segmentBytes, $"{maxAfterPass} bytes on disk after a pass, bound {retentionBytes} + segments of {segmentBytes}; {passes} passes");
    }
}
