using System.Diagnostics;
using System.Text;
using Tributary.Protocol.Records;
using Xunit.Abstractions;

namespace Tributary.Storage.Tests;

/// <summary>
/// The cleaner's throughput on this machine: a 512 MiB dirty log of 100-byte values over 200,000 keys, batches of 100
/// records (uncompressed, and lz4). Runs only with TRIBUTARY_BENCH=1; prints MB/s of dirty log cleaned.
/// </summary>
public sealed class CompactionThroughputTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(CompressionCodec.None)]
    [InlineData(CompressionCodec.Lz4)]
    public async Task Cleaner_throughput(CompressionCodec codec)
    {
        if (Environment.GetEnvironmentVariable("TRIBUTARY_BENCH") != "1")
        {
            return;
        }

        using var dir = new TempDir();
        var time = new ManualTime();
        var config = new LogConfig { SegmentBytes = 64 << 20, FlushPolicy = FlushPolicy.PageCache, CleanupCompact = true, CleanupDelete = false };
        using var log = PartitionLog.Open(dir.Path, config, time);
        var random = new Random(42);
        var value = new byte[100];
        while (log.SizeInBytes < 512L << 20)
        {
            var builder = new RecordBatchBuilder { Codec = codec };
            for (int i = 0; i < 100; i++)
            {
                random.NextBytes(value);
                builder.Add(time.NowMs, Encoding.UTF8.GetBytes($"key-{random.Next(200_000):D8}"), value);
            }

            await log.AppendAsync(builder.Build());
        }

        log.Roll();
        await log.AppendAsync(new RecordBatchBuilder().Add(time.NowMs, [1], [1]).Build());
        long dirty = log.SizeInBytes;
        var cleaner = Cleaners.For(log, time, dedupeBytes: 128L << 20);
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var watch = Stopwatch.StartNew();
        var result = cleaner.Clean(log);
        watch.Stop();
        var cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
        output.WriteLine($"{codec}: cleaned {dirty / 1e6:F0} MB in {watch.Elapsed.TotalSeconds:F2} s = {dirty / 1e6 / watch.Elapsed.TotalSeconds:F0} MB/s wall, {dirty / 1e6 / cpuSeconds:F0} MB/s per CPU-second; " +
            $"read {result.BytesRead / 1e6:F0} MB, wrote {result.BytesWritten / 1e6:F0} MB, {result.SegmentsIn} -> {result.SegmentsOut} segments, size now {log.SizeInBytes / 1e6:F0} MB");
        Assert.True(result.Cleaned);
    }
}
