using Confluent.Kafka;
using Tributary.Broker.Groups;
using Tributary.Broker.Transactions;
using Tributary.Protocol.Messages;
using Tributary.Server;
using Tributary.Testing;
using static Tributary.Broker.Tests.ClusterTestKit;
using ErrorCode = Tributary.Protocol.Messages.ErrorCode;

namespace Tributary.Broker.Tests;

/// <summary>
/// KIP-890 part 1 across brokers: a partition leader that is not the transaction coordinator of a write's
/// transactional id asks that broker (a verify-only AddPartitionsToTxn) before the first transactional batch of a
/// transaction lands in a partition, and the group coordinator does the same for TxnOffsetCommit. Three in-process
/// brokers over one etcd child process; the coordinator and the leaders are picked apart from the metadata.
/// </summary>
[Trait("Category", "Cluster")]
public sealed class ClusterTransactionVerificationTests
{
    private static readonly TimeSpan Timeout = ClusterTestKit.Timeout;

    private static Dictionary<string, string> ClusterSettings(params (string Name, string Value)[] more) => Settings(
        [("offsets.topic.num.partitions", "6"), ("transaction.state.log.num.partitions", "6"), .. more]);

    [Fact]
    public async Task ALeaderAsksTheRemoteCoordinatorAndRefusesPartitionsOutsideTheTransaction()
    {
        await using var cluster = await TributaryCluster.StartAsync(3, ClusterSettings());
        var (transactionalId, coordinator) = await TransactionalIdOnAsync(cluster, "tv-raw");
        var leader = Others(cluster, coordinator)[0];
        await CreateAsync(cluster, "tv-raw", 0, 1, assignment: [[leader], [leader]]);
        await LeadersKnownAsync(cluster, "tv-raw", 2);
        var leaderBroker = cluster.Broker(leader)!;

        await using var atCoordinator = await RawKafkaClient.ConnectAsync(cluster.Broker(coordinator)!.BootstrapServers);
        await using var atLeader = await RawKafkaClient.ConnectAsync(leaderBroker.BootstrapServers);
        var (pid, epoch) = await IdempotenceTests.InitAsync(atCoordinator, 3, transactionalId);
        await AddPartitionAsync(atCoordinator, transactionalId, pid, epoch, "tv-raw", 0);

        // Partition 1 was never added: the leader asks the coordinator, which says so. Nothing is written.
        var refused = await ProduceAsync(atLeader, "tv-raw", 1, IdempotenceTests.Batch(pid, epoch, 0, 1, transactional: true), transactionalId);
        Assert.Equal(ErrorCode.InvalidTxnState, (ErrorCode)refused.ErrorCode);
        var abortable = await ProduceAsync(atLeader, "tv-raw", 1, IdempotenceTests.Batch(pid, epoch, 0, 1, transactional: true), transactionalId, version: 11);
        Assert.Equal(ErrorCode.TransactionAbortable, (ErrorCode)abortable.ErrorCode);
        var fenced = await ProduceAsync(atLeader, "tv-raw", 0, IdempotenceTests.Batch(pid, (short)(epoch + 1), 0, 1, transactional: true), transactionalId);
        Assert.Equal(ErrorCode.InvalidProducerEpoch, (ErrorCode)fenced.ErrorCode);
        var unknown = await ProduceAsync(atLeader, "tv-raw", 0, IdempotenceTests.Batch(pid, epoch, 0, 1, transactional: true), transactionalId + "-other");
        Assert.Equal(ErrorCode.InvalidProducerIdMapping, (ErrorCode)unknown.ErrorCode);
        Assert.Equal(0, leaderBroker.State.Topics.GetPartition("tv-raw", 1)!.LogEndOffset);
        Assert.Equal(0, leaderBroker.State.Topics.GetPartition("tv-raw", 0)!.LogEndOffset);

        // Verify-only added nothing: the transaction still holds partition 0 alone.
        var described = Assert.Single(await cluster.Broker(coordinator)!.Transactions.DescribeAsync([transactionalId]));
        Assert.Equal([("tv-raw", 0)], described.Partitions);

        // Partition 0 is in the transaction: its first batch is verified once, the next ones are not asked about.
        var asked = leaderBroker.Transactions.RemoteVerificationCount;
        var first = await ProduceAsync(atLeader, "tv-raw", 0, IdempotenceTests.Batch(pid, epoch, 0, 2, transactional: true), transactionalId);
        Assert.Equal((ErrorCode.None, 0L), ((ErrorCode)first.ErrorCode, first.BaseOffset));
        Assert.Equal(asked + 1, leaderBroker.Transactions.RemoteVerificationCount);
        var second = await ProduceAsync(atLeader, "tv-raw", 0, IdempotenceTests.Batch(pid, epoch, 2, 3, transactional: true), transactionalId);
        Assert.Equal((ErrorCode.None, 2L), ((ErrorCode)second.ErrorCode, second.BaseOffset));
        Assert.Equal(asked + 1, leaderBroker.Transactions.RemoteVerificationCount);

        // Once the transaction ends (its marker closes it in the partition), the next one's first batch is asked about again.
        var ended = await atCoordinator.SendAsync<EndTxnResponse>(new EndTxnRequest { TransactionalId = transactionalId, ProducerId = pid, ProducerEpoch = epoch, Committed = true }, 3);
        Assert.Equal(ErrorCode.None, (ErrorCode)ended.ErrorCode);
        Assert.Equal(6, leaderBroker.State.Topics.GetPartition("tv-raw", 0)!.LogEndOffset); // five records and the marker
        var outside = await ProduceAsync(atLeader, "tv-raw", 0, IdempotenceTests.Batch(pid, epoch, 5, 1, transactional: true), transactionalId);
        Assert.Equal(ErrorCode.InvalidTxnState, (ErrorCode)outside.ErrorCode);
        Assert.Equal(asked + 2, leaderBroker.Transactions.RemoteVerificationCount);
    }

