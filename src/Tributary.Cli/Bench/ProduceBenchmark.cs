using System.Diagnostics;
using Confluent.Kafka;
using HdrHistogram;

namespace Tributary.Cli.Bench;

public sealed record ProduceBenchOptions(
    string Topic,
    int Partitions,
    int RecordSize = 100,
    long Count = 0,
    TimeSpan? Duration = null,
    TimeSpan? Warmup = null,
    int Producers = 1,
    Acks Acks = Acks.All,
    double LingerMs = 5,
    int BatchBytes = 1_000_000,
    CompressionType Compression = CompressionType.None,
    BenchClient Client = BenchClient.Librdkafka);

/// <summary>
/// Which API drives librdkafka: its C API directly (the broker is what is measured), or Confluent.Kafka's .NET
/// producer (what a .NET application sees, including the wrapper's per-record cost).
/// </summary>
public enum BenchClient { Librdkafka, DotNet }

/// <summary>
/// Like kafka-producer-perf-test: producers push fixed-size records round-robin over the partitions as fast as the
/// client allows, and every acknowledgement's latency (send to delivery report) is recorded. Send times are kept
/// per partition in FIFO order, since a partition's delivery reports come back in send order, so measuring needs no
/// per-record allocation.
/// </summary>
public sealed class ProduceBenchmark(ProducerConfig baseConfig, ProduceBenchOptions options)
{
    private long _acked;
    private long _errors;

    public long Acknowledged => Interlocked.Read(ref _acked);

    public async Task<BenchResult> RunAsync(IProgress<long>? progress, CancellationToken cancellation)
    {
        var warmup = options.Warmup ?? TimeSpan.Zero;
        var measuring = new ManualResetEventSlim(warmup == TimeSpan.Zero);
        var histograms = new List<LongHistogram>();
        var countPerProducer = options.Count > 0 ? (options.Count + options.Producers - 1) / options.Producers : long.MaxValue;
        var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        long measuredStartAcked = 0;
        var clock = Stopwatch.StartNew();
        TimeSpan measuredStart = TimeSpan.Zero;

        var producers = Enumerable.Range(0, options.Producers).Select(i =>
        {
            var histogram = LatencySummary.NewHistogram();
            histograms.Add(histogram);
            return Task.Factory.StartNew(() => RunProducer(i, histogram, countPerProducer, measuring, stop.Token), TaskCreationOptions.LongRunning);
        }).ToList();

        if (warmup > TimeSpan.Zero)
        {
            await Task.WhenAny(Task.Delay(warmup, cancellation), Task.WhenAll(producers)).ConfigureAwait(false);
            measuredStartAcked = Acknowledged;
            measuredStart = clock.Elapsed;
            measuring.Set();
        }
        var all = Task.WhenAll(producers);
        var deadline = options.Duration is { } d ? measuredStart + d : TimeSpan.MaxValue;
        while (!all.IsCompleted)
        {
            await Task.WhenAny(all, Task.Delay(250, CancellationToken.None)).ConfigureAwait(false);
            progress?.Report(Acknowledged);
            if (clock.Elapsed >= deadline || cancellation.IsCancellationRequested) stop.Cancel();
        }
        await all.ConfigureAwait(false);
        var elapsed = clock.Elapsed - measuredStart;
        var merged = LatencySummary.NewHistogram();
        foreach (var h in histograms) merged.Add(h);
        return new BenchResult("produce", baseConfig.BootstrapServers, options.Topic, options.Partitions, options.RecordSize,
            Acknowledged - measuredStartAcked, elapsed.TotalSeconds, LatencySummary.From(merged),
            new Dictionary<string, string>
            {
                ["acks"] = options.Acks.ToString(),
                ["linger.ms"] = options.LingerMs.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["batch.size"] = options.BatchBytes.ToString(),
                ["compression"] = options.Compression.ToString().ToLowerInvariant(),
                ["producers"] = options.Producers.ToString(),
                ["client"] = options.Client == BenchClient.Librdkafka ? "librdkafka C API" : "Confluent.Kafka .NET",
                ["warmup.s"] = warmup.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
            },
            Interlocked.Read(ref _errors));
    }

