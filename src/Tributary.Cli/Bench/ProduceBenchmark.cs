using System.Diagnostics;
using Confluent.Kafka;
using HdrHistogram;
using Tributary.Cli.Bench.Wire;
using Tributary.Protocol.Records;

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
    BenchClient Client = BenchClient.Librdkafka,
    bool Idempotence = false,
    int TransactionalCommitMs = 0,
    int Keys = 0,
    long Rate = 0);

/// <summary>
/// Which client drives the load: librdkafka through its C API (the broker is what is measured), Confluent.Kafka's
/// .NET producer (what a .NET application sees, including the wrapper's per-record cost), or the benchmark's own
/// wire-protocol producer (<see cref="Wire.WireProducer"/>: pipelined like Kafka's Java producer, producers only).
/// </summary>
public enum BenchClient { Librdkafka, DotNet, Wire }

/// <summary>
/// Like kafka-producer-perf-test: producers push fixed-size records round-robin over the partitions as fast as the
/// client allows, and every acknowledgement's latency (send to delivery report) is recorded. Send times are kept
/// per partition in FIFO order, since a partition's delivery reports come back in send order, so measuring needs no
/// per-record allocation. With <see cref="ProduceBenchOptions.Idempotence"/> producers are idempotent; with
/// <see cref="ProduceBenchOptions.TransactionalCommitMs"/> each producer has its own transactional.id and commits a
/// transaction every that many milliseconds (commit flushes the transaction's records first, as librdkafka requires).
/// With <see cref="ProduceBenchOptions.Keys"/> records carry keys cycling over that many distinct 12-byte keys, which a
/// compacted topic needs (and which gives its cleaner something to do).
/// </summary>
public sealed class ProduceBenchmark(ProducerConfig baseConfig, ProduceBenchOptions options)
{
    private long _acked;
    private long _errors;
    private long _transactions;
    // Transactional ids unique to this run, so a run never fences, nor waits on, a previous run's producers.
    private readonly string _runId = Guid.NewGuid().ToString("N")[..8];

