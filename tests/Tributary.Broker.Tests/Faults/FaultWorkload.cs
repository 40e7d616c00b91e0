using System.Text;
using Confluent.Kafka;

namespace Tributary.Broker.Tests.Faults;

/// <summary>
/// The clients of a fault run. Writers are idempotent Confluent.Kafka producers with acks=all, each sending unique
/// values (<c>w{writer}g{generation}-{n}</c>) round-robin over the partitions at a bounded rate and recording every
/// delivery report in the <see cref="FaultHistory"/>. A value is never sent again after a failure (the application
/// does not retry), so under idempotence each value can appear at most once. A producer that hits a fatal error is
/// replaced by a new one (a new generation, a new producer id). The reader reads every partition from the beginning up
/// to its high watermark with an assigned consumer (no group).
/// </summary>
internal sealed class FaultWorkload(string bootstrap, string topic, int partitions, FaultHistory history)
{
    private const int InFlightPerWriter = 200;
    private const int RecordsPerTick = 5;
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(10);

    private const int ClientLogCapacity = 20_000;
    private int _fatal;
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _clientLog = new();

    /// <summary>
    /// The producers' idempotence log lines (librdkafka's "eos" debug context and its warnings), bounded: what a
    /// duplicate needs to be explained (an epoch bump, a producer id reset, a sequence the broker refused).
    /// </summary>
    public IEnumerable<string> ClientLog => _clientLog;

    /// <summary>Producers replaced after a fatal error.</summary>
    public int FatalErrors => _fatal;

    /// <summary>Runs one writer until <paramref name="stop"/> fires, then waits for every outstanding delivery report.</summary>
    public async Task WriteAsync(int writer, CancellationToken stop)
    {
        for (var generation = 0; !stop.IsCancellationRequested; generation++)
        {
            using var fatal = new CancellationTokenSource();
            using var inFlight = new SemaphoreSlim(InFlightPerWriter);
            using var producer = new ProducerBuilder<Null, string>(new ProducerConfig
            {
                BootstrapServers = bootstrap,
                Acks = Acks.All,
                EnableIdempotence = true,
                LingerMs = 5,
                // librdkafka's default. A record that times out in the producer's queue makes librdkafka bump the
                // producer epoch and renumber what it still holds, retries of possibly written batches included: a
                // client-made duplicate no broker can detect. The outages here are far shorter than this.
                MessageTimeoutMs = 300_000,
                RequestTimeoutMs = 5_000,
                SocketTimeoutMs = 5_000,
                Debug = "eos",
            })
                // Connection errors while brokers are down are expected; the delivery reports are what is judged. The
                // idempotence lines are kept to explain an anomaly.
                .SetLogHandler((_, message) =>
                {
                    if (_clientLog.Count < ClientLogCapacity)
                        _clientLog.Enqueue($"{DateTime.UtcNow:HH:mm:ss.fff} w{writer} {message.Level} {message.Facility}: {message.Message}");
                })
                .SetErrorHandler((_, error) =>
                {
                    if (error.IsFatal) fatal.Cancel();
                })
                .Build();
            using var either = CancellationTokenSource.CreateLinkedTokenSource(stop, fatal.Token);
            try
            {
                for (var n = 0L; !either.IsCancellationRequested; n++)
                {
                    if (n % RecordsPerTick == 0) await Task.Delay(Tick, either.Token);
                    await inFlight.WaitAsync(either.Token);
                    var value = $"w{writer}g{generation}-{n}";
                    var partition = (int)(n % partitions);
                    history.Attempted(value, partition);
                    try
                    {
                        producer.Produce(new TopicPartition(topic, partition), new Message<Null, string> { Value = value }, report =>
                        {
                            if (report.Error.Code == ErrorCode.NoError && report.Status == PersistenceStatus.Persisted)
                                history.Acknowledged(value, report.Partition.Value, report.Offset.Value);
                            else
                                history.Failed(value, report.Error.Code == ErrorCode.NoError ? report.Status.ToString() : report.Error.Reason);
                            if (report.Error.IsFatal) fatal.Cancel();
                            inFlight.Release();
                        });
                    }
                    catch (ProduceException<Null, string> e)
                    {
                        history.Failed(value, e.Error.Reason);
                        if (e.Error.IsFatal) fatal.Cancel();
                        inFlight.Release();
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
            // Every outstanding record is reported before the producer goes: acknowledged, or failed at its timeout.
            await Task.Run(() => producer.Flush(TimeSpan.FromSeconds(120)));
            if (fatal.IsCancellationRequested) Interlocked.Increment(ref _fatal);
        }
    }

    /// <summary>The final check's reader: assigned partitions only (its group is never joined), end of partition reported.</summary>
    internal static IConsumer<Ignore, string> Reader(string bootstrap, IsolationLevel isolation) => new ConsumerBuilder<Ignore, string>(new ConsumerConfig
    {
        BootstrapServers = bootstrap,
        GroupId = "unused-" + Guid.NewGuid().ToString("N"),
        EnableAutoCommit = false,
        EnablePartitionEof = true,
        AutoOffsetReset = AutoOffsetReset.Error,
        IsolationLevel = isolation,
    }).SetLogHandler((_, _) => { }).Build();

    /// <summary>Reads every partition from offset 0 to its high watermark into the history.</summary>
    public void ReadAll(TimeSpan timeout)
    {
        using var consumer = Reader(bootstrap, IsolationLevel.ReadUncommitted);
        for (var p = 0; p < partitions; p++)
        {
            var partition = new TopicPartition(topic, p);
            var high = consumer.QueryWatermarkOffsets(partition, TimeSpan.FromSeconds(15)).High.Value;
            var records = new List<FaultHistory.Read>();
            consumer.Assign(new TopicPartitionOffset(partition, Offset.Beginning));
            var next = 0L;
            Eventually.True(() =>
            {
                while (next < high && consumer.Consume(TimeSpan.FromMilliseconds(200)) is { } r)
                {
                    if (r.IsPartitionEOF) continue;
                    records.Add(new FaultHistory.Read(r.Offset.Value, r.Message.Value));
                    next = r.Offset.Value + 1;
                }
                return next >= high;
            }, timeout, $"partition {p} read up to its high watermark {high}", () => $"read up to {next}");
            history.ReadPartition(p, records);
            consumer.Unassign();
        }
    }
}