    [Fact]
    public async Task TheGroupCoordinatorAsksTheRemoteTransactionCoordinatorBeforeTakingTransactionalOffsets()
    {
        await using var cluster = await TributaryCluster.StartAsync(3, ClusterSettings());
        var (transactionalId, coordinator) = await TransactionalIdOnAsync(cluster, "tv-offsets");
        await CreateAsync(cluster, "tv-in", 1, 3);
        var image = cluster.Brokers[0].State.Topics.Image;
        var group = Enumerable.Range(0, 100).Select(i => $"tv-group-{i}")
            .First(g => image.Partition(GroupSettings.OffsetsTopic, cluster.Brokers[0].Groups.PartitionFor(g))!.Leader != coordinator);
        var groupCoordinator = cluster.Broker(image.Partition(GroupSettings.OffsetsTopic, cluster.Brokers[0].Groups.PartitionFor(group))!.Leader)!;

        await using var atCoordinator = await RawKafkaClient.ConnectAsync(cluster.Broker(coordinator)!.BootstrapServers);
        await using var atGroup = await RawKafkaClient.ConnectAsync(groupCoordinator.BootstrapServers);
        var (pid, epoch) = await IdempotenceTests.InitAsync(atCoordinator, 3, transactionalId);
        await AddPartitionAsync(atCoordinator, transactionalId, pid, epoch, "tv-in", 0);

        // The group's partition of __consumer_offsets was never added (no AddOffsetsToTxn): refused, nothing pending.
        Assert.Equal(ErrorCode.InvalidTxnState, await TxnCommitAsync(atGroup, transactionalId, group, pid, epoch, 7));
        var asked = groupCoordinator.Transactions.RemoteVerificationCount;
        Assert.True(asked > 0);

        var added = await atCoordinator.SendAsync<AddOffsetsToTxnResponse>(new AddOffsetsToTxnRequest
        {
            TransactionalId = transactionalId,
            ProducerId = pid,
            ProducerEpoch = epoch,
            GroupId = group,
        }, 3);
        Assert.Equal(ErrorCode.None, (ErrorCode)added.ErrorCode);
        Assert.Equal(ErrorCode.None, await TxnCommitAsync(atGroup, transactionalId, group, pid, epoch, 7));
        Assert.Equal(asked + 1, groupCoordinator.Transactions.RemoteVerificationCount);
        Assert.Equal(ErrorCode.None, await TxnCommitAsync(atGroup, transactionalId, group, pid, epoch, 9)); // its transaction is open there now
        Assert.Equal(asked + 1, groupCoordinator.Transactions.RemoteVerificationCount);

        var ended = await atCoordinator.SendAsync<EndTxnResponse>(new EndTxnRequest { TransactionalId = transactionalId, ProducerId = pid, ProducerEpoch = epoch, Committed = true }, 3);
        Assert.Equal(ErrorCode.None, (ErrorCode)ended.ErrorCode);
        var fetched = await Eventually.ValueAsync<long>(async () => (await atGroup.SendAsync<OffsetFetchResponse>(new OffsetFetchRequest
        {
            GroupId = group,
            Topics = [new() { Name = "tv-in", PartitionIndexes = [0] }],
        }, 5)).Topics[0].Partitions[0].CommittedOffset, o => o == 9, Timeout, "the committed offset");
        Assert.Equal(9, fetched);
    }

