using System.Buffers.Binary;
using System.Diagnostics;
using Confluent.Kafka;
using HdrHistogram;

namespace Tributary.Cli.Bench;

public sealed record EndToEndBenchOptions(string Topic, int Partitions, long Rate, TimeSpan Duration, TimeSpan Warmup, int RecordSize = 100, Acks Acks = Acks.All, double LingerMs = 1,
    BenchClient Client = BenchClient.Librdkafka);

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
                ["client"] = options.Client == BenchClient.Librdkafka ? "librdkafka C API" : "Confluent.Kafka .NET",
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
        var payload = new byte[Math.Max(8, options.RecordSize)];
        if (options.Client == BenchClient.Librdkafka)
        {
            using var native = new NativeProducer(config.Where(kv => kv.Value is not null).ToDictionary(kv => kv.Key, kv => kv.Value), options.Topic);
            return Paced(stop, (partition, now) =>
            {
                BinaryPrimitives.WriteInt64LittleEndian(payload, now);
                return native.TryProduce(partition, payload, now);
            }, wait => native.Poll(wait), () => native.Flush(30_000));
        }

        using var producer = new ProducerBuilder<Null, byte[]>(config).Build();
        var message = new Message<Null, byte[]> { Value = payload };
        var partitions = Enumerable.Range(0, options.Partitions).Select(p => new TopicPartition(options.Topic, p)).ToArray();
        return Paced(stop, (partition, now) =>
        {
            // librdkafka copies the value during Produce, so one buffer serves every record.
            BinaryPrimitives.WriteInt64LittleEndian(payload, now);
            try
            {
                producer.Produce(partitions[partition], message);
                return true;
            }
            catch (ProduceException<Null, byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
            {
                return false;
            }
        }, wait => producer.Poll(TimeSpan.FromMilliseconds(wait)), () => producer.Flush(TimeSpan.FromSeconds(30)));
    }

    /// <summary>
    /// Sends what the schedule says is due, then waits in the client's poll (which also serves delivery reports).
    /// Waiting rather than spinning matters: on a small machine a spinning load generator takes a core from the
    /// broker and the consumer, and its cost would show up as their latency.
    /// </summary>
    private long Paced(CancellationToken stop, Func<int, long, bool> send, Action<int> poll, Action flush)
    {
        var pacer = new RatePacer(options.Rate);
        var end = Stopwatch.GetTimestamp() + (long)((options.Warmup + options.Duration).TotalSeconds * Stopwatch.Frequency);
        long sent = 0;
        while (!stop.IsCancellationRequested)
        {
            if (Stopwatch.GetTimestamp() >= end) break;
            var due = pacer.Due();
            while (sent < due && !stop.IsCancellationRequested)
            {
                if (send((int)(sent % options.Partitions), Stopwatch.GetTimestamp()))
                {
                    sent++;
                }
                else
                {
                    poll(1); // librdkafka's queue is full: let it drain
                }
            }
            // Caught up: wait a millisecond (less if a delivery report comes), then send what fell due meanwhile.
            // Above 1,000 records/s that sends in 1 ms bursts, which linger.ms batches anyway; polling with a zero
            // timeout until the next record is due would spin.
            poll(1);
        }
        flush();
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
        void See(ReadOnlySpan<byte> value)
        {
            if (value.Length < 8) return;
            var now = Stopwatch.GetTimestamp();
            var sent = BinaryPrimitives.ReadInt64LittleEndian(value);
            Interlocked.Increment(ref _seen);
            if (sent >= measureFrom) histogram.RecordValue(Math.Max(1, (now - sent) * 1_000_000 / Stopwatch.Frequency));
        }

        if (options.Client == BenchClient.Librdkafka)
        {
            var native = config.Where(kv => kv.Value is not null && kv.Key != "enable.auto.commit").ToDictionary(kv => kv.Key, kv => kv.Value);
            using var consumer = new NativeConsumer(native, options.Topic);
            // Start at each partition's current end, as explicit offsets, so no record produced later is skipped.
            for (var p = 0; p < options.Partitions; p++) consumer.StartOnQueue(p, consumer.HighWatermark(p, 10_000));
            ready.TrySetResult();
            NativeConsumer.PayloadVisitor visit = See;
            while (!stop.IsCancellationRequested) consumer.ConsumeQueue(100, visit);
            return;
        }

        using var dotnet = new ConsumerBuilder<Ignore, byte[]>(config).Build();
        dotnet.Assign(Enumerable.Range(0, options.Partitions).Select(p =>
            new TopicPartitionOffset(options.Topic, p, dotnet.QueryWatermarkOffsets(new TopicPartition(options.Topic, p), TimeSpan.FromSeconds(10)).High)));
        ready.TrySetResult();
        while (!stop.IsCancellationRequested)
        {
            ConsumeResult<Ignore, byte[]>? result;
            try
            {
                result = dotnet.Consume(stop);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            if (result?.Message?.Value is { } value) See(value);
        }
    }
}
