using BenchmarkDotNet.Attributes;
using Tributary.Protocol.Records;

namespace Tributary.Benchmarks;

/// <summary>
/// Validating one lz4 batch of 10,000 records of 100 B, as a librdkafka producer sends it (an LZ4 frame of independent
/// 64 KB blocks, no checksums), and decompressing its records section alone; figures are per record.
/// "repeated" is one random value in every record, as <c>tributary bench produce</c> sends; "distinct" gives each
/// record its own random value, so the blocks hardly compress.
/// dotnet run -c Release --project bench/Tributary.Benchmarks -- --filter '*Lz4Validation*'
/// </summary>
[MemoryDiagnoser]
public class Lz4ValidationBenchmarks
{
    private const int Records = 10_000;
    private byte[] _batch = [];
    private byte[] _section = [];

    [Params("repeated", "distinct")]
    public string Values { get; set; } = "repeated";

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(42);
        var value = new byte[100];
        random.NextBytes(value);
        var builder = new RecordBatchBuilder { Codec = CompressionCodec.Lz4 };
        long timestamp = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        for (var i = 0; i < Records; i++)
        {
            if (Values == "distinct") random.NextBytes(value);
            builder.Add(timestamp, value);
        }

        _batch = builder.Build();
        _section = _batch[RecordBatchHeader.HeaderSize..];
        if (RecordBatchValidator.Validate(_batch, int.MaxValue, out _) != RecordsError.None) throw new InvalidOperationException("invalid batch");
    }

    [Benchmark(OperationsPerInvoke = Records)]
    public long Validate() => RecordBatchValidator.Validate(_batch, int.MaxValue, out var summary) == RecordsError.None ? summary.RecordCount : -1;

    [Benchmark(OperationsPerInvoke = Records)]
    public int Decompress()
    {
        using var records = CompressionCodecs.DecompressPooled(CompressionCodec.Lz4, _section, CompressionCodecs.DefaultMaxDecompressedBytes);
        return records.Length;
    }
}