    [Fact]
    public async Task TransactionsOverPartitionsLedByOtherBrokersCommitAndAbortForReadCommittedConsumers()
    {
        await using var cluster = await TributaryCluster.StartAsync(3, ClusterSettings());
        var (transactionalId, coordinator) = await TransactionalIdOnAsync(cluster, "tv-client");
        var others = Others(cluster, coordinator);
        // No replica on the coordinator: it knows these partitions only from the metadata.
        int[][] assignment = [[others[0], others[1]], [others[1], others[0]], [others[0], others[1]]];
        await CreateAsync(cluster, "tv-out", 0, 2, assignment: assignment);
        await LeadersKnownAsync(cluster, "tv-out", assignment.Length);

        var committed = new List<string>();
        var all = new List<string>();
        using (var producer = TransactionsTests.TxnProducer(cluster.BootstrapServers, transactionalId))
        {
            producer.InitTransactions(Timeout);
            foreach (var (name, commit) in new[] { ("c1", true), ("a1", false), ("c2", true), ("a2", false), ("c3", true) })
            {
                producer.BeginTransaction();
                for (var i = 0; i < 30; i++)
                {
                    var value = $"{name}-{i}";
                    producer.Produce(new TopicPartition("tv-out", i % assignment.Length), new Message<string, string> { Key = "k", Value = value });
                    all.Add(value);
                    if (commit) committed.Add(value);
                }
                if (commit)
                {
                    producer.CommitTransaction(Timeout);
                }
                else
                {
                    Assert.Equal(0, producer.Flush(Timeout)); // written, so the abort has something to abort
                    producer.AbortTransaction(Timeout);
                }
            }
        }

        Assert.All(others, id => Assert.True(cluster.Broker(id)!.Transactions.RemoteVerificationCount > 0, $"broker {id} asked the coordinator"));
        await StableAsync(cluster, "tv-out", assignment.Length);
        var readCommitted = ReadAll(cluster, "tv-out", assignment.Length, IsolationLevel.ReadCommitted);
        Assert.Equal(committed.Order(), readCommitted.Order());
        var readUncommitted = ReadAll(cluster, "tv-out", assignment.Length, IsolationLevel.ReadUncommitted);
        Assert.Equal(all.Order(), readUncommitted.Order());
    }

