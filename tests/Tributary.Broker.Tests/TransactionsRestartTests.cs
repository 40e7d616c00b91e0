using Confluent.Kafka;
using Tributary.Protocol.Messages;
using ErrorCode = Tributary.Protocol.Messages.ErrorCode;
using IsolationLevel = Confluent.Kafka.IsolationLevel;

namespace Tributary.Broker.Tests;

/// <summary>Transactions across broker restarts, transaction timeouts and the KIP-890 produce check.</summary>
[Trait("Category", "Slow")]
public sealed class TransactionsRestartTests : IDisposable
{
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "tributary-txn-" + Guid.NewGuid().ToString("N"));

    private static readonly Dictionary<string, string> FastAbort = new() { ["transaction.abort.timed.out.transaction.cleanup.interval.ms"] = "200" };

    public void Dispose()
    {
        if (Directory.Exists(_dataDir)) Directory.Delete(_dataDir, recursive: true);
    }

    private static void Send(IProducer<string, string> producer, string topic, string prefix, int count)
    {
        for (var i = 0; i < count; i++) producer.Produce(topic, new Message<string, string> { Key = "k", Value = $"{prefix}-{i}" });
        Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task AnOpenTransactionSurvivesARestartHoldsTheLsoAndTimesOutIntoAnAbort()
    {
        await using (var server = await TributaryServer.StartEphemeralAsync(_dataDir, FastAbort))
        {
            server.State.Topics.Create("txn-restart", 1, new Dictionary<string, string>());
            using (var committed = TransactionsTests.TxnProducer(server.BootstrapServers, "txn-restart-a"))
            {
                committed.InitTransactions(TimeSpan.FromSeconds(30));
                committed.BeginTransaction();
                Send(committed, "txn-restart", "committed", 3);
                committed.CommitTransaction(TimeSpan.FromSeconds(30));
            }
            var open = TransactionsTests.TxnProducer(server.BootstrapServers, "txn-restart-b", timeoutMs: 4000);
            open.InitTransactions(TimeSpan.FromSeconds(30));
            open.BeginTransaction();
            Send(open, "txn-restart", "open", 4);
            open.Dispose(); // gone without ending its transaction
        }

        await using (var server = await TributaryServer.StartEphemeralAsync(_dataDir, FastAbort))
        {
            var log = server.State.Topics.GetPartition("txn-restart", 0)!;
            await server.Transactions.WaitUntilLoadedAsync();
            Assert.Equal(4, log.LastStableOffset); // 3 committed records + their marker; the open transaction starts at 4
            Assert.Equal(3, TransactionsTests.ReadValues(server.BootstrapServers, "txn-restart", 1, IsolationLevel.ReadCommitted, TimeSpan.FromSeconds(1)).Count);

            await Eventually.TrueAsync(() => log.LastStableOffset == log.HighWatermark, TimeSpan.FromSeconds(15), "the open transaction to be aborted",
                () => $"last stable {log.LastStableOffset}, high watermark {log.HighWatermark}");
            var described = await server.Transactions.DescribeAsync(["txn-restart-b"]);
            Assert.Equal(Transactions.TransactionState.CompleteAbort, Assert.Single(described).State);
            var values = TransactionsTests.ReadValues(server.BootstrapServers, "txn-restart", 1, IsolationLevel.ReadCommitted, TimeSpan.FromSeconds(2));
            Assert.Equal(["committed-0", "committed-1", "committed-2"], values);
            Assert.Equal(7, TransactionsTests.ReadValues(server.BootstrapServers, "txn-restart", 1, IsolationLevel.ReadUncommitted, TimeSpan.FromSeconds(2)).Count);
        }
    }

    [Fact]
    public async Task ATransactionOpenPastItsTimeoutIsAbortedAndItsProducerFenced()
    {
        await using var server = await TributaryServer.StartEphemeralAsync(_dataDir, FastAbort);
        server.State.Topics.Create("txn-timeout", 1, new Dictionary<string, string>());
        using var producer = TransactionsTests.TxnProducer(server.BootstrapServers, "txn-timeout", timeoutMs: 1500);
        producer.InitTransactions(TimeSpan.FromSeconds(30));
        producer.BeginTransaction();
        Send(producer, "txn-timeout", "slow", 3);
        var log = server.State.Topics.GetPartition("txn-timeout", 0)!;
        Assert.Equal(0, log.LastStableOffset);
        await Eventually.TrueAsync(() => log.LastStableOffset == log.HighWatermark, TimeSpan.FromSeconds(15), "the timed-out transaction to be aborted",
            () => $"last stable {log.LastStableOffset}, high watermark {log.HighWatermark}");
        Assert.Equal(4, log.LastStableOffset); // 3 records and the abort marker
        Assert.ThrowsAny<KafkaException>(() => producer.CommitTransaction(TimeSpan.FromSeconds(10)));
        Assert.Empty(TransactionsTests.ReadValues(server.BootstrapServers, "txn-timeout", 1, IsolationLevel.ReadCommitted, TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public async Task ADecidedCommitWhoseMarkersWereNotWrittenIsFinishedAfterARestart()
    {
        await using (var server = await TributaryServer.StartEphemeralAsync(_dataDir))
        {
            server.State.Topics.Create("txn-decided", 2, new Dictionary<string, string>());
            using var producer = TransactionsTests.TxnProducer(server.BootstrapServers, "txn-decided");
            producer.InitTransactions(TimeSpan.FromSeconds(30));
            producer.BeginTransaction();
            for (var i = 0; i < 6; i++) producer.Produce(new TopicPartition("txn-decided", i % 2), new Message<string, string> { Key = "k", Value = "decided-" + i });
            Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(30)));
            server.Transactions.FailMarkersForTests = true;
            producer.CommitTransaction(TimeSpan.FromSeconds(30)); // the decision is durable; the markers are not written
            var described = await server.Transactions.DescribeAsync(["txn-decided"]);
            Assert.Equal(Transactions.TransactionState.PrepareCommit, Assert.Single(described).State);
            Assert.Empty(TransactionsTests.ReadValues(server.BootstrapServers, "txn-decided", 2, IsolationLevel.ReadCommitted, TimeSpan.FromSeconds(1)));
        }

        await using (var server = await TributaryServer.StartEphemeralAsync(_dataDir))
        {
            await server.Transactions.WaitUntilLoadedAsync();
            var described = await server.Transactions.DescribeAsync(["txn-decided"]);
            Assert.Equal(Transactions.TransactionState.CompleteCommit, Assert.Single(described).State);
            var values = TransactionsTests.ReadValues(server.BootstrapServers, "txn-decided", 2, IsolationLevel.ReadCommitted, TimeSpan.FromSeconds(2));
            Assert.Equal(6, values.Count);
        }
    }

    [Fact]
    public async Task ASuccessorAfterARestartAbortsThePredecessorsTransaction()
    {
        await using (var server = await TributaryServer.StartEphemeralAsync(_dataDir))
        {
            server.State.Topics.Create("txn-successor", 2, new Dictionary<string, string>());
            var open = TransactionsTests.TxnProducer(server.BootstrapServers, "txn-successor");
            open.InitTransactions(TimeSpan.FromSeconds(30));
            open.BeginTransaction();
            for (var i = 0; i < 6; i++) open.Produce(new TopicPartition("txn-successor", i % 2), new Message<string, string> { Key = "k", Value = "lost-" + i });
            Assert.Equal(0, open.Flush(TimeSpan.FromSeconds(30)));
            open.Dispose();
        }

        await using (var server = await TributaryServer.StartEphemeralAsync(_dataDir))
        {
            using var successor = TransactionsTests.TxnProducer(server.BootstrapServers, "txn-successor");
            successor.InitTransactions(TimeSpan.FromSeconds(30));
            successor.BeginTransaction();
            Send(successor, "txn-successor", "kept", 2);
            successor.CommitTransaction(TimeSpan.FromSeconds(30));
            var values = TransactionsTests.ReadValues(server.BootstrapServers, "txn-successor", 2, IsolationLevel.ReadCommitted, TimeSpan.FromSeconds(2));
            Assert.Equal(["kept-0", "kept-1"], values.Order());
        }
    }

    [Fact]
    public async Task OffsetsStagedByAnOpenTransactionAreUnstableForRequireStableFetches()
    {
        await using var server = await TributaryServer.StartEphemeralAsync(_dataDir);
        server.State.Topics.Create("txn-stable", 1, new Dictionary<string, string>());
        await server.Groups.WaitUntilLoadedAsync(TimeSpan.FromSeconds(10));
        await using var raw = await RawKafkaClient.ConnectAsync(server.BootstrapServers);
        var (pid, epoch) = await IdempotenceTests.InitAsync(raw, 3, "txn-stable");
        await raw.SendAsync<AddOffsetsToTxnResponse>(new AddOffsetsToTxnRequest { TransactionalId = "txn-stable", ProducerId = pid, ProducerEpoch = epoch, GroupId = "g-stable" }, 3);
        var staged = await raw.SendAsync<TxnOffsetCommitResponse>(new TxnOffsetCommitRequest
        {
            TransactionalId = "txn-stable",
            GroupId = "g-stable",
            ProducerId = pid,
            ProducerEpoch = epoch,
            Topics = [new() { Name = "txn-stable", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 5 }] }],
        }, 3);
        Assert.Equal(0, staged.Topics[0].Partitions[0].ErrorCode);
        var stale = await raw.SendAsync<TxnOffsetCommitResponse>(new TxnOffsetCommitRequest
        {
            TransactionalId = "txn-stable",
            GroupId = "g-stable",
            ProducerId = pid,
            ProducerEpoch = (short)(epoch - 1),
            Topics = [new() { Name = "txn-stable", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 4 }] }],
        }, 3);
        // Kafka never answers PRODUCER_FENCED to TxnOffsetCommit, in any version.
        Assert.Equal(ErrorCode.InvalidProducerEpoch, (ErrorCode)stale.Topics[0].Partitions[0].ErrorCode);

        async Task<OffsetFetchResponse.OffsetFetchResponsePartition> Fetch(bool requireStable) =>
            (await raw.SendAsync<OffsetFetchResponse>(new OffsetFetchRequest
            {
                GroupId = "g-stable",
                RequireStable = requireStable,
                Topics = [new() { Name = "txn-stable", PartitionIndexes = [0] }],
            }, 7)).Topics[0].Partitions[0];
        Assert.Equal(ErrorCode.UnstableOffsetCommit, (ErrorCode)(await Fetch(true)).ErrorCode);
        var unstable = await Fetch(false);
        Assert.Equal((ErrorCode.None, -1L), ((ErrorCode)unstable.ErrorCode, unstable.CommittedOffset));

        var ended = await raw.SendAsync<EndTxnResponse>(new EndTxnRequest { TransactionalId = "txn-stable", ProducerId = pid, ProducerEpoch = epoch, Committed = true }, 3);
        Assert.Equal(0, ended.ErrorCode);
        var stable = await Fetch(true);
        Assert.Equal((ErrorCode.None, 5L), ((ErrorCode)stable.ErrorCode, stable.CommittedOffset));
    }

    [Fact]
    public async Task TransactionalWritesToPartitionsOutsideTheTransactionAreRefused()
    {
        await using var server = await TributaryServer.StartEphemeralAsync(_dataDir);
        server.State.Topics.Create("txn-verify", 2, new Dictionary<string, string>());
        await using var raw = await RawKafkaClient.ConnectAsync(server.BootstrapServers);
        var (pid, epoch) = await IdempotenceTests.InitAsync(raw, 3, "txn-verify");
        var add = await raw.SendAsync<AddPartitionsToTxnResponse>(new AddPartitionsToTxnRequest
        {
            V3AndBelowTransactionalId = "txn-verify",
            V3AndBelowProducerId = pid,
            V3AndBelowProducerEpoch = epoch,
            V3AndBelowTopics = [new() { Name = "txn-verify", Partitions = [1] }],
        }, 3);
        Assert.Equal(ErrorCode.None, (ErrorCode)add.ResultsByTopicV3AndBelow[0].ResultsByPartition[0].PartitionErrorCode);
        var refused = await IdempotenceTests.ProduceAsync(raw, "txn-verify", IdempotenceTests.Batch(pid, epoch, 0, 1, transactional: true), "txn-verify");
        Assert.Equal(ErrorCode.InvalidTxnState, (ErrorCode)refused.ErrorCode); // partition 0 was never added
        var abortable = await IdempotenceTests.ProduceAsync(raw, "txn-verify", IdempotenceTests.Batch(pid, epoch, 0, 1, transactional: true), "txn-verify", version: 11);
        Assert.Equal(ErrorCode.TransactionAbortable, (ErrorCode)abortable.ErrorCode); // the newer code from v11
        var future = await IdempotenceTests.ProduceAsync(raw, "txn-verify", IdempotenceTests.Batch(pid, (short)(epoch + 1), 0, 1, transactional: true), "txn-verify");
        Assert.Equal(ErrorCode.InvalidProducerEpoch, (ErrorCode)future.ErrorCode); // an epoch the coordinator never gave out

        var control = new Protocol.Records.RecordBatchBuilder { ProducerId = pid, ProducerEpoch = epoch, IsTransactional = true, IsControl = true }
            .Add(0, [0, 0, 0, 1], [0, 0, 0, 0, 0, 0]).Build();
        Assert.Equal(ErrorCode.InvalidRecord, (ErrorCode)(await IdempotenceTests.ProduceAsync(raw, "txn-verify", control, "txn-verify")).ErrorCode);

        var fenced = await raw.SendAsync<EndTxnResponse>(new EndTxnRequest { TransactionalId = "txn-verify", ProducerId = pid, ProducerEpoch = (short)(epoch - 1), Committed = true }, 1);
        Assert.Equal(ErrorCode.InvalidProducerEpoch, (ErrorCode)fenced.ErrorCode); // PRODUCER_FENCED before v2
        var ended = await raw.SendAsync<EndTxnResponse>(new EndTxnRequest { TransactionalId = "txn-verify", ProducerId = pid, ProducerEpoch = epoch, Committed = true }, 3);
        Assert.Equal(ErrorCode.None, (ErrorCode)ended.ErrorCode);
        var retried = await raw.SendAsync<EndTxnResponse>(new EndTxnRequest { TransactionalId = "txn-verify", ProducerId = pid, ProducerEpoch = epoch, Committed = true }, 3);
        Assert.Equal(ErrorCode.None, (ErrorCode)retried.ErrorCode);
        Assert.Equal(1, server.State.Topics.GetPartition("txn-verify", 1)!.LogEndOffset); // the commit marker
    }
}
