using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;

namespace Tributary.Broker.Tests;

/// <summary>Transactions through Confluent.Kafka (librdkafka): commit, abort, LSO, fencing, offsets in transactions.</summary>
public sealed class TransactionsTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    internal static IProducer<string, string> TxnProducer(string bootstrap, string transactionalId, int timeoutMs = 60_000) =>
        new ProducerBuilder<string, string>(new ProducerConfig
        {
            BootstrapServers = bootstrap,
            TransactionalId = transactionalId,
            TransactionTimeoutMs = timeoutMs,
            LingerMs = 2,
        }).Build();

    internal static List<string> ReadValues(string bootstrap, string topic, int partitions, IsolationLevel isolation, TimeSpan quiet)
    {
        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = "reader-" + Guid.NewGuid().ToString("N"),
            EnableAutoCommit = false,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            IsolationLevel = isolation,
            EnablePartitionEof = true,
        }).Build();
        consumer.Assign(Enumerable.Range(0, partitions).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
        var values = new List<string>();
        var eofs = new HashSet<int>();
        // Read for at least `quiet`, and on until every partition has reported its end (a slow, loaded machine may
        // take longer than `quiet` just to connect), within a bounded overall wait.
        var quietUntil = DateTime.UtcNow + quiet;
        var deadline = DateTime.UtcNow + quiet + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < deadline && (DateTime.UtcNow < quietUntil || eofs.Count < partitions))
        {
            var r = consumer.Consume(TimeSpan.FromMilliseconds(100));
            if (r is null) continue;
            if (r.IsPartitionEOF)
            {
                eofs.Add(r.Partition.Value);
                continue;
            }
            values.Add(r.Message.Value);
        }
        return values;
    }

    private static void Send(IProducer<string, string> producer, string topic, string prefix, int count)
    {
        for (var i = 0; i < count; i++) producer.Produce(topic, new Message<string, string> { Key = "k" + (i % 3), Value = $"{prefix}-{i}" });
        producer.Flush(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task ReadCommittedSeesCommittedOnlyAndReadUncommittedSeesAll()
    {
        await broker.CreateTopicAsync("txn-basic", partitions: 2);
        using (var producer = TxnProducer(broker.Bootstrap, "txn-basic"))
        {
            producer.InitTransactions(TimeSpan.FromSeconds(30));
            producer.BeginTransaction();
            Send(producer, "txn-basic", "c1", 10);
            producer.CommitTransaction(TimeSpan.FromSeconds(30));
            producer.BeginTransaction();
            Send(producer, "txn-basic", "a", 10);
            producer.AbortTransaction(TimeSpan.FromSeconds(30));
            producer.BeginTransaction();
            Send(producer, "txn-basic", "c2", 5);
            producer.CommitTransaction(TimeSpan.FromSeconds(30));
        }
        var committed = ReadValues(broker.Bootstrap, "txn-basic", 2, IsolationLevel.ReadCommitted, TimeSpan.FromSeconds(3));
        Assert.Equal(15, committed.Count);
        Assert.DoesNotContain(committed, v => v.StartsWith("a-", StringComparison.Ordinal));
        var all = ReadValues(broker.Bootstrap, "txn-basic", 2, IsolationLevel.ReadUncommitted, TimeSpan.FromSeconds(3));
        Assert.Equal(25, all.Count);
        var log = broker.Server.State.Topics.GetPartition("txn-basic", 0)!;
        Assert.Equal(log.HighWatermark, log.LastStableOffset);
        Assert.NotEmpty(log.AbortedTransactions(0, long.MaxValue).Concat(broker.Server.State.Topics.GetPartition("txn-basic", 1)!.AbortedTransactions(0, long.MaxValue)));
    }

    [Fact]
    public async Task LastStableOffsetHoldsBackWhileATransactionIsOpen()
    {
        await broker.CreateTopicAsync("txn-lso");
        using var producer = TxnProducer(broker.Bootstrap, "txn-lso");
        producer.InitTransactions(TimeSpan.FromSeconds(30));
        producer.BeginTransaction();
        Send(producer, "txn-lso", "open", 5);
        using (var plain = broker.Producer()) // a non-transactional write after the open transaction
        {
            plain.Produce("txn-lso", new Message<byte[]?, byte[]?> { Value = Encoding.UTF8.GetBytes("plain") });
            plain.Flush(TimeSpan.FromSeconds(10));
        }
        var log = broker.Server.State.Topics.GetPartition("txn-lso", 0)!;
        Assert.Equal(0, log.LastStableOffset);
        Assert.Equal(6, log.HighWatermark);
        Assert.Empty(ReadValues(broker.Bootstrap, "txn-lso", 1, IsolationLevel.ReadCommitted, TimeSpan.FromSeconds(2)));
        using (var admin = broker.Admin())
        {
            var offsets = await admin.ListOffsetsAsync([new TopicPartitionOffsetSpec { TopicPartition = new TopicPartition("txn-lso", 0), OffsetSpec = OffsetSpec.Latest() }],
                new ListOffsetsOptions { IsolationLevel = IsolationLevel.ReadCommitted });
            Assert.Equal(0, offsets.ResultInfos[0].TopicPartitionOffsetError.Offset.Value);
            // A timestamp lookup only answers with offsets the asker could fetch.
            async Task<long> ByTimestamp(IsolationLevel isolation) =>
                (await admin.ListOffsetsAsync([new TopicPartitionOffsetSpec { TopicPartition = new TopicPartition("txn-lso", 0), OffsetSpec = OffsetSpec.ForTimestamp(0) }],
                    new ListOffsetsOptions { IsolationLevel = isolation })).ResultInfos[0].TopicPartitionOffsetError.Offset.Value;
            Assert.Equal(-1, await ByTimestamp(IsolationLevel.ReadCommitted));
            Assert.Equal(0, await ByTimestamp(IsolationLevel.ReadUncommitted));
        }
        producer.CommitTransaction(TimeSpan.FromSeconds(30));
        Assert.Equal(7, log.LastStableOffset);
        Assert.Equal(6, ReadValues(broker.Bootstrap, "txn-lso", 1, IsolationLevel.ReadCommitted, TimeSpan.FromSeconds(2)).Count);
    }

    [Fact]
    public async Task AZombieIsFencedByItsSuccessor()
    {
        await broker.CreateTopicAsync("txn-zombie");
        using var zombie = TxnProducer(broker.Bootstrap, "txn-zombie");
        zombie.InitTransactions(TimeSpan.FromSeconds(30));
        zombie.BeginTransaction();
        Send(zombie, "txn-zombie", "zombie", 3);

        using var successor = TxnProducer(broker.Bootstrap, "txn-zombie");
        successor.InitTransactions(TimeSpan.FromSeconds(30)); // aborts the zombie's open transaction
        successor.BeginTransaction();
        Send(successor, "txn-zombie", "successor", 2);
        successor.CommitTransaction(TimeSpan.FromSeconds(30));

        var failed = false;
        try
        {
            zombie.Produce("txn-zombie", new Message<string, string> { Key = "z", Value = "zombie-late" });
            zombie.Flush(TimeSpan.FromSeconds(10));
            zombie.CommitTransaction(TimeSpan.FromSeconds(10));
        }
        catch (KafkaException)
        {
            failed = true;
        }
        Assert.True(failed, "the zombie committed after being fenced");
        var values = ReadValues(broker.Bootstrap, "txn-zombie", 1, IsolationLevel.ReadCommitted, TimeSpan.FromSeconds(2));
        Assert.Equal(["successor-0", "successor-1"], values);
    }

    [Fact]
    public async Task OffsetsSentToACommittedTransactionAreCommittedAndToAnAbortedOneAreNot()
    {
        await broker.CreateTopicAsync("txn-in");
        await broker.CreateTopicAsync("txn-out");
        using (var plain = broker.Producer())
        {
            for (var i = 0; i < 10; i++) plain.Produce("txn-in", new Message<byte[]?, byte[]?> { Value = Encoding.UTF8.GetBytes("in-" + i) });
            plain.Flush(TimeSpan.FromSeconds(10));
        }
        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = broker.Bootstrap,
            GroupId = "txn-ctp",
            EnableAutoCommit = false,
            AutoOffsetReset = AutoOffsetReset.Earliest,
        }).Build();
        consumer.Subscribe("txn-in");
        using var producer = TxnProducer(broker.Bootstrap, "txn-ctp");
        producer.InitTransactions(TimeSpan.FromSeconds(30));

        var read = new List<ConsumeResult<string, string>>();
        Eventually.True(() =>
        {
            while (read.Count < 6 && consumer.Consume(TimeSpan.FromMilliseconds(200)) is { } r) read.Add(r);
            return read.Count == 6;
        }, TimeSpan.FromSeconds(30), "six input records", () => $"{read.Count} read");

        producer.BeginTransaction();
        foreach (var r in read.Take(4)) producer.Produce("txn-out", new Message<string, string> { Value = "out-" + r.Message.Value });
        producer.SendOffsetsToTransaction([new TopicPartitionOffset("txn-in", 0, read[3].Offset + 1)], consumer.ConsumerGroupMetadata, TimeSpan.FromSeconds(30));
        producer.CommitTransaction(TimeSpan.FromSeconds(30));

        producer.BeginTransaction();
        foreach (var r in read.Skip(4)) producer.Produce("txn-out", new Message<string, string> { Value = "out-" + r.Message.Value });
        producer.SendOffsetsToTransaction([new TopicPartitionOffset("txn-in", 0, read[5].Offset + 1)], consumer.ConsumerGroupMetadata, TimeSpan.FromSeconds(30));
        producer.AbortTransaction(TimeSpan.FromSeconds(30));

        var committed = consumer.Committed([new TopicPartition("txn-in", 0)], TimeSpan.FromSeconds(10));
        Assert.Equal(4, committed[0].Offset.Value);
        Assert.Equal(4, ReadValues(broker.Bootstrap, "txn-out", 1, IsolationLevel.ReadCommitted, TimeSpan.FromSeconds(2)).Count);
        consumer.Close();
    }

    [Fact]
    public async Task AZombieConsumersOffsetsAreRefused()
    {
        await broker.CreateTopicAsync("txn-kip447");
        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = broker.Bootstrap,
            GroupId = "txn-kip447",
            AutoOffsetReset = AutoOffsetReset.Earliest,
        }).Build();
        consumer.Subscribe("txn-kip447");
        Eventually.True(() =>
        {
            consumer.Consume(TimeSpan.FromMilliseconds(100));
            return consumer.Assignment.Count > 0;
        }, TimeSpan.FromSeconds(30), "the consumer's partition assignment");

        await using var raw = await RawKafkaClient.ConnectAsync(broker.Bootstrap);
        var (pid, epoch) = await IdempotenceTests.InitAsync(raw, 3, "txn-kip447");
        var added = await raw.SendAsync<Tributary.Protocol.Messages.AddOffsetsToTxnResponse>(new Tributary.Protocol.Messages.AddOffsetsToTxnRequest
        {
            TransactionalId = "txn-kip447",
            ProducerId = pid,
            ProducerEpoch = epoch,
            GroupId = "txn-kip447",
        }, 3);
        Assert.Equal(0, added.ErrorCode);
        Tributary.Protocol.Messages.TxnOffsetCommitRequest Commit(string member, int generation) => new()
        {
            TransactionalId = "txn-kip447",
            GroupId = "txn-kip447",
            ProducerId = pid,
            ProducerEpoch = epoch,
            MemberId = member,
            GenerationId = generation,
            Topics = [new() { Name = "txn-kip447", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 1 }] }],
        };
        var zombie = await raw.SendAsync<Tributary.Protocol.Messages.TxnOffsetCommitResponse>(Commit("zombie-member", 1), 3);
        Assert.Equal((short)Tributary.Protocol.Messages.ErrorCode.UnknownMemberId, zombie.Topics[0].Partitions[0].ErrorCode);
        var standalone = await raw.SendAsync<Tributary.Protocol.Messages.TxnOffsetCommitResponse>(Commit("", -1), 3);
        Assert.Equal(0, standalone.Topics[0].Partitions[0].ErrorCode);
        consumer.Close();
    }

    [Fact]
    public async Task OperatorsCanListAndDescribeTransactions()
    {
        await broker.CreateTopicAsync("txn-admin");
        using var producer = TxnProducer(broker.Bootstrap, "txn-admin");
        producer.InitTransactions(TimeSpan.FromSeconds(30));
        producer.BeginTransaction();
        Send(producer, "txn-admin", "x", 2);
        await using var raw = await RawKafkaClient.ConnectAsync(broker.Bootstrap);
        var listed = await raw.SendAsync<Tributary.Protocol.Messages.ListTransactionsResponse>(
            new Tributary.Protocol.Messages.ListTransactionsRequest { StateFilters = ["Ongoing", "Bogus", "1", "Ongoing,Empty"] }, 1);
        Assert.Contains(listed.TransactionStates, t => t.TransactionalId == "txn-admin" && t.TransactionState == "Ongoing");
        Assert.Equal(["Bogus", "1", "Ongoing,Empty"], listed.UnknownStateFilters); // only exact state names filter
        var longRunning = await raw.SendAsync<Tributary.Protocol.Messages.ListTransactionsResponse>(
            new Tributary.Protocol.Messages.ListTransactionsRequest { DurationFilter = 3_600_000 }, 1);
        Assert.DoesNotContain(longRunning.TransactionStates, t => t.TransactionalId == "txn-admin"); // open for less than an hour
        var described = await raw.SendAsync<Tributary.Protocol.Messages.DescribeTransactionsResponse>(
            new Tributary.Protocol.Messages.DescribeTransactionsRequest { TransactionalIds = ["txn-admin", "nope"] }, 0);
        Assert.Equal("Ongoing", described.TransactionStates[0].TransactionState);
        Assert.Contains(described.TransactionStates[0].Topics, t => t.Topic == "txn-admin");
        Assert.Equal((short)Tributary.Protocol.Messages.ErrorCode.TransactionalIdNotFound, described.TransactionStates[1].ErrorCode);
        var started = described.TransactionStates[0].TransactionStartTimeMs;
        Assert.True(started > 0);
        producer.CommitTransaction(TimeSpan.FromSeconds(30));
        // A completed transaction still reports when it began, as Kafka's DescribeTransactions does.
        var completed = (await raw.SendAsync<Tributary.Protocol.Messages.DescribeTransactionsResponse>(
            new Tributary.Protocol.Messages.DescribeTransactionsRequest { TransactionalIds = ["txn-admin"] }, 0)).TransactionStates.Single();
        Assert.Equal(("CompleteCommit", started), (completed.TransactionState, completed.TransactionStartTimeMs));
    }
}
