using System.Diagnostics;
using System.Text;
using Tributary.Protocol.Records;
using Tributary.Storage;
using Tributary.Storage.Cleaning;

namespace Tributary.Benchmarks;

/// <summary>
/// The cleaner's throughput on this machine: one pass over a 512 MiB dirty log of 100-byte values over 200,000 keys,
/// batches of 100 records, uncompressed and LZ4; prints MB/s of dirty log cleaned. A single pass over a log built for
/// it does not fit BenchmarkDotNet's repeated iterations, so this is a plain run:
/// <c>dotnet run -c Release --project bench/Tributary.Benchmarks -- cleaner-throughput</c>.
/// </summary>
public static class CleanerThroughput
{
    public static async Task<int> RunAsync()
    {
        foreach (var codec in new[] { CompressionCodec.None, CompressionCodec.Lz4 })
        {
            if (!await RunOnceAsync(codec)) return 1;
        }

        return 0;
    }

    private static async Task<bool> RunOnceAsync(CompressionCodec codec)
    {
        var dir = Path.Combine(Path.GetTempPath(), "tributary-bench-cleaner-" + Guid.NewGuid().ToString("N"));
        try
        {
            var time = TimeProvider.System;
            var config = new LogConfig { SegmentBytes = 64 << 20, FlushPolicy = FlushPolicy.PageCache, CleanupCompact = true, CleanupDelete = false };
            using var log = PartitionLog.Open(dir, config, time);
            var random = new Random(42);
            var value = new byte[100];
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            while (log.SizeInBytes < 512L << 20)
            {
                var builder = new RecordBatchBuilder { Codec = codec };
                for (int i = 0; i < 100; i++)
                {
                    random.NextBytes(value);
                    builder.Add(now, Encoding.UTF8.GetBytes($"key-{random.Next(200_000):D8}"), value);
                }

                await log.AppendAsync(builder.Build());
            }

            log.Roll();
            await log.AppendAsync(new RecordBatchBuilder().Add(now, [1], [1]).Build());
            long dirty = log.SizeInBytes;
            using var cleaner = new LogCleaner(() => [log], new CleanerOptions { DedupeBufferSize = 128L << 20 }, time);
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var watch = Stopwatch.StartNew();
            var result = cleaner.Clean(log);
            watch.Stop();
            var cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
            Console.WriteLine($"{codec}: cleaned {dirty / 1e6:F0} MB in {watch.Elapsed.TotalSeconds:F2} s = {dirty / 1e6 / watch.Elapsed.TotalSeconds:F0} MB/s wall, {dirty / 1e6 / cpuSeconds:F0} MB/s per CPU-second; " +
                $"read {result.BytesRead / 1e6:F0} MB, wrote {result.BytesWritten / 1e6:F0} MB, {result.SegmentsIn} -> {result.SegmentsOut} segments, size now {log.SizeInBytes / 1e6:F0} MB");
            if (!result.Cleaned) Console.Error.WriteLine($"{codec}: the pass cleaned nothing");
            return result.Cleaned;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
