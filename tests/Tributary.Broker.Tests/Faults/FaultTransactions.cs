using System.Collections.Concurrent;
using Confluent.Kafka;

namespace Tributary.Broker.Tests.Faults;

/// <summary>
/// The transactional part of a fault run. Each writer is a Confluent.Kafka transactional producer (one transactional
/// id per writer, kept across the producers that replace one after a fatal error, so a successor fences its
/// predecessor and the coordinator must finish whatever transaction it left open). A transaction writes a few unique
/// values (<c>t{writer}-{txn}-{i}</c>) across the partitions and then commits, or (one in five) aborts; its outcome is
/// what the client was told: committed, aborted, or unknown (the producer failed before an answer).
/// <para>
/// After healing, a read_committed consumer reads every partition to its end, and <see cref="Check"/> reports: a
/// committed value not read (lost), an aborted value read (aborted read), a transaction partly visible (torn: some of
/// its values read, others not, whatever its outcome), a value read twice (duplicated), a value no transaction wrote
/// (phantom).
/// </para>
/// </summary>
internal sealed class FaultTransactions(string bootstrap, string topic, int partitions)
{
    public enum Outcome { Committed, Aborted, Unknown }

    private static readonly TimeSpan Call = TimeSpan.FromSeconds(30);
    private readonly ConcurrentDictionary<string, (string[] Values, Outcome Outcome)> _transactions = new();
    private readonly ConcurrentDictionary<int, List<string>> _reads = new();
    private int _fatal;

    /// <summary>Producers replaced after a fatal error (a fenced or broken producer).</summary>
    public int FatalErrors => _fatal;

    public int Committed => _transactions.Values.Count(t => t.Outcome == Outcome.Committed);

    public int Aborted => _transactions.Values.Count(t => t.Outcome == Outcome.Aborted);

    public int Unknown => _transactions.Values.Count(t => t.Outcome == Outcome.Unknown);

    /// <summary>Runs one transactional writer until <paramref name="stop"/>; the transaction under way then finishes.</summary>
    public async Task WriteAsync(int writer, CancellationToken stop)
    {
        var random = new Random(writer);
        var txn = 0;
        while (!stop.IsCancellationRequested)
        {
            using var producer = new ProducerBuilder<Null, string>(new ProducerConfig
            {
                BootstrapServers = bootstrap,
                TransactionalId = $"fault-txn-{writer}",
                TransactionTimeoutMs = 20_000,
                MessageTimeoutMs = 20_000,
                RequestTimeoutMs = 5_000,
                SocketTimeoutMs = 5_000,
                LingerMs = 5,
            }).SetLogHandler((_, _) => { }).Build();
            try
            {
                await Task.Run(() => producer.InitTransactions(TimeSpan.FromSeconds(60)));
                while (!stop.IsCancellationRequested)
                {
                    var values = Enumerable.Range(0, 3 + random.Next(4)).Select(i => $"t{writer}-{txn}-{i}").ToArray();
                    var id = $"t{writer}-{txn++}";
                    var abort = random.Next(5) == 0;
                    _transactions[id] = (values, Outcome.Unknown);
                    _transactions[id] = (values, await Task.Run(() => RunOne(producer, values, abort)));
                    await Task.Delay(20, CancellationToken.None);
                }
            }
            catch (KafkaException)
            {
                // InitTransactions failed or the producer is fatally broken: a new producer (same id) takes over.
                Interlocked.Increment(ref _fatal);
                await Task.Delay(200, CancellationToken.None);
            }
        }
    }

    /// <summary>One transaction; the outcome the client was told. Throws when the producer can no longer be used.</summary>
    private Outcome RunOne(IProducer<Null, string> producer, string[] values, bool abort)
    {
        producer.BeginTransaction();
        try
        {
            for (var i = 0; i < values.Length; i++)
                producer.Produce(new TopicPartition(topic, i % partitions), new Message<Null, string> { Value = values[i] });
            if (!abort)
            {
                for (var attempt = 0; ; attempt++)
                {
                    try
                    {
                        producer.CommitTransaction(Call);
                        return Outcome.Committed;
                    }
                    catch (KafkaRetriableException) when (attempt < 5)
                    {
                        // librdkafka: the commit may be retried with the same call.
                    }
                }
            }
        }
        catch (KafkaTxnRequiresAbortException)
        {
            // Abortable: abort below.
        }
        catch (KafkaRetriableException)
        {
            // Commit kept failing: abort below, which decides it.
        }
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                producer.AbortTransaction(Call);
                return Outcome.Aborted;
            }
            catch (KafkaRetriableException) when (attempt < 5)
            {
            }
        }
    }

    /// <summary>Reads every partition with read_committed from the beginning to its end.</summary>
    public void ReadAll(TimeSpan timeout)
    {
        using var consumer = FaultWorkload.Reader(bootstrap, IsolationLevel.ReadCommitted);
        for (var p = 0; p < partitions; p++)
        {
            var partition = new TopicPartition(topic, p);
            var high = consumer.QueryWatermarkOffsets(partition, TimeSpan.FromSeconds(15)).High.Value;
            var values = new List<string>();
            consumer.Assign(new TopicPartitionOffset(partition, Offset.Beginning));
            var end = -1L;
            // read_committed ends at the last stable offset, which reaches the high watermark once every transaction
            // ended (the writers stopped; a transaction a fenced producer left open is aborted by its successor).
            Eventually.True(() =>
            {
                while (end < high && consumer.Consume(TimeSpan.FromMilliseconds(200)) is { } r)
                {
                    if (r.IsPartitionEOF) end = r.Offset.Value;
                    else values.Add(r.Message.Value);
                }
                return end >= high;
            }, timeout, $"read_committed of {topic}-{p} up to its high watermark {high}", () => $"at end {end}, {values.Count} values");
            _reads[p] = values;
            consumer.Unassign();
        }
    }

    /// <summary>The anomalies found; each one line.</summary>
    public List<string> Check()
    {
        var anomalies = new List<string>();
        var read = new Dictionary<string, int>();
        foreach (var value in _reads.Values.SelectMany(v => v)) read[value] = read.GetValueOrDefault(value) + 1;
        var written = new HashSet<string>(_transactions.Values.SelectMany(t => t.Values));
        foreach (var (value, count) in read)
        {
            if (count > 1) anomalies.Add($"duplicated: {value} read {count} times");
            if (!written.Contains(value)) anomalies.Add($"phantom: {value}");
        }
        foreach (var (id, (values, outcome)) in _transactions.OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            var visible = values.Count(read.ContainsKey);
            if (visible > 0 && visible < values.Length) anomalies.Add($"torn: {id} ({outcome}) shows {visible} of {values.Length} values");
            else if (outcome == Outcome.Committed && visible == 0) anomalies.Add($"lost: {id} committed, none of its {values.Length} values read");
            else if (outcome == Outcome.Aborted && visible > 0) anomalies.Add($"aborted read: {id} aborted, its values read");
        }
        return anomalies;
    }

    public string Summary =>
        $"transactions committed {Committed}, aborted {Aborted}, unknown {Unknown}, values read {_reads.Values.Sum(v => v.Count)}";
}
