using Tributary.Protocol.Records;

namespace Tributary.Benchmarks;

/// <summary>Record batches shaped like a librdkafka producer's: many small records in one uncompressed batch.</summary>
public static class Batches
{
    public static byte[] Build(int records, int valueSize) => Build(records, valueSize, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), stepMs: 0);

    /// <summary>A batch whose record timestamps start at <paramref name="firstTimestamp"/> and rise by <paramref name="stepMs"/>.</summary>
    public static byte[] Build(int records, int valueSize, long firstTimestamp, int stepMs)
    {
        var value = new byte[valueSize];
        new Random(42).NextBytes(value);
        var builder = new RecordBatchBuilder();
        for (var i = 0; i < records; i++) builder.Add(firstTimestamp + (long)i * stepMs, value);
        return builder.Build();
    }
}
