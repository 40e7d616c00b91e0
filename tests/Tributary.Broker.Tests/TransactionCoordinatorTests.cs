using Tributary.Broker.Groups;
using Tributary.Broker.Handlers;
using Tributary.Broker.Network;
using Tributary.Protocol.Messages;
using ErrorCode = Tributary.Protocol.Messages.ErrorCode;

namespace Tributary.Broker.Tests;

/// <summary>The transaction coordinator's state as other threads see it while transactions change.</summary>
public sealed class TransactionCoordinatorTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    /// <summary>
    /// Every change to an open transaction (another partition, a group's offsets partition) is a new state the
    /// coordinator installs while Produce and TxnOffsetCommit check it from other threads. Those checks must see the old
    /// state or the new one, never a moment where the producer has no transaction (a valid write refused with
    /// INVALID_PRODUCER_ID_MAPPING).
    /// </summary>
    [Fact]
    public async Task ProduceAndTxnOffsetCommitChecksNeverSeeATransactionVanishWhileItChanges()
    {
        const string topic = "txn-state-swap";
        await broker.CreateTopicAsync(topic, partitions: 2);
        var coordinator = broker.Server.Transactions;
        var offsetsPartition = broker.Server.Groups.PartitionFor("swap-group");
        var (error, producerId, epoch) = await coordinator.InitProducerIdAsync("txn-state-swap", 60_000, -1, -1);
        Assert.Equal(ErrorCode.None, error);
        Assert.Equal(ErrorCode.None, (await coordinator.AddPartitionsAsync("txn-state-swap", producerId, epoch, [(topic, 0)])).Error);
        Assert.Equal(ErrorCode.None, await coordinator.AddOffsetsAsync("txn-state-swap", producerId, epoch, "swap-group"));

        var stop = 0;
        var refusals = new List<string>();
        var checks = 0L;
        var reader = new Thread(() =>
        {
            while (Volatile.Read(ref stop) == 0)
            {
                var write = coordinator.VerifyTransactionalWrite(producerId, epoch, topic, 0);
                if (write != ErrorCode.None) refusals.Add($"Produce checked as {write}");
                var offsets = coordinator.VerifyTransactionalWrite(producerId, epoch, GroupSettings.OffsetsTopic, offsetsPartition);
                if (offsets != ErrorCode.None) refusals.Add($"TxnOffsetCommit checked as {offsets}");
                checks++;
                if (refusals.Count > 0) return;
            }
        });
        reader.Start();
        try
        {
            for (var i = 0; i < 400 && !reader.Join(0); i++)
            {
                if (i % 2 == 0) Assert.Equal(ErrorCode.None, (await coordinator.AddPartitionsAsync("txn-state-swap", producerId, epoch, [(topic, 1)])).Error);
                else Assert.Equal(ErrorCode.None, await coordinator.AddOffsetsAsync("txn-state-swap", producerId, epoch, "swap-group"));
            }
        }
        finally
        {
            Volatile.Write(ref stop, 1);
            reader.Join();
        }
        Assert.Empty(refusals);
        Assert.True(checks > 0);
        Assert.Equal(ErrorCode.None, (await coordinator.EndTxnAsync("txn-state-swap", producerId, epoch, commit: true)).Error);
    }

    /// <summary>
    /// KIP-360: a producer that hit an abortable error re-initialises with its id and epoch, and a lost answer to that
    /// may be retried. But once a new instance initialised the transactional id, the old instance's recovery request
    /// must be fenced, not mistaken for a retry: it would get the new instance's epoch and both would write as one.
    /// </summary>
    [Fact]
    public async Task AnOldInstancesRecoveryAfterANewInstanceInitialisedIsFencedWhileARealRetryIsAnswered()
    {
        var coordinator = broker.Server.Transactions;
        var (error, producerId, epoch) = await coordinator.InitProducerIdAsync("txn-recovery", 60_000, -1, -1);
        Assert.Equal(ErrorCode.None, error);

        // The new instance: no producer id of its own yet.
        var successor = await coordinator.InitProducerIdAsync("txn-recovery", 60_000, -1, -1);
        Assert.Equal((ErrorCode.None, producerId, (short)(epoch + 1)), successor);

        // The old instance's recovery bump, carrying the epoch it was fenced from.
        var zombie = await coordinator.InitProducerIdAsync("txn-recovery", 60_000, producerId, epoch);
        Assert.Equal(ErrorCode.ProducerFenced, zombie.Error);

        // The successor's own recovery bump, then its retry of it, answered alike.
        var bump = await coordinator.InitProducerIdAsync("txn-recovery", 60_000, producerId, successor.Epoch);
        Assert.Equal((ErrorCode.None, producerId, (short)(epoch + 2)), bump);
        var retry = await coordinator.InitProducerIdAsync("txn-recovery", 60_000, producerId, successor.Epoch);
        Assert.Equal(bump, retry);
    }

    /// <summary>
    /// AddOffsetsToTxn makes the group's partition of <c>__consumer_offsets</c> one of the transaction's; TxnOffsetCommit
    /// goes to the group coordinator, where the offset is pending (hidden, and UNSTABLE_OFFSET_COMMIT for require_stable)
    /// until the marker. EndTxn answers only once the marker is applied, so a client that commits and then fetches
    /// without require_stable reads the new offset, as it did when the transaction coordinator wrote the offsets itself.
    /// </summary>
    [Fact]
    public async Task TransactionalOffsetsArePendingUntilTheMarkerAndVisibleWhenEndTxnReturns()
    {
        const string topic = "txn-stable-check", group = "stable-check", txnId = "txn-stable-check";
        await broker.CreateTopicAsync(topic);
        var groups = broker.Server.Groups;
        var coordinator = broker.Server.Transactions;
        Assert.Equal(ErrorCode.None, (await groups.CommitOffsetsAsync(group, -1, "", null, [new OffsetToCommit(topic, 0, 10, -1, null, -1)])).GroupError);
        var (error, producerId, epoch) = await coordinator.InitProducerIdAsync(txnId, 60_000, -1, -1);
        Assert.Equal(ErrorCode.None, error);
        Assert.Equal(ErrorCode.None, await coordinator.AddOffsetsAsync(txnId, producerId, epoch, group));
        Assert.Contains((GroupSettings.OffsetsTopic, groups.PartitionFor(group)), Assert.Single(await coordinator.DescribeAsync([txnId])).Partitions);

        var commit = new TxnOffsetCommitRequest
        {
            TransactionalId = txnId,
            GroupId = group,
            ProducerId = producerId,
            ProducerEpoch = epoch,
            GenerationId = -1,
            Topics = [new() { Name = topic, Partitions = [new() { PartitionIndex = 0, CommittedOffset = 42 }] }],
        };
        var committed = (TxnOffsetCommitResponse)(await new TxnOffsetCommitHandler(coordinator, groups, broker.Server.State.Topics)
            .HandleAsync(new RequestContext(3, 1, null, null, default), commit))!;
        Assert.Equal(0, committed.Topics.Single().Partitions.Single().ErrorCode);

        async Task<OffsetFetchResponse.OffsetFetchResponsePartition> Fetch(bool requireStable)
        {
            var request = new OffsetFetchRequest { GroupId = group, RequireStable = requireStable, Topics = [new() { Name = topic, PartitionIndexes = [0] }] };
            var response = (OffsetFetchResponse)(await new OffsetFetchHandler(groups).HandleAsync(new RequestContext(7, 1, null, null, default), request))!;
            return response.Topics.Single().Partitions.Single();
        }
        Assert.Equal((short)ErrorCode.UnstableOffsetCommit, (await Fetch(requireStable: true)).ErrorCode);
        Assert.Equal(10, (await Fetch(requireStable: false)).CommittedOffset);

        Assert.Equal(ErrorCode.None, (await coordinator.EndTxnAsync(txnId, producerId, epoch, commit: true)).Error);
        var after = await Fetch(requireStable: false);
        Assert.Equal((0, 42L), (after.ErrorCode, after.CommittedOffset));
        Assert.Equal((0, 42L), ((await Fetch(requireStable: true)).ErrorCode, (await Fetch(requireStable: true)).CommittedOffset));
    }
}
