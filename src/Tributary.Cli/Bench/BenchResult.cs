using System.Text.Json;
using System.Text.Json.Serialization;
using HdrHistogram;

namespace Tributary.Cli.Bench;

/// <summary>Latency percentiles in milliseconds, from an HdrHistogram recorded in microseconds.</summary>
public sealed record LatencySummary(double P50Ms, double P99Ms, double P999Ms, double MaxMs, long Samples)
{
    public static LatencySummary? From(HistogramBase histogram) => histogram.TotalCount == 0
        ? null
        : new LatencySummary(
            histogram.GetValueAtPercentile(50) / 1000.0,
            histogram.GetValueAtPercentile(99) / 1000.0,
            histogram.GetValueAtPercentile(99.9) / 1000.0,
            histogram.GetMaxValue() / 1000.0,
            histogram.TotalCount);

    /// <summary>Microseconds from 1 µs to 10 minutes at 3 significant digits.</summary>
    public static LongHistogram NewHistogram() => new(600_000_000L, 3);
}

/// <summary>The figures of one benchmark run (after warm-up), as printed and as --json.</summary>
public sealed record BenchResult(
    string Mode,
    string Brokers,
    string Topic,
    int Partitions,
    int RecordSize,
    long Records,
    double Seconds,
    LatencySummary? Latency,
    IReadOnlyDictionary<string, string> Settings,
    long Errors = 0)
{
    public double RecordsPerSecond => Seconds > 0 ? Records / Seconds : 0;
    public double MegabytesPerSecond => RecordsPerSecond * RecordSize / 1_000_000.0;

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public string ToJson() => JsonSerializer.Serialize(new
    {
        Mode,
        Brokers,
        Topic,
        Partitions,
        RecordSize,
        Records,
        Seconds,
        RecordsPerSecond = Math.Round(RecordsPerSecond),
        MegabytesPerSecond = Math.Round(MegabytesPerSecond, 1),
        Latency,
        Errors,
        Settings,
    }, Json);
}