    [Fact]
    public async Task AVerificationTheCoordinatorCannotAnswerIsRetriableAndAppendsNothing()
    {
        // One replica of __transaction_state: its partitions stay with their broker, so a stopped coordinator is not replaced.
        await using var cluster = await TributaryCluster.StartAsync(3, ClusterSettings(("transaction.state.log.replication.factor", "1")));
        var (transactionalId, coordinator) = await TransactionalIdOnAsync(cluster, "tv-down");
        var leader = Others(cluster, coordinator)[0];
        await CreateAsync(cluster, "tv-down", 0, 1, assignment: [[leader]]);
        await LeadersKnownAsync(cluster, "tv-down", 1);
        var leaderBroker = cluster.Broker(leader)!;

        long pid;
        short epoch;
        await using (var atCoordinator = await RawKafkaClient.ConnectAsync(cluster.Broker(coordinator)!.BootstrapServers))
        {
            (pid, epoch) = await IdempotenceTests.InitAsync(atCoordinator, 3, transactionalId);
            await AddPartitionAsync(atCoordinator, transactionalId, pid, epoch, "tv-down", 0);
        }
        await cluster.StopBrokerAsync(coordinator);

        await using var atLeader = await RawKafkaClient.ConnectAsync(leaderBroker.BootstrapServers);
        var batch = IdempotenceTests.Batch(pid, epoch, 0, 3, transactional: true);
        // Unreachable while still registered, or without a leader once its registration is gone: retriable either way.
        var unverified = await ProduceAsync(atLeader, "tv-down", 0, batch, transactionalId);
        Assert.Equal(ErrorCode.NotEnoughReplicas, (ErrorCode)unverified.ErrorCode);
        Assert.StartsWith("Unable to verify the partition has been added to the transaction", unverified.ErrorMessage);
        Assert.Equal(0, leaderBroker.State.Topics.GetPartition("tv-down", 0)!.LogEndOffset);

        // The coordinator comes back with the transaction; the same batch, retried, is verified and written.
        await cluster.StartBrokerAsync(coordinator);
        var retried = await Eventually.ValueAsync<ProduceResponse.PartitionProduceResponse>(() => ProduceAsync(atLeader, "tv-down", 0, batch, transactionalId),
            r => r.ErrorCode != (short)ErrorCode.NotEnoughReplicas, Timeout, "a retry once the coordinator is back", r => (ErrorCode)r.ErrorCode);
        Assert.Equal((ErrorCode.None, 0L), ((ErrorCode)retried.ErrorCode, retried.BaseOffset));
        Assert.Equal(3, leaderBroker.State.Topics.GetPartition("tv-down", 0)!.LogEndOffset);
    }

    // ---- helpers ------------------------------------------------------------------------------------------------

