using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Tributary.Storage;

/// <summary>
/// The storage layer's instruments (System.Diagnostics.Metrics), one <see cref="Meter"/> per <see cref="LogManager"/>
/// so brokers sharing a process (tests) are told apart by their meter. Recording costs a few nanoseconds when no
/// listener is attached; nothing here runs per record.
/// <list type="bullet">
/// <item><c>tributary.log.flushes</c> / <c>tributary.log.flush.duration</c> (ms) / <c>tributary.log.flush.failures</c>:
/// the flusher's syncs, each making one partition's waiting appends durable.</item>
/// <item><c>tributary.log.size</c> (bytes, tags <c>topic</c>, <c>partition</c>): observed when collected.</item>
/// <item><c>tributary.log.directories.offline</c>: data directories taken offline by an I/O failure (Kafka's
/// <c>OfflineLogDirectoryCount</c>); anything above 0 needs an operator.</item>
/// </list>
/// </summary>
public sealed class StorageMetrics : IDisposable
{
    public const string MeterName = "Tributary.Storage";

    private readonly Counter<long> _flushes;
    private readonly Histogram<double> _flushDuration;
    private readonly Counter<long> _flushFailures;

    internal StorageMetrics(LogManager? logs)
    {
        Meter = new Meter(MeterName);
        _flushes = Meter.CreateCounter<long>("tributary.log.flushes", description: "Syncs of a partition's appended bytes to disk");
        _flushDuration = Meter.CreateHistogram<double>("tributary.log.flush.duration", "ms", "Time of one partition sync");
        _flushFailures = Meter.CreateCounter<long>("tributary.log.flush.failures", description: "Syncs that failed (their appends failed with them)");
        if (logs is not null)
        {
            Meter.CreateObservableGauge("tributary.log.size", () => LogSizes(logs), "By", "Bytes of each partition's log on disk");
            Meter.CreateObservableGauge("tributary.log.directories.offline", () => logs.Directories.Count(d => d.IsOffline),
                description: "Data directories offline after an I/O failure (their partitions answer KAFKA_STORAGE_ERROR)");
        }
    }

    public Meter Meter { get; }

    internal void Flushed(long startTimestamp, bool failed)
    {
        _flushes.Add(1);
        if (failed) _flushFailures.Add(1);
        if (_flushDuration.Enabled) _flushDuration.Record(Stopwatch.GetElapsedTime(startTimestamp).TotalMilliseconds);
    }

    private static IEnumerable<Measurement<long>> LogSizes(LogManager logs)
    {
        foreach (var (topic, partition) in logs.OpenPartitions())
        {
            if (logs.Get(topic, partition) is not { } log) continue;
            long size;
            try
            {
                size = log.SizeInBytes;
            }
            catch (ObjectDisposedException)
            {
                continue; // deleted while being observed
            }
            yield return new Measurement<long>(size, new KeyValuePair<string, object?>("topic", topic), new KeyValuePair<string, object?>("partition", partition));
        }
    }

    public void Dispose() => Meter.Dispose();
}
