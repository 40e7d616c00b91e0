using System.Buffers.Binary;
using BenchmarkDotNet.Attributes;
using Tributary.Protocol.Records;
using Tributary.Storage;

namespace Tributary.Benchmarks;

/// <summary>
/// ListOffsets by timestamp on a large partition: the broker-side cost of "seek the group to 10:00". The log is
/// TRIBUTARY_BENCH_LOG_GB gigabytes (default 1; the docs/performance.md figure uses 10) of 1 MB batches of 100-byte records whose
/// timestamps rise by 1 ms per record. Each lookup binary-searches the segments, then the time index, then decodes
/// one batch to land on the exact record.
/// </summary>
[MemoryDiagnoser]
public class TimestampLookupBenchmarks
{
    private const int RecordsPerBatch = 8_000;
    private string _dir = "";
    private PartitionLog _log = null!;
    private long _firstTimestamp;
    private long _lastTimestamp;
    private readonly Random _random = new(7);

    [GlobalSetup]
    public async Task Setup()
    {
        var gigabytes = double.TryParse(Environment.GetEnvironmentVariable("TRIBUTARY_BENCH_LOG_GB"), out var g) ? g : 1;
        _dir = Path.Combine(Path.GetTempPath(), "tributary-bench-time-" + Guid.NewGuid().ToString("N"));
        _log = PartitionLog.Open(_dir, new LogConfig { FlushPolicy = FlushPolicy.PageCache, RetentionMs = -1 }, TimeProvider.System);
        _firstTimestamp = 1_700_000_000_000;
        var template = Batches.Build(RecordsPerBatch, 100, _firstTimestamp, stepMs: 1);
        var batches = (long)(gigabytes * (1L << 30) / template.Length);
        var batch = template.ToArray();
        for (long i = 0; i < batches; i++)
        {
            // Same records, later times: shift the batch's base and max timestamps and re-seal its CRC.
            var shift = i * RecordsPerBatch;
            BinaryPrimitives.WriteInt64BigEndian(batch.AsSpan(RecordBatchHeader.BaseTimestampOffset), _firstTimestamp + shift);
            BinaryPrimitives.WriteInt64BigEndian(batch.AsSpan(RecordBatchHeader.MaxTimestampOffset), _firstTimestamp + shift + RecordsPerBatch - 1);
            BinaryPrimitives.WriteUInt32BigEndian(batch.AsSpan(RecordBatchHeader.CrcOffset), RecordBatchHeader.ComputeCrc(batch));
            await _log.AppendAsync(batch);
        }
        _lastTimestamp = _firstTimestamp + batches * RecordsPerBatch - 1;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _log.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Benchmark]
    public long FindOffsetByTimestamp() => _log.FindOffsetByTimestamp(_random.NextInt64(_firstTimestamp, _lastTimestamp)).Offset;
}
