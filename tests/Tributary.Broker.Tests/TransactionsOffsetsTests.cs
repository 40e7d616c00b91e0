using System.Text.Json;
using Confluent.Kafka;

namespace Tributary.Broker.Tests;

/// <summary>
/// Where transaction markers sit in the log and what a librdkafka client sees of them: the offsets records and markers
/// take, the high watermark and last stable offset a read_committed fetch reports, a consumer's position past a final
/// marker, and offsets committed through a transaction. Applications and client test suites depend on these exact
/// numbers, so they are asserted exactly.
/// </summary>
public sealed class TransactionsOffsetsTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private ConsumeResult<string, string>? NextRecordOrEof(IConsumer<string, string> consumer)
        => Eventually.Value(() => consumer.Consume(TimeSpan.FromMilliseconds(200)), r => r is not null, Timeout, "a record or the partition's end");

    private IConsumer<string, string> Consumer(IsolationLevel isolation, Action<IConsumer<string, string>, string>? statistics = null, string? groupId = null)
    {
        var builder = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = broker.Bootstrap,
            GroupId = groupId ?? "reader-" + Guid.NewGuid().ToString("N"),
            EnableAutoCommit = false,
            IsolationLevel = isolation,
            EnablePartitionEof = true,
            StatisticsIntervalMs = statistics is null ? 0 : 100,
        });
        if (statistics is not null) builder.SetStatisticsHandler(statistics);
        return builder.Build();
    }

    [Fact]
    public async Task AbortAndCommitMarkersEachTakeAnOffsetAndAreNeverDelivered()
    {
        const string topic = "txn-markers";
        await broker.CreateTopicAsync(topic);
        using (var producer = TransactionsTests.TxnProducer(broker.Bootstrap, "txn-markers"))
        {
            producer.InitTransactions(Timeout);
            producer.BeginTransaction();
            var aborted = await producer.ProduceAsync(topic, new Message<string, string> { Key = "k", Value = "aborted" });
            Assert.Equal(0, aborted.Offset.Value);
            producer.AbortTransaction(Timeout);
            producer.BeginTransaction();
            var committed = await producer.ProduceAsync(topic, new Message<string, string> { Key = "k", Value = "committed" });
            Assert.Equal(2, committed.Offset.Value); // the abort marker is offset 1
            producer.CommitTransaction(Timeout);
        }

        using (var consumer = Consumer(IsolationLevel.ReadCommitted))
        {
            consumer.Assign(new TopicPartitionOffset(topic, 0, 0));
            var first = NextRecordOrEof(consumer)!;
            Assert.False(first.IsPartitionEOF);
            Assert.Equal(("committed", 2L), (first.Message.Value, first.Offset.Value));
            var end = NextRecordOrEof(consumer)!;
            Assert.True(end.IsPartitionEOF, $"expected the end of the partition, got {end.Message?.Value} at {end.Offset}");
            Assert.Equal(4, end.Offset.Value); // past the commit marker at 3
        }

        using (var consumer = Consumer(IsolationLevel.ReadUncommitted))
        {
            consumer.Assign(new TopicPartitionOffset(topic, 0, 0));
            var first = NextRecordOrEof(consumer)!;
            var second = NextRecordOrEof(consumer)!;
            var end = NextRecordOrEof(consumer)!;
            Assert.Equal(("aborted", 0L), (first.Message.Value, first.Offset.Value));
            Assert.Equal(("committed", 2L), (second.Message.Value, second.Offset.Value));
            Assert.True(end.IsPartitionEOF);
            Assert.Equal(4, end.Offset.Value);
        }
    }

    [Fact]
    public async Task AConsumerThatReadOverAFinalCommitMarkerCommitsTheHighWatermark()
    {
        const string topic = "txn-final-marker";
        await broker.CreateTopicAsync(topic);
        var group = "final-marker-" + Guid.NewGuid().ToString("N");
        using (var producer = TransactionsTests.TxnProducer(broker.Bootstrap, "txn-final-marker"))
        using (var consumer = Consumer(IsolationLevel.ReadUncommitted, groupId: group))
        {
            consumer.Assign(new TopicPartitionOffset(topic, 0, 0));
            producer.InitTransactions(Timeout);
            for (var i = 0; i < 2; i++)
            {
                producer.BeginTransaction();
                producer.Produce(topic, new Message<string, string> { Key = "k", Value = "v" + i });
                producer.CommitTransaction(Timeout);
            }

            // The consumer was assigned before the first write, so ends of the partition may come before the records.
            var offsets = new List<long>();
            while (offsets.Count < 2)
            {
                var r = NextRecordOrEof(consumer)!;
                if (!r.IsPartitionEOF) offsets.Add(r.Offset.Value);
            }
            Assert.Equal([0L, 2L], offsets);
            var end = NextRecordOrEof(consumer)!;
            Assert.True(end.IsPartitionEOF);
            Assert.Equal(4, end.Offset.Value);
            consumer.Commit();
        }

        using var reader = Consumer(IsolationLevel.ReadUncommitted, groupId: group);
        var committedOffsets = reader.Committed([new TopicPartition(topic, 0)], Timeout);
        var watermarks = reader.QueryWatermarkOffsets(new TopicPartition(topic, 0), Timeout);
        Assert.Equal(4, watermarks.High.Value);
        Assert.Equal(watermarks.High, committedOffsets.Single().Offset);
    }

    [Fact]
    public async Task AReadCommittedFetchReportsTheHighWatermarkAndTheLastStableOffsetOfAnOpenTransaction()
    {
        const string topic = "txn-fetch-offsets";
        await broker.CreateTopicAsync(topic);
        long lastStable = -1, high = -1;
        var seen = new ManualResetEventSlim();
        using var consumer = Consumer(IsolationLevel.ReadCommitted, (_, json) =>
        {
            var partition = JsonDocument.Parse(json).RootElement.GetProperty("topics").GetProperty(topic).GetProperty("partitions").GetProperty("0");
            Volatile.Write(ref lastStable, partition.GetProperty("ls_offset").GetInt64());
            Volatile.Write(ref high, partition.GetProperty("hi_offset").GetInt64());
            if (Volatile.Read(ref high) == 7) seen.Set();
        });
        using var producer = TransactionsTests.TxnProducer(broker.Bootstrap, "txn-fetch-offsets");
        consumer.Assign(new TopicPartitionOffset(topic, 0, 0));
        producer.InitTransactions(Timeout);
        foreach (var value in new[] { "a", "b" })
        {
            producer.BeginTransaction();
            await producer.ProduceAsync(topic, new Message<string, string> { Key = "k", Value = value });
            producer.CommitTransaction(Timeout);
        }
        producer.BeginTransaction();
        for (var i = 0; i < 3; i++) await producer.ProduceAsync(topic, new Message<string, string> { Key = "k", Value = "open" + i });

        // Records a and b (offsets 0 and 2) with their markers; the open transaction holds 4..6.
        var delivered = new List<string>();
        Eventually.True(() =>
        {
            var r = consumer.Consume(TimeSpan.FromMilliseconds(100));
            if (r is { IsPartitionEOF: false }) delivered.Add(r.Message.Value);
            return seen.IsSet;
        }, Timeout, "statistics showing the open transaction's records", () => $"hi_offset {Volatile.Read(ref high)}");
        Assert.Equal(4, Volatile.Read(ref lastStable));
        var cached = consumer.GetWatermarkOffsets(new TopicPartition(topic, 0));
        Assert.Equal(7, cached.High.Value);
        Assert.Equal(["a", "b"], delivered);

        producer.CommitTransaction(Timeout);
        var afterCommit = consumer.QueryWatermarkOffsets(new TopicPartition(topic, 0), Timeout);
        Assert.Equal(8, afterCommit.High.Value);
    }

    [Fact]
    public async Task OffsetsSentToATransactionAreReadBackAfterTheNextInitialisation()
    {
        const string topic = "txn-send-offsets";
        await broker.CreateTopicAsync(topic);
        var group = "send-offsets-" + Guid.NewGuid().ToString("N");
        using var consumer = Consumer(IsolationLevel.ReadCommitted, groupId: group);
        using (var producer = TransactionsTests.TxnProducer(broker.Bootstrap, "txn-send-offsets"))
        {
            producer.InitTransactions(Timeout);
            producer.BeginTransaction();
            producer.Produce(topic, new Message<string, string> { Key = "k", Value = "v" });
            // An offset beyond the partition's end is the application's business; Kafka stores it as given.
            producer.SendOffsetsToTransaction([new TopicPartitionOffset(topic, 0, 73)], consumer.ConsumerGroupMetadata, Timeout);
            producer.CommitTransaction(Timeout);
        }
        using (var successor = TransactionsTests.TxnProducer(broker.Bootstrap, "txn-send-offsets"))
        {
            successor.InitTransactions(Timeout);
            var committed = consumer.Committed([new TopicPartition(topic, 0)], Timeout);
            Assert.Equal(73, Assert.Single(committed).Offset.Value);
        }
    }
}
