using System.Collections.Concurrent;
using Confluent.Kafka;

namespace Tributary.Broker.Tests.Faults;

/// <summary>
/// A consumer group through a fault run: one member subscribes to a topic, reads on, and commits its position
/// synchronously every few records. After each commit that succeeded it reads the group's committed offsets back, and
/// at the end once more. A member that only moves forward never commits less than before, so a committed offset that
/// is read back lower than one acknowledged earlier is a commit the group coordinator lost (its partition moved to
/// another broker that did not have it). A commit that failed is indeterminate and raises no floor.
/// </summary>
internal sealed class FaultGroupCommits(string bootstrap, string topic, int partitions)
{
    private const string Group = "fault-group";
    private readonly ConcurrentQueue<string> _anomalies = new();
    private readonly long[] _floor = Enumerable.Repeat(-1L, partitions).ToArray();
    private int _commits;
    private int _failedCommits;
    private int _checks;

    public IEnumerable<string> Anomalies => _anomalies;

    public string Summary => $"group commits acknowledged {_commits}, failed {_failedCommits}, read back {_checks} times";

    /// <summary>Consumes and commits until <paramref name="stop"/>.</summary>
    public void Run(CancellationToken stop)
    {
        using var consumer = Build();
        consumer.Subscribe(topic);
        var sinceCommit = 0;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                if (consumer.Consume(TimeSpan.FromMilliseconds(100)) is not null) sinceCommit++;
                if (sinceCommit < 50) continue;
                sinceCommit = 0;
                List<TopicPartitionOffset> committed;
                try
                {
                    committed = consumer.Commit();
                }
                catch (KafkaException)
                {
                    Interlocked.Increment(ref _failedCommits); // indeterminate: no floor
                    continue;
                }
                Interlocked.Increment(ref _commits);
                foreach (var c in committed.Where(c => c.Offset.Value >= 0))
                    lock (_floor) _floor[c.Partition.Value] = Math.Max(_floor[c.Partition.Value], c.Offset.Value);
                CheckCommitted(consumer, TimeSpan.FromSeconds(10));
            }
            catch (ConsumeException)
            {
                // Brokers come and go; the member carries on.
            }
            catch (KafkaException)
            {
                // Reading the committed offsets back timed out during a fault: checked next time.
            }
        }
        consumer.Close();
    }

    /// <summary>The last check, after healing, with a fresh client: every acknowledged commit is still there.</summary>
    public void CheckFinal(TimeSpan timeout)
    {
        using var consumer = Build();
        CheckCommitted(consumer, timeout);
    }

    private IConsumer<Ignore, string> Build() => new ConsumerBuilder<Ignore, string>(new ConsumerConfig
    {
        BootstrapServers = bootstrap,
        GroupId = Group,
        EnableAutoCommit = false,
        AutoOffsetReset = AutoOffsetReset.Earliest,
        SessionTimeoutMs = 10_000,
    }).SetLogHandler((_, _) => { }).Build();

    private void CheckCommitted(IConsumer<Ignore, string> consumer, TimeSpan timeout)
    {
        var read = consumer.Committed(Enumerable.Range(0, partitions).Select(p => new TopicPartition(topic, p)), timeout);
        Interlocked.Increment(ref _checks);
        foreach (var c in read)
        {
            long floor;
            lock (_floor) floor = _floor[c.Partition.Value];
            if (floor >= 0 && c.Offset.Value < floor)
                _anomalies.Enqueue($"commit went backwards: {topic}-{c.Partition.Value} committed {floor} was acknowledged, {c.Offset.Value} read back");
        }
    }
}
