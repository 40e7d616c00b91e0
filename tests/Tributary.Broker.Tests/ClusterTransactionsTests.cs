using Confluent.Kafka;
using Tributary.Broker.Groups;
using Tributary.Broker.Transactions;
using Tributary.Server;
using Tributary.Testing;
using static Tributary.Broker.Tests.ClusterTestKit;

namespace Tributary.Broker.Tests;

/// <summary>
/// Exactly-once consume-transform-produce on three in-process brokers (one etcd child process) with Confluent.Kafka,
/// where the group's coordinator and the transaction's coordinator are on different brokers: TxnOffsetCommit goes to
/// the group's coordinator, which writes the offsets to <c>__consumer_offsets</c> as the producer's transactional batch,
/// and the transaction coordinator's marker, written there by that partition's leader, commits or drops them (KIP-98).
/// </summary>
[Trait("Category", "Cluster")]
public sealed class ClusterTransactionsTests
{
    private const int Batch = 4;
    private const int Inputs = 24;
    private static readonly TimeSpan Timeout = ClusterTestKit.Timeout;

    private static readonly Dictionary<string, string> Settings = ClusterTestKit.Settings(
        ("offsets.topic.num.partitions", "6"), ("transaction.state.log.num.partitions", "6"));

    [Fact]
    public async Task OffsetsSentToTransactionsCommitWithThemWhenTheGroupAndTransactionCoordinatorsAreOnDifferentBrokers()
    {
        await using var cluster = await TributaryCluster.StartAsync(3, Settings);
        await CreateAsync(cluster, "ctp-in", 1, 3);
        await CreateAsync(cluster, "ctp-out", 1, 3);
        var (group, groupCoordinator, transactionalId, transactionCoordinator) = await CoordinatorsApartAsync(cluster);
        Assert.NotEqual(groupCoordinator, transactionCoordinator);

        using (var plain = Producer(cluster))
        {
            for (var i = 0; i < Inputs; i++) plain.Produce("ctp-in", new Message<string, string> { Key = "k", Value = "in-" + i });
            Assert.Equal(0, plain.Flush(Timeout));
        }

        using var checker = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = cluster.BootstrapServers, GroupId = group }).Build();
        using (var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = cluster.BootstrapServers,
            GroupId = group,
            EnableAutoCommit = false,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            IsolationLevel = IsolationLevel.ReadCommitted,
        }).Build())
        using (var producer = TransactionsTests.TxnProducer(cluster.BootstrapServers, transactionalId))
        {
            consumer.Subscribe("ctp-in");
            producer.InitTransactions(Timeout);
            var committed = 0L;
            var aborted = false;
            var transactions = 0;
            while (committed < Inputs)
            {
                var read = ReadBatch(consumer, committed);
                producer.BeginTransaction();
                foreach (var r in read) producer.Produce("ctp-out", new Message<string, string> { Key = "k", Value = "out-" + r.Message.Value });
                var end = read[^1].Offset.Value + 1;
                producer.SendOffsetsToTransaction([new TopicPartitionOffset("ctp-in", 0, end)], consumer.ConsumerGroupMetadata, Timeout);
                if (!aborted && committed == 2 * Batch)
                {
                    // One transaction aborted: its output and its offsets go; its input is read again from the committed offset.
                    // Its output is flushed first, so it is in the log to be aborted (an abort purges what was not sent).
                    Assert.Equal(0, producer.Flush(Timeout));
                    producer.AbortTransaction(Timeout);
                    aborted = true;
                    Assert.Equal(committed, Committed(checker));
                    consumer.Seek(new TopicPartitionOffset("ctp-in", 0, committed));
                    continue;
                }
                producer.CommitTransaction(Timeout);
                transactions++;
                committed = end;
                Assert.Equal(committed, Committed(checker));
            }
            Assert.True(aborted);
            Assert.Equal(Inputs / Batch, transactions);
            consumer.Close();
        }

        var expected = Enumerable.Range(0, Inputs).Select(i => "out-in-" + i).ToList();
        Assert.Equal(expected, ReadToEnd(cluster, "ctp-out", IsolationLevel.ReadCommitted)); // each once, in order, none aborted
        Assert.Equal(Inputs + Batch, ReadToEnd(cluster, "ctp-out", IsolationLevel.ReadUncommitted).Count); // the aborted batch was written

        // The group's coordinator goes; the next leader of its partition rebuilds the committed offsets from the log,
        // where they are transactional records decided by markers.
        await cluster.StopBrokerAsync(groupCoordinator);
        var offsetsPartition = cluster.Brokers[0].Groups.PartitionFor(group);
        await Eventually.TrueAsync(() => cluster.Brokers[0].State.Topics.Image.Partition(GroupSettings.OffsetsTopic, offsetsPartition)!.Leader is var l
            && l >= 0 && l != groupCoordinator, Timeout, "a new leader of the group's partition");
        using var after = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = cluster.BootstrapServers, GroupId = group }).Build();
        var recovered = await Eventually.ValueAsync(() =>
        {
            try
            {
                return Committed(after, TimeSpan.FromSeconds(5));
            }
            catch (KafkaException)
            {
                return -1;
            }
        }, o => o == Inputs, Timeout, "the committed offset from the new group coordinator", o => o);
        Assert.Equal(Inputs, recovered);
    }

    /// <summary>
    /// Creates the internal topics as FindCoordinator would and picks a group and a transactional id whose partitions
    /// are led by different brokers: their coordinators.
    /// </summary>
    private static async Task<(string Group, int GroupCoordinator, string TransactionalId, int TransactionCoordinator)> CoordinatorsApartAsync(TributaryCluster cluster)
    {
        var broker = cluster.Brokers[0];
        await broker.Groups.EnsureOffsetsTopicAsync();
        await broker.Transactions.EnsureStateTopicAsync();
        foreach (var b in cluster.Brokers)
        {
            await Eventually.TrueAsync(() => b.State.Topics.Get(GroupSettings.OffsetsTopic) is { } o && o.Partitions.All(p => p.Leader >= 0)
                && b.State.Topics.Get(TransactionSettings.StateTopic) is { } s && s.Partitions.All(p => p.Leader >= 0), Timeout,
                $"broker {b.State.NodeId} sees the internal topics with their leaders");
        }
        var image = broker.State.Topics.Image;
        var group = "ctp-group";
        var groupLeader = image.Partition(GroupSettings.OffsetsTopic, broker.Groups.PartitionFor(group))!.Leader;
        var transactionalId = Enumerable.Range(0, 100).Select(i => $"ctp-txn-{i}")
            .First(id => image.Partition(TransactionSettings.StateTopic, broker.Transactions.PartitionFor(id))!.Leader != groupLeader);
        return (group, groupLeader, transactionalId, image.Partition(TransactionSettings.StateTopic, broker.Transactions.PartitionFor(transactionalId))!.Leader);
    }

    /// <summary>The next <see cref="Batch"/> records from <paramref name="from"/> on (the consumer's position).</summary>
    private static List<ConsumeResult<string, string>> ReadBatch(IConsumer<string, string> consumer, long from)
    {
        var read = new List<ConsumeResult<string, string>>();
        var deadline = DateTime.UtcNow + Timeout;
        while (read.Count < Batch && DateTime.UtcNow < deadline)
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { } r) read.Add(r);
        Assert.Equal(Enumerable.Range(0, Batch).Select(i => from + i), read.Select(r => r.Offset.Value));
        return read;
    }

    /// <summary>The group's committed offset of ctp-in-0 (librdkafka asks with require_stable under read_committed, its default).</summary>
    private static long Committed(IConsumer<Ignore, Ignore> consumer, TimeSpan? timeout = null) =>
        consumer.Committed([new TopicPartition("ctp-in", 0)], timeout ?? TimeSpan.FromSeconds(30))[0].Offset.Value;

    /// <summary>Every value of the topic's partition 0, read until the end of the log is reported.</summary>
    private static List<string> ReadToEnd(TributaryCluster cluster, string topic, IsolationLevel isolation)
    {
        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = cluster.BootstrapServers,
            GroupId = "reader-" + Guid.NewGuid().ToString("N"),
            EnableAutoCommit = false,
            IsolationLevel = isolation,
            EnablePartitionEof = true,
        }).Build();
        consumer.Assign(new TopicPartitionOffset(topic, 0, Offset.Beginning));
        var values = new List<string>();
        var deadline = DateTime.UtcNow + Timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is not { } r) continue;
            if (r.IsPartitionEOF) return values;
            values.Add(r.Message.Value);
        }
        throw new TimeoutException($"{topic} was not read to its end; {values.Count} values so far");
    }
}
