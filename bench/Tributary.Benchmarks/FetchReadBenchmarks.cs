using BenchmarkDotNet.Attributes;
using Tributary.Storage;

namespace Tributary.Benchmarks;

/// <summary>Reading 1 MB of whole batches from the middle of a segment: the fetch path's storage cost.</summary>
[MemoryDiagnoser]
public class FetchReadBenchmarks
{
    private string _dir = "";
    private PartitionLog _log = null!;
    private long _middle;

    [GlobalSetup]
    public async Task Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), "tributary-bench-read-" + Guid.NewGuid().ToString("N"));
        _log = PartitionLog.Open(_dir, new LogConfig { FlushPolicy = FlushPolicy.PageCache }, TimeProvider.System);
        var batch = Batches.Build(1_000, 100);
        for (var i = 0; i < 200; i++) await _log.AppendAsync(batch.ToArray());
        _middle = _log.LogEndOffset / 2;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _log.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Benchmark]
    public int Read1MB()
    {
        using var slice = _log.Read(_middle, 1 << 20);
        return slice.Length;
    }
}
