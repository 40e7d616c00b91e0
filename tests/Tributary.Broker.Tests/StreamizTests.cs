using Confluent.Kafka;
using Microsoft.Extensions.Logging;
using Streamiz.Kafka.Net;
using Streamiz.Kafka.Net.SerDes;
using Streamiz.Kafka.Net.Table;

namespace Tributary.Broker.Tests;

/// <summary>
/// Streamiz.Kafka.Net (a Kafka Streams port) as a second real-world exactly-once client: a filter, a map, a re-key
/// through a repartition topic and a count backed by a changelog topic, all under exactly_once_v2 (one transactional
/// producer per thread, input offsets committed with SendOffsetsToTransaction).
/// </summary>
[Trait("Category", "Slow")]
public sealed class StreamizTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private static readonly string[] Words = ["apple", "pear", "plum", "fig", "kiwi"];

    // Set to 1 to make the topology throw once on the record "boom": the stream thread dies mid-transaction, as a
    // crashing application would.
    private int _boomArmed;

    private KafkaStream StartApp(string applicationId, string input, string output, string stateDir)
    {
        var config = new StreamConfig<StringSerDes, StringSerDes>
        {
            ApplicationId = applicationId,
            BootstrapServers = broker.Bootstrap,
            Guarantee = ProcessingGuarantee.EXACTLY_ONCE,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            CommitIntervalMs = 100,
            NumStreamThreads = 1,
            StateDir = stateDir,
            Logger = LoggerFactory.Create(b => b.AddConsole().SetMinimumLevel(Microsoft.Extensions.Logging.LogLevel.Warning)),
        };
        var builder = new StreamBuilder();
        builder.Stream<string, string>(input)
            .Filter((_, v, _) => v != "drop")
            .MapValues((v, _) =>
            {
                if (v == "boom" && Interlocked.Exchange(ref _boomArmed, 0) == 1) throw new InvalidOperationException("injected crash");
                return v.ToUpperInvariant();
            })
            .GroupBy((_, v, _) => v)
            .Count(InMemory.As<string, long>("word-counts"))
            .ToStream()
            .To<StringSerDes, Int64SerDes>(output);
        var stream = new KafkaStream(builder.Build(), config);
        return stream;
    }

    /// <summary>Every count update for every word, in output order, as a read_committed consumer sees them.</summary>
    private Dictionary<string, List<long>> ReadCounts(string topic, int partitions)
    {
        using var consumer = new ConsumerBuilder<string, byte[]>(new ConsumerConfig
        {
            BootstrapServers = broker.Bootstrap,
            GroupId = "reader-" + Guid.NewGuid().ToString("N"),
            EnableAutoCommit = false,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            IsolationLevel = IsolationLevel.ReadCommitted,
            EnablePartitionEof = true,
        }).Build();
        consumer.Assign(Enumerable.Range(0, partitions).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
        var serdes = new Int64SerDes();
        var counts = new Dictionary<string, List<long>>();
        var eofs = new HashSet<int>();
        Eventually.True(() =>
        {
            for (var r = consumer.Consume(TimeSpan.FromMilliseconds(100)); r is not null && eofs.Count < partitions; r = eofs.Count < partitions ? consumer.Consume(TimeSpan.FromMilliseconds(100)) : null)
            {
                if (r.IsPartitionEOF)
                {
                    eofs.Add(r.Partition.Value);
                    continue;
                }
                var value = serdes.Deserialize(r.Message.Value, new SerializationContext(MessageComponentType.Value, topic));
                if (!counts.TryGetValue(r.Message.Key, out var list)) counts[r.Message.Key] = list = [];
                list.Add(value);
            }
            return eofs.Count == partitions;
        }, TimeSpan.FromSeconds(30), $"the end of all {partitions} partitions of {topic}", () => $"{eofs.Count} ends reached");
        return counts;
    }

    /// <summary>Produces records [from, to) and adds each counted word to <paramref name="expected"/>.</summary>
    private static void ProduceInput(IProducer<string, string> producer, string topic, int from, int to, Dictionary<string, long> expected, int boomAt = -1)
    {
        for (var i = from; i < to; i++)
        {
            // Every seventh record is filtered out by the topology; the rest cycle through the words.
            var word = i == boomAt ? "boom" : i % 7 == 0 ? "drop" : Words[i % Words.Length];
            producer.Produce(topic, new Message<string, string> { Key = "user-" + (i % 11), Value = word });
            if (word != "drop") expected[word.ToUpperInvariant()] = expected.GetValueOrDefault(word.ToUpperInvariant()) + 1;
        }
        producer.Flush(TimeSpan.FromSeconds(30));
    }

    /// <summary>Waits until the committed output's latest count of every word equals the expected count.</summary>
    private Dictionary<string, List<long>> AwaitCounts(string output, int partitions, Dictionary<string, long> expected, TimeSpan timeout)
    {
        var want = string.Join(", ", expected.Select(e => $"{e.Key}={e.Value}"));
        return Eventually.Value(() => ReadCounts(output, partitions),
            counts => expected.All(e => counts.TryGetValue(e.Key, out var list) && list.Count > 0 && list[^1] == e.Value),
            timeout, $"output counts [{want}]", counts => "[" + string.Join(", ", counts.Select(c => $"{c.Key}={c.Value[^1]}")) + "]");
    }

    /// <summary>
    /// Without caching every input record yields one count update; exactly-once means the committed output holds
    /// 1, 2, …, N for each word: no update lost, none repeated, even across a restart of the application.
    /// </summary>
    private static void AssertExactSequences(Dictionary<string, List<long>> counts, Dictionary<string, long> expected)
    {
        Assert.Equal(expected.Keys.Order(), counts.Keys.Order());
        foreach (var (word, n) in expected)
            Assert.True(counts[word].SequenceEqual(Enumerable.Range(1, (int)n).Select(i => (long)i)),
                $"{word}: [{string.Join(",", counts[word])}], expected 1..{n}");
    }

    [Fact]
    public async Task CountsAreExactUnderExactlyOnceAcrossARestart()
    {
        const string input = "sz-words", output = "sz-counts", app = "sz-word-count";
        await broker.CreateTopicAsync(input, partitions: 3);
        await broker.CreateTopicAsync(output, partitions: 2);
        var stateDir = Path.Combine(Path.GetTempPath(), "tributary-streamiz-" + Guid.NewGuid().ToString("N"));
        var expected = new Dictionary<string, long>();
        using var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = broker.Bootstrap, LingerMs = 5 }).Build();
        try
        {
            var first = StartApp(app, input, output, stateDir);
            await first.StartAsync();
            ProduceInput(producer, input, 0, 300, expected);
            AwaitCounts(output, 2, expected, TimeSpan.FromSeconds(90));

            // Crash mid-stream: the topology throws on a record in the middle of the next input, after it has already
            // produced (uncommitted) updates in that transaction; more input arrives while the application is gone.
            Volatile.Write(ref _boomArmed, 1);
            ProduceInput(producer, input, 300, 450, expected, boomAt: 420);
            await Eventually.TrueAsync(() => Volatile.Read(ref _boomArmed) == 0, TimeSpan.FromSeconds(60), "the topology to throw on the armed record");
            first.Dispose();
            ProduceInput(producer, input, 450, 600, expected);

            // Start again with the same application id. The counts live in an in-memory store, so the new instance
            // restores them from the changelog topic, reading committed records only.
            var second = StartApp(app, input, output, stateDir);
            try
            {
                await second.StartAsync();
                ProduceInput(producer, input, 600, 700, expected);
                var counts = AwaitCounts(output, 2, expected, TimeSpan.FromSeconds(90));
                AssertExactSequences(counts, expected);
                // Both instances wrote through transactional producers of their own (exactly_once_v2 names them after
                // the application id and a per-instance process id).
                var txns = await broker.Server.Transactions.DescribeAsync(null);
                Assert.True(txns.Count(t => t.TransactionalId.StartsWith(app, StringComparison.Ordinal)) >= 2,
                    "transactional ids: " + string.Join(", ", txns.Select(t => t.TransactionalId)));
            }
            finally
            {
                second.Dispose();
            }
        }
        finally
        {
            if (Directory.Exists(stateDir)) Directory.Delete(stateDir, recursive: true);
        }
    }
}
