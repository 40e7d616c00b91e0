using BenchmarkDotNet.Attributes;
using Tributary.Storage;

namespace Tributary.Benchmarks;

/// <summary>
/// Validation (header walk + CRC-32C) and append of one ~1 MB batch of 100-byte records, the unit a librdkafka
/// producer sends. PageCache policy, so the figure is the broker's CPU cost, not the disk's fsync.
/// Records per second = records per batch / time per operation.
/// </summary>
[MemoryDiagnoser]
public class AppendBenchmarks
{
    public const int RecordsPerBatch = 8_000;
    private string _dir = "";
    private PartitionLog _log = null!;
    private byte[] _batch = [];

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), "tributary-bench-append-" + Guid.NewGuid().ToString("N"));
        _log = PartitionLog.Open(_dir, new LogConfig { FlushPolicy = FlushPolicy.PageCache, SegmentBytes = 256L << 20, RetentionBytes = 512L << 20 }, TimeProvider.System);
        _batch = Batches.Build(RecordsPerBatch, 100);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _log.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Benchmark(OperationsPerInvoke = 1)]
    public async ValueTask<long> AppendBatch()
    {
        var result = await _log.AppendAsync(_batch);
        if (_log.SegmentCount > 3) _log.EnforceRetention();
        return result.LastOffset;
    }
}
