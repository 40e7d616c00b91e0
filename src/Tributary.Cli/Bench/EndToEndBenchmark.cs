using System.Buffers.Binary;
using System.Diagnostics;
using Confluent.Kafka;
using HdrHistogram;

namespace Tributary.Cli.Bench;

public sealed record EndToEndBenchOptions(string Topic, int Partitions, long Rate, TimeSpan Duration, TimeSpan Warmup, int RecordSize = 100, Acks Acks = Acks.All, double LingerMs = 1);

/// <summary>
/// End-to-end latency at a fixed offered rate: the producer writes its send time (this process's monotonic clock)
/// into each record; a consumer assigned to every partition records the time until it sees the record. Sends are
/// paced against the clock (a schedule, not a sleep per record), so a slow moment is followed by a catch-up burst
/// as in open-loop load generators, and queueing delay shows in the percentiles instead of being hidden.
/// </summary>
public sealed class EndToEndBenchmark(ProducerConfig producerConfig, ConsumerConfig consumerConfig, EndToEndBenchOptions options)
{
    private long _seen;

    public long Seen => Interlocked.Read(ref _seen);

    public async Task<BenchResult> RunAsync(IProgress<long>? progress, CancellationToken cancellation)
    {
        var histogram = LatencySummary.NewHistogram();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        var measureFrom = Stopwatch.GetTimestamp() + (long)(options.Warmup.TotalSeconds * Stopwatch.Frequency);
        var consumerReady = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var consumer = Task.Factory.StartNew(() => Consume(histogram, measureFrom, consumerReady, stop.Token), TaskCreationOptions.LongRunning);
        await consumerReady.Task.WaitAsync(TimeSpan.FromSeconds(30), cancellation).ConfigureAwait(false);
        var produced = await Task.Factory.StartNew(() => Produce(stop.Token), TaskCreationOptions.LongRunning).ConfigureAwait(false);
        // Give in-flight records a bounded time to arrive, then stop the consumer.
        var drainUntil = Stopwatch.GetTimestamp() + 10 * Stopwatch.Frequency;
        while (Seen < produced && Stopwatch.GetTimestamp() < drainUntil && !cancellation.IsCancellationRequested)
        {
            progress?.Report(Seen);
            await Task.WhenAny(consumer, Task.Delay(50, CancellationToken.None)).ConfigureAwait(false);
        }
        stop.Cancel();
        await consumer.ConfigureAwait(false);
        return new BenchResult("e2e", producerConfig.BootstrapServers, options.Topic, options.Partitions, options.RecordSize,
            histogram.TotalCount, options.Duration.TotalSeconds, LatencySummary.From(histogram),
            new Dictionary<string, string>
            {
                ["rate"] = options.Rate.ToString(),
                ["acks"] = options.Acks.ToString(),
                ["linger.ms"] = options.LingerMs.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["produced"] = produced.ToString(),
                ["received"] = Seen.ToString(),
            });
    }

    private long Produce(CancellationToken stop)
    {
        var config = new ProducerConfig(producerConfig.ToDictionary(kv => kv.Key, kv => kv.Value))
        {
            Acks = options.Acks,
            LingerMs = options.LingerMs,
            EnableIdempotence = false,
            QueueBufferingMaxMessages = 1_000_000,
        };
        using var producer = new ProducerBuilder<Null, byte[]>(config).Build();
        var payload = new byte[Math.Max(8, options.RecordSize)];
        var message = new Message<Null, byte[]> { Value = payload };
        var partitions = Enumerable.Range(0, options.Partitions).Select(p => new TopicPartition(options.Topic, p)).ToArray();
        var start = Stopwatch.GetTimestamp();
        var end = start + (long)((options.Warmup + options.Duration).TotalSeconds * Stopwatch.Frequency);
        var ticksPerRecord = (double)Stopwatch.Frequency / options.Rate;
        long sent = 0;
        while (!stop.IsCancellationRequested)
        {
            var now = Stopwatch.GetTimestamp();
            if (now >= end) break;
            var due = (long)((now - start) / ticksPerRecord);
            if (sent >= due)
            {
                Thread.SpinWait(20);
                continue;
            }
            for (; sent < due && !stop.IsCancellationRequested; sent++)
            {
                // librdkafka copies the value during Produce, so one buffer serves every record.
                BinaryPrimitives.WriteInt64LittleEndian(payload, Stopwatch.GetTimestamp());
                try
                {
                    producer.Produce(partitions[sent % partitions.Length], message);
                }
                catch (ProduceException<Null, byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
                {
                    producer.Poll(TimeSpan.FromMilliseconds(1));
                    sent--;
                }
            }
        }
        producer.Flush(TimeSpan.FromSeconds(30));
        return sent;
    }

    private void Consume(LongHistogram histogram, long measureFrom, TaskCompletionSource ready, CancellationToken stop)
    {
        var config = new ConsumerConfig(consumerConfig.ToDictionary(kv => kv.Key, kv => kv.Value))
        {
            GroupId = consumerConfig.GroupId ?? "tributary-bench-e2e",
            EnableAutoCommit = false,
            FetchWaitMaxMs = 100,
            FetchMinBytes = 1,
        };
        using var consumer = new ConsumerBuilder<Ignore, byte[]>(config).Build();
        // Start at each partition's current end, as explicit offsets: assigning Offset.End would resolve lazily and
        // could skip records produced before the resolution.
        consumer.Assign(Enumerable.Range(0, options.Partitions).Select(p =>
            new TopicPartitionOffset(options.Topic, p, consumer.QueryWatermarkOffsets(new TopicPartition(options.Topic, p), TimeSpan.FromSeconds(10)).High)));
        ready.TrySetResult();
        while (!stop.IsCancellationRequested)
        {
            ConsumeResult<Ignore, byte[]>? result;
            try
            {
                result = consumer.Consume(stop);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            if (result?.Message?.Value is not { Length: >= 8 } value) continue;
            var now = Stopwatch.GetTimestamp();
            var sent = BinaryPrimitives.ReadInt64LittleEndian(value);
            Interlocked.Increment(ref _seen);
            if (sent >= measureFrom) histogram.RecordValue(Math.Max(1, (now - sent) * 1_000_000 / Stopwatch.Frequency));
        }
    }
}
