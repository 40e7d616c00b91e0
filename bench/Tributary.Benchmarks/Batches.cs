using Tributary.Protocol.Records;

namespace Tributary.Benchmarks;

/// <summary>Record batches shaped like a librdkafka producer's: many small records in one uncompressed batch.</summary>
public static class Batches
{
    public static byte[] Build(int records, int valueSize)
    {
        var value = new byte[valueSize];
        new Random(42).NextBytes(value);
        var builder = new RecordBatchBuilder();
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        for (var i = 0; i < records; i++) builder.Add(now, value);
        return builder.Build();
    }
}
