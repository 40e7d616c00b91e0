using System.Diagnostics;
using Confluent.Kafka;

namespace Tributary.Cli.Bench;

public sealed record ConsumeBenchOptions(string Topic, int Partitions, long Count = 0, int Consumers = 1, TimeSpan? Timeout = null, BenchClient Client = BenchClient.Librdkafka);

/// <summary>
/// Reads a prepared topic from the beginning with one or more consumers (partitions split between them by
/// assignment, no group), until every partition's end as it stood at the start, or --count records.
/// </summary>
public sealed class ConsumeBenchmark(ConsumerConfig baseConfig, ConsumeBenchOptions options)
{
    private long _records;
    private long _bytes;

    public long Consumed => Interlocked.Read(ref _records);

    public async Task<BenchResult> RunAsync(IProgress<long>? progress, CancellationToken cancellation)
    {
        var ends = new long[options.Partitions];
        using (var probe = new ConsumerBuilder<Ignore, Ignore>(Config(0)).Build())
        {
            for (var p = 0; p < options.Partitions; p++)
                ends[p] = probe.QueryWatermarkOffsets(new TopicPartition(options.Topic, p), TimeSpan.FromSeconds(10)).High.Value;
        }
        var target = options.Count > 0 ? Math.Min(options.Count, ends.Sum()) : ends.Sum();
        var clock = Stopwatch.StartNew();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        stop.CancelAfter(options.Timeout ?? TimeSpan.FromMinutes(10));
        var readers = Enumerable.Range(0, options.Consumers)
            .Select(i => Task.Factory.StartNew(() =>
            {
                if (options.Client == BenchClient.Librdkafka) ReadNative(i, ends, target, stop.Token);
                else Read(i, ends, target, stop.Token);
            }, TaskCreationOptions.LongRunning))
            .ToList();
        var all = Task.WhenAll(readers);
        while (!all.IsCompleted)
        {
            await Task.WhenAny(all, Task.Delay(250, CancellationToken.None)).ConfigureAwait(false);
            progress?.Report(Consumed);
        }
        await all.ConfigureAwait(false);
        var seconds = clock.Elapsed.TotalSeconds;
        var records = Consumed;
        var size = records > 0 ? (int)(Interlocked.Read(ref _bytes) / records) : 0;
        return new BenchResult("consume", baseConfig.BootstrapServers, options.Topic, options.Partitions, size, records, seconds, null,
            new Dictionary<string, string>
            {
                ["consumers"] = options.Consumers.ToString(),
                ["fetch.max.bytes"] = Config(0).FetchMaxBytes?.ToString() ?? "",
                ["client"] = options.Client == BenchClient.Librdkafka ? "librdkafka C API" : "Confluent.Kafka .NET",
            });
    }

    private ConsumerConfig Config(int index) => new(baseConfig.ToDictionary(kv => kv.Key, kv => kv.Value))
    {
        GroupId = baseConfig.GroupId ?? "tributary-bench",
        EnableAutoCommit = false,
        EnablePartitionEof = true,
        FetchMaxBytes = baseConfig.FetchMaxBytes ?? 52_428_800,
        MaxPartitionFetchBytes = baseConfig.MaxPartitionFetchBytes ?? 10_485_760,
        QueuedMaxMessagesKbytes = 262_144,
        ClientId = $"tributary-bench-consumer-{index}",
    };

    private void ReadNative(int index, long[] ends, long target, CancellationToken stop)
    {
        var mine = Enumerable.Range(0, options.Partitions).Where(p => p % options.Consumers == index && ends[p] > 0).ToList();
        if (mine.Count == 0) return;
        var config = Config(index).Where(kv => kv.Value is not null && kv.Key != "enable.auto.commit").ToDictionary(kv => kv.Key, kv => kv.Value);
        using var consumer = new NativeConsumer(config, options.Topic);
        foreach (var p in mine) consumer.StartFromBeginning(p);
        var remaining = new HashSet<int>(mine);
        while (remaining.Count > 0 && !stop.IsCancellationRequested && Consumed < target)
        {
            foreach (var p in remaining.ToList())
            {
                var (records, bytes, next, _) = consumer.ConsumeBatch(p, remaining.Count == 1 ? 100 : 0);
                Interlocked.Add(ref _records, records);
                Interlocked.Add(ref _bytes, bytes);
                if (next >= ends[p]) remaining.Remove(p);
            }
        }
    }

    private void Read(int index, long[] ends, long target, CancellationToken stop)
    {
        var mine = Enumerable.Range(0, options.Partitions).Where(p => p % options.Consumers == index && ends[p] > 0).ToList();
        if (mine.Count == 0) return;
        using var consumer = new ConsumerBuilder<Ignore, byte[]>(Config(index)).Build();
        consumer.Assign(mine.Select(p => new TopicPartitionOffset(options.Topic, p, Offset.Beginning)));
        var done = new HashSet<int>();
        while (done.Count < mine.Count && !stop.IsCancellationRequested && Consumed < target)
        {
            var result = consumer.Consume(TimeSpan.FromMilliseconds(100));
            if (result is null) continue;
            if (result.IsPartitionEOF)
            {
                if (result.Offset.Value >= ends[result.Partition.Value]) done.Add(result.Partition.Value);
                continue;
            }
            Interlocked.Increment(ref _records);
            Interlocked.Add(ref _bytes, result.Message.Value?.Length ?? 0);
            if (result.Offset.Value + 1 >= ends[result.Partition.Value]) done.Add(result.Partition.Value);
        }
    }
}
