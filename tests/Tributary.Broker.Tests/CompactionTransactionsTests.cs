using Confluent.Kafka;
using Tributary.Storage.Cleaning;

namespace Tributary.Broker.Tests;

/// <summary>
/// A transactional producer (librdkafka) commits and aborts into a compacted topic; after the cleaner has run,
/// read_committed and read_uncommitted consumers both see exactly the latest committed value per key, and the
/// producer carries on transacting.
/// </summary>
public sealed class CompactionTransactionsTests : IAsyncLifetime
{
    private const string Topic = "txn-changelog";
    private TributaryServer _server = null!;
    private readonly BrokerFixtureLite _client = new();

    public async Task InitializeAsync()
    {
        // The background cleaner is off: the test cleans when it chooses.
        _server = await TributaryServer.StartEphemeralAsync(settings: new Dictionary<string, string> { ["log.cleaner.enable"] = "false" });
        _client.Bootstrap = _server.BootstrapServers;
    }

    public async Task DisposeAsync() => await _server.StopAsync();

    [Fact]
    public async Task Committed_and_aborted_transactions_compact_to_the_latest_committed_value_per_key()
    {
        await _client.CreateTopicAsync(Topic, new()
        {
            ["cleanup.policy"] = "compact",
            ["segment.bytes"] = "2048",
            ["delete.retention.ms"] = "0",
        });
        int[] abortedRounds = [2, 5, 8, 10];
        var latest = new Dictionary<string, (long Offset, string Value)>();
        using var producer = TransactionsTests.TxnProducer(_client.Bootstrap, "compacting-txn");
        producer.InitTransactions(TimeSpan.FromSeconds(30));
        for (int round = 0; round <= 10; round++)
        {
            producer.BeginTransaction();
            var written = new List<(string Key, long Offset, string Value)>();
            for (int k = 0; k < 10; k++)
            {
                string value = $"{round}-k{k}";
                var report = await producer.ProduceAsync(Topic, new Message<string, string> { Key = $"k{k}", Value = value });
                written.Add(($"k{k}", report.Offset.Value, value));
            }

            if (abortedRounds.Contains(round))
            {
                producer.AbortTransaction(TimeSpan.FromSeconds(30));
            }
            else
            {
                producer.CommitTransaction(TimeSpan.FromSeconds(30));
                foreach (var (key, offset, value) in written)
                {
                    latest[key] = (offset, value);
                }
            }
        }

        // Non-transactional filler rolls the segments, so every transaction above lies in closed, stable segments.
        using (var plain = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = _client.Bootstrap }).Build())
        {
            for (int i = 0; i < 40; i++)
            {
                await plain.ProduceAsync(Topic, new Message<string, string> { Key = "filler", Value = new string('f', 100) });
            }
        }

        var log = _server.State.Topics.GetPartition(Topic, 0)!;
        using var cleaner = new LogCleaner(() => [log], new CleanerOptions(), TimeProvider.System);
        long sizeBefore = log.SizeInBytes;
        Assert.True(cleaner.Clean(log).Cleaned);
        // Two more passes: markers without data get their delete horizon (delete.retention.ms=0), then go.
        cleaner.Clean(log);
        cleaner.Clean(log);
        Assert.True(log.SizeInBytes < sizeBefore / 2, $"{log.SizeInBytes} of {sizeBefore}");

        var expected = latest.Values.Select(v => v.Value).Order().ToList();
        Assert.Equal(Enumerable.Range(0, 10).Select(k => $"9-k{k}").Order(), expected);
        foreach (var isolation in new[] { IsolationLevel.ReadCommitted, IsolationLevel.ReadUncommitted })
        {
            var values = TransactionsTests.ReadValues(_client.Bootstrap, Topic, 1, isolation, TimeSpan.FromSeconds(1));
            Assert.Equal(expected, values.Where(v => !v.StartsWith('f')).Order().ToList());
        }

        var offsets = ReadOffsets();
        Assert.All(latest, kv => Assert.Equal(kv.Value.Offset, offsets[kv.Key]));

        // The producer's state survived the rewrite: it goes on committing with its epoch and sequences.
        producer.BeginTransaction();
        await producer.ProduceAsync(Topic, new Message<string, string> { Key = "k0", Value = "11-k0" });
        producer.CommitTransaction(TimeSpan.FromSeconds(30));
        var after = TransactionsTests.ReadValues(_client.Bootstrap, Topic, 1, IsolationLevel.ReadCommitted, TimeSpan.FromSeconds(1));
        Assert.Contains("11-k0", after);
    }

    /// <summary>Key → offset of each record read (read_uncommitted), the last one per key winning.</summary>
    private Dictionary<string, long> ReadOffsets()
    {
        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = _client.Bootstrap,
            GroupId = "offsets-" + Guid.NewGuid().ToString("N"),
            EnableAutoCommit = false,
            EnablePartitionEof = true,
        }).Build();
        consumer.Assign(new TopicPartitionOffset(Topic, 0, Offset.Beginning));
        var offsets = new Dictionary<string, long>();
        var ended = false;
        Eventually.True(() =>
        {
            for (var r = consumer.Consume(TimeSpan.FromMilliseconds(200)); r is not null && !ended; r = ended ? null : consumer.Consume(TimeSpan.FromMilliseconds(200)))
            {
                if (r.IsPartitionEOF) ended = true;
                else offsets[r.Message.Key] = r.Offset.Value;
            }

            return ended;
        }, TimeSpan.FromSeconds(30), $"the end of {Topic}", () => $"{offsets.Count} keys read");
        return offsets;
    }
}