    private bool Transactional => options.TransactionalCommitMs > 0;

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
                ["client"] = options.Client switch
                {
                    BenchClient.Librdkafka => "librdkafka C API",
                    BenchClient.DotNet => "Confluent.Kafka .NET",
                    _ => "Tributary wire producer",
                },
                ["warmup.s"] = warmup.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["idempotence"] = (options.Idempotence || Transactional) ? "true" : "false",
                ["transactional.commit.ms"] = options.TransactionalCommitMs.ToString(),
                ["transactions.committed"] = Interlocked.Read(ref _transactions).ToString(),
                ["keys"] = options.Keys.ToString(),
                ["rate"] = options.Rate > 0 ? options.Rate.ToString() : "unlimited",
            },
            Interlocked.Read(ref _errors));
    }

    private void RunProducer(int index, LongHistogram histogram, long count, ManualResetEventSlim measuring, CancellationToken stop)
    {
        switch (options.Client)
        {
            case BenchClient.Librdkafka: RunNativeProducer(index, histogram, count, measuring, stop); break;
            case BenchClient.DotNet: RunDotNetProducer(index, histogram, count, measuring, stop); break;
            default: RunWireProducer(index, histogram, count, measuring, stop); break;
        }
    }

    private ProducerConfig ProducerConfig(int index) => new(baseConfig.ToDictionary(kv => kv.Key, kv => kv.Value))
    {
        Acks = options.Acks,
        LingerMs = options.LingerMs,
        BatchSize = options.BatchBytes,
        CompressionType = options.Compression,
        QueueBufferingMaxMessages = 1_000_000,
        QueueBufferingMaxKbytes = 1_048_576,
        EnableIdempotence = options.Idempotence || Transactional,
        TransactionalId = Transactional ? $"tributary-bench-{_runId}-{index}" : null,
        ClientId = $"tributary-bench-{index}",
    };

    /// <summary>Counts a commit that falls in the measured window (the warmup's commits are not reported).</summary>
    private void Committed(ManualResetEventSlim measuring)
    {
        if (measuring.IsSet) Interlocked.Increment(ref _transactions);
    }

    private void RunNativeProducer(int index, LongHistogram histogram, long count, ManualResetEventSlim measuring, CancellationToken stop)
    {
        var config = ProducerConfig(index).Where(kv => kv.Value is not null).ToDictionary(kv => kv.Key, kv => kv.Value);
        var payload = new byte[options.RecordSize];
        Random.Shared.NextBytes(payload);
        var keys = BenchKeys.Create(options.Keys);
        long nextKey = index;
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
        var commitEvery = Stopwatch.Frequency * options.TransactionalCommitMs / 1000;
        if (Transactional)
        {
            producer.InitTransactions(60_000);
            producer.BeginTransaction();
        }
        var txnStart = Stopwatch.GetTimestamp();
        var pacer = Pacer();
        while (sent < count && !stop.IsCancellationRequested)
        {
            var p = turn++ % options.Partitions;
            var want = (int)Math.Min(Run, count - sent);
            if (pacer is not null && (want = (int)Math.Min(want, pacer.Due() - sent)) <= 0)
            {
                // Caught up with the schedule: serve delivery reports for a millisecond, then send what fell due.
                producer.Poll(1);
                turn--;
                continue;
            }
            var now = Stopwatch.GetTimestamp();
            var queued = producer.TryProduceMany(p, payload, want, now, keys, ref nextKey);
            sent += queued;
            // Serve delivery reports as they come; wait a little when librdkafka's queue is full.
            producer.Poll(queued < want ? 10 : 0);
            if (Transactional && now - txnStart >= commitEvery)
            {
                producer.CommitTransaction(60_000);
                Committed(measuring);
                producer.BeginTransaction();
                txnStart = Stopwatch.GetTimestamp();
            }
        }
        if (Transactional)
        {
            producer.CommitTransaction(60_000);
            Committed(measuring);
            return;
        }
        while (producer.Flush(100) != 0 && !stop.IsCancellationRequested)
        {
        }
    }

    private void RunWireProducer(int index, LongHistogram histogram, long count, ManualResetEventSlim measuring, CancellationToken stop)
    {
        var payload = new byte[options.RecordSize];
        Random.Shared.NextBytes(payload);
        var keys = BenchKeys.Create(options.Keys);
        long nextKey = index;
        var histogramLock = new Lock();
        var wireOptions = new WireProducerOptions(baseConfig.BootstrapServers, options.Topic, $"tributary-bench-{index}",
            Acks: options.Acks == Acks.All ? (short)-1 : (short)1,
            BatchBytes: options.BatchBytes,
            LingerMs: options.LingerMs,
            Codec: options.Compression switch
            {
                CompressionType.Gzip => CompressionCodec.Gzip,
                CompressionType.Snappy => CompressionCodec.Snappy,
                CompressionType.Lz4 => CompressionCodec.Lz4,
                CompressionType.Zstd => CompressionCodec.Zstd,
                _ => CompressionCodec.None,
            },
            Idempotent: options.Idempotence || Transactional,
            TransactionalId: Transactional ? $"tributary-bench-{_runId}-{index}" : null);
        using var producer = new WireProducer(wireOptions, (sendTicks, ackTicks, error) =>
        {
            if (error != Tributary.Protocol.Messages.ErrorCode.None)
            {
                Interlocked.Add(ref _errors, sendTicks.Length);
                return;
            }
            Interlocked.Add(ref _acked, sendTicks.Length);
            if (!measuring.IsSet) return;
            lock (histogramLock)
            {
                foreach (var sent in sendTicks)
                    histogram.RecordValue(Math.Max(1, (ackTicks - sent) * 1_000_000 / Stopwatch.Frequency));
            }
        });
        // Runs of 64 records to a partition, then the next, as the librdkafka client sends them.
        const int Run = 64;
        var commitEvery = Stopwatch.Frequency * options.TransactionalCommitMs / 1000;
        var txnStart = Stopwatch.GetTimestamp();
        var turn = index;
        long sent = 0;
        var pacer = Pacer();
        while (sent < count && !stop.IsCancellationRequested)
        {
            var run = Math.Min(Run, count - sent);
            if (pacer is not null && (run = Math.Min(run, pacer.Due() - sent)) <= 0)
            {
                // Caught up: send batches whose linger has passed, then wait for the schedule.
                producer.SendLingered();
                Thread.Sleep(1);
                continue;
            }
            var p = turn++ % producer.PartitionCount;
            for (var i = 0; i < run; i++)
            {
                if (keys.Count > 0) producer.Append(p, keys.Key(nextKey++), hasKey: true, payload);
                else producer.Append(p, default, hasKey: false, payload);
            }
            sent += run;
            if (Transactional && Stopwatch.GetTimestamp() - txnStart >= commitEvery)
            {
                producer.CommitTransaction();
                Committed(measuring);
                txnStart = Stopwatch.GetTimestamp();
            }
        }
        if (Transactional)
        {
            producer.CommitTransaction();
            Committed(measuring);
        }
        else
        {
            producer.Flush();
        }
    }

    /// <summary>With a --rate, each producer's share of it as a schedule (open loop: a late moment is caught up after).</summary>
    private RatePacer? Pacer() => options.Rate > 0 ? new RatePacer((double)options.Rate / options.Producers) : null;

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
        var keys = BenchKeys.Create(options.Keys);
        // Confluent.Kafka hands the key to librdkafka, which copies it, before Produce returns: one array, refilled
        // for each record, serves them all.
        var key = keys.Count > 0 ? new byte[BenchKeys.Width] : null;
        var message = new Message<byte[]?, byte[]> { Key = key, Value = payload };
        Action<DeliveryReport<byte[]?, byte[]>> onDelivery = report =>
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
        using var producer = new ProducerBuilder<byte[]?, byte[]>(config).Build();
        var commitEvery = Stopwatch.Frequency * options.TransactionalCommitMs / 1000;
        if (Transactional)
        {
            producer.InitTransactions(TimeSpan.FromMinutes(1));
            producer.BeginTransaction();
        }
        var txnStart = Stopwatch.GetTimestamp();
        var pacer = Pacer();
        for (long i = 0; i < count && !stop.IsCancellationRequested; i++)
        {
            while (pacer is not null && i >= pacer.Due() && !stop.IsCancellationRequested) producer.Poll(TimeSpan.FromMilliseconds(1));
            if (Transactional && Stopwatch.GetTimestamp() - txnStart >= commitEvery)
            {
                producer.CommitTransaction(TimeSpan.FromMinutes(1));
                Committed(measuring);
                producer.BeginTransaction();
                txnStart = Stopwatch.GetTimestamp();
            }
            var p = (int)((i + index) % options.Partitions);
            if (key is not null) keys.Key(i + index).CopyTo(key);
            var times = sendTimes[p];
            while (true)
            {
                times.Push(Stopwatch.GetTimestamp());
                try
                {
                    producer.Produce(partitions[p], message, onDelivery);
                    break;
                }
                catch (ProduceException<byte[]?, byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
                {
                    times.TakeBackNewest();
                    producer.Poll(TimeSpan.FromMilliseconds(10));
                }
            }
        }
        if (Transactional)
        {
            producer.CommitTransaction(TimeSpan.FromMinutes(2));
            Committed(measuring);
        }
        else
        {
            producer.Flush(TimeSpan.FromMinutes(2));
        }
    }
}