    /// <summary>Creates <c>__transaction_state</c> and <c>__consumer_offsets</c>, waits for their leaders, and picks a transactional id and its coordinator.</summary>
    private static async Task<(string TransactionalId, int Coordinator)> TransactionalIdOnAsync(TributaryCluster cluster, string prefix)
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
        var transactionalId = prefix + "-txn";
        var partition = broker.Transactions.PartitionFor(transactionalId);
        var coordinator = broker.State.Topics.Image.Partition(TransactionSettings.StateTopic, partition)!.Leader;
        // The coordinator serves the id once its shard is loaded there.
        await Eventually.TrueAsync(() => cluster.Broker(coordinator)!.Transactions.Runtime.StatusOf(partition) == Coordination.ShardStatus.Loaded, Timeout,
            $"broker {coordinator} loads its shard {partition}");
        return (transactionalId, coordinator);
    }

    private static int[] Others(TributaryCluster cluster, int nodeId) =>
        [.. cluster.Brokers.Select(b => b.State.NodeId).Where(id => id != nodeId).Order()];

    private static async Task LeadersKnownAsync(TributaryCluster cluster, string topic, int partitions)
    {
        foreach (var b in cluster.Brokers)
            await Eventually.TrueAsync(() => Enumerable.Range(0, partitions).All(p => b.State.Topics.Image.Partition(topic, p) is { Leader: >= 0 } state
                && (state.Leader != b.State.NodeId || b.State.Topics.GetPartition(topic, p) is not null)), Timeout, $"broker {b.State.NodeId} knows the leaders of {topic}");
    }

    /// <summary>Waits until each partition's leader has every transaction decided and durable (its last stable offset at its end).</summary>
    private static async Task StableAsync(TributaryCluster cluster, string topic, int partitions)
    {
        for (var p = 0; p < partitions; p++)
        {
            var partition = p;
            var leader = cluster.Broker(cluster.Brokers[0].State.Topics.Image.Partition(topic, partition)!.Leader)!;
            var log = leader.State.Topics.GetPartition(topic, partition)!;
            await Eventually.TrueAsync(() => log.LastStableOffset == log.LogEndOffset, Timeout, $"{topic}-{partition} is stable",
                () => $"{log.LastStableOffset}/{log.LogEndOffset}");
        }
    }

    private static async Task AddPartitionAsync(RawKafkaClient raw, string transactionalId, long pid, short epoch, string topic, int partition)
    {
        var add = await raw.SendAsync<AddPartitionsToTxnResponse>(new AddPartitionsToTxnRequest
        {
            V3AndBelowTransactionalId = transactionalId,
            V3AndBelowProducerId = pid,
            V3AndBelowProducerEpoch = epoch,
            V3AndBelowTopics = [new() { Name = topic, Partitions = [partition] }],
        }, 3);
        Assert.Equal(ErrorCode.None, (ErrorCode)add.ResultsByTopicV3AndBelow[0].ResultsByPartition[0].PartitionErrorCode);
    }

    private static async Task<ProduceResponse.PartitionProduceResponse> ProduceAsync(RawKafkaClient raw, string topic, int partition, byte[] records,
        string transactionalId, short version = 9)
    {
        var response = await raw.SendAsync<ProduceResponse>(new ProduceRequest
        {
            Acks = -1,
            TimeoutMs = 10_000,
            TransactionalId = transactionalId,
            TopicData = [new() { Name = topic, PartitionData = [new() { Index = partition, Records = records }] }],
        }, version, TimeSpan.FromSeconds(40));
        return Assert.Single(Assert.Single(response.Responses).PartitionResponses);
    }

    private static async Task<ErrorCode> TxnCommitAsync(RawKafkaClient raw, string transactionalId, string group, long pid, short epoch, long offset)
    {
        var response = await raw.SendAsync<TxnOffsetCommitResponse>(new TxnOffsetCommitRequest
        {
            TransactionalId = transactionalId,
            GroupId = group,
            ProducerId = pid,
            ProducerEpoch = epoch,
            GenerationId = -1,
            MemberId = "",
            Topics = [new() { Name = "tv-in", Partitions = [new() { PartitionIndex = 0, CommittedOffset = offset, CommittedLeaderEpoch = -1 }] }],
        }, 3);
        return (ErrorCode)response.Topics[0].Partitions[0].ErrorCode;
    }

    /// <summary>Every value of every partition, each read until its end is reported.</summary>
    private static List<string> ReadAll(TributaryCluster cluster, string topic, int partitions, IsolationLevel isolation)
    {
        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = cluster.BootstrapServers,
            GroupId = "reader-" + Guid.NewGuid().ToString("N"),
            EnableAutoCommit = false,
            IsolationLevel = isolation,
            EnablePartitionEof = true,
        }).Build();
        consumer.Assign(Enumerable.Range(0, partitions).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
        var values = new List<string>();
        var ended = new HashSet<int>();
        var deadline = DateTime.UtcNow + Timeout;
        while (ended.Count < partitions && DateTime.UtcNow < deadline)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is not { } r) continue;
            if (r.IsPartitionEOF) ended.Add(r.Partition.Value);
            else values.Add(r.Message.Value);
        }
        Assert.True(ended.Count == partitions, $"{topic} was not read to its end; {values.Count} values so far");
        return values;
    }
}