    private void RunProducer(int index, LongHistogram histogram, long count, ManualResetEventSlim measuring, CancellationToken stop)
    {
        if (options.Client == BenchClient.Librdkafka) RunNativeProducer(index, histogram, count, measuring, stop);
        else RunDotNetProducer(index, histogram, count, measuring, stop);
    }

    private ProducerConfig ProducerConfig(int index) => new(baseConfig.ToDictionary(kv => kv.Key, kv => kv.Value))
    {
        Acks = options.Acks,
        LingerMs = options.LingerMs,
        BatchSize = options.BatchBytes,
        CompressionType = options.Compression,
        QueueBufferingMaxMessages = 1_000_000,
        QueueBufferingMaxKbytes = 1_048_576,
        EnableIdempotence = false,
        ClientId = $"tributary-bench-{index}",
    };

    private void RunNativeProducer(int index, LongHistogram histogram, long count, ManualResetEventSlim measuring, CancellationToken stop)
    {
        var config = ProducerConfig(index).Where(kv => kv.Value is not null).ToDictionary(kv => kv.Key, kv => kv.Value);
        var payload = new byte[options.RecordSize];
        Random.Shared.NextBytes(payload);
        using var producer = new NativeProducer(config, options.Topic);
        producer.OnDelivery = (error, sent) =>
        {
            if (error != 0)
            {
                Interlocked.Increment(ref _errors);
                return;
            }
            Interlocked.Increment(ref _acked);
            if (measuring.IsSet)
                histogram.RecordValue(Math.Max(1, (Stopwatch.GetTimestamp() - sent) * 1_000_000 / Stopwatch.Frequency));
        };
        // Records go in runs of 64 per call (rd_kafka_produce_batch), each run to the next partition in turn: the
        // per-call cost is then negligible and the benchmark's own thread stops being the limit.
        const int Run = 64;
        long sent = 0;
        var turn = index;
        while (sent < count && !stop.IsCancellationRequested)
        {
            var p = turn++ % options.Partitions;
            var want = (int)Math.Min(Run, count - sent);
            var queued = producer.TryProduceMany(p, payload, want, Stopwatch.GetTimestamp());
            sent += queued;
            // Serve delivery reports as they come; wait a little when librdkafka's queue is full.
            producer.Poll(queued < want ? 10 : 0);
        }
        while (producer.Flush(100) != 0 && !stop.IsCancellationRequested)
        {
        }
    }

    private void RunDotNetProducer(int index, LongHistogram histogram, long count, ManualResetEventSlim measuring, CancellationToken stop)
    {
        var config = new ProducerConfig(ProducerConfig(index))
        {
            // The report's partition and error are all the benchmark reads; marshalling keys, values and headers
            // back into .NET for every record would make the client, not the broker, the thing measured.
            DeliveryReportFields = "none",
        };
        var payload = new byte[options.RecordSize];
        Random.Shared.NextBytes(payload);
        var sendTimes = Enumerable.Range(0, options.Partitions).Select(_ => new SendTimes()).ToArray();
        var partitions = Enumerable.Range(0, options.Partitions).Select(p => new TopicPartition(options.Topic, p)).ToArray();
        var message = new Message<Null, byte[]> { Value = payload };
        Action<DeliveryReport<Null, byte[]>> onDelivery = report =>
        {
            var sent = sendTimes[report.Partition.Value].PopOldest();
            if (report.Error.IsError)
            {
                Interlocked.Increment(ref _errors);
                return;
            }
            Interlocked.Increment(ref _acked);
            if (measuring.IsSet)
                histogram.RecordValue(Math.Max(1, (Stopwatch.GetTimestamp() - sent) * 1_000_000 / Stopwatch.Frequency));
        };
        using var producer = new ProducerBuilder<Null, byte[]>(config).Build();
        for (long i = 0; i < count && !stop.IsCancellationRequested; i++)
        {
            var p = (int)((i + index) % options.Partitions);
            var times = sendTimes[p];
            while (true)
            {
                times.Push(Stopwatch.GetTimestamp());
                try
                {
                    producer.Produce(partitions[p], message, onDelivery);
                    break;
                }
                catch (ProduceException<Null, byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
                {
                    times.TakeBackNewest();
                    producer.Poll(TimeSpan.FromMilliseconds(10));
                }
            }
        }
        producer.Flush(TimeSpan.FromMinutes(2));
    }
}
