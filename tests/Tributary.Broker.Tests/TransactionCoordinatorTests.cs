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
    /// Every change to an open transaction (another partition, the group's offsets) is a new state the coordinator
    /// installs while Produce and OffsetFetch read it from other threads. Those readers must see the old state or the
    /// new one, never a moment where the producer has no transaction (a valid Produce refused with
    /// INVALID_PRODUCER_ID_MAPPING) or the staged offset is not pending (a require_stable fetch answered too early).
    /// </summary>
    [Fact]
    public async Task ProduceAndOffsetFetchChecksNeverSeeATransactionVanishWhileItChanges()
    {
        const string topic = "txn-state-swap";
        await broker.CreateTopicAsync(topic, partitions: 2);
        var coordinator = broker.Server.Transactions;
        var (error, producerId, epoch) = await coordinator.InitProducerIdAsync("txn-state-swap", 60_000, -1, -1);
        Assert.Equal(ErrorCode.None, error);
        Assert.Equal(ErrorCode.None, (await coordinator.AddPartitionsAsync("txn-state-swap", producerId, epoch, [(topic, 0)])).Error);
        Assert.Equal(ErrorCode.None, await coordinator.AddOffsetsAsync("txn-state-swap", producerId, epoch, "swap-group"));
        Assert.Equal(ErrorCode.None, await coordinator.TxnOffsetCommitAsync("txn-state-swap", "swap-group", producerId, epoch,
            [new OffsetToCommit(topic, 0, 1, -1, null, -1)]));

        var stop = 0;
        var refusals = new List<string>();
        var checks = 0L;
        var reader = new Thread(() =>
        {
            while (Volatile.Read(ref stop) == 0)
            {
                var write = coordinator.VerifyTransactionalWrite(producerId, epoch, topic, 0);
                if (write != ErrorCode.None) refusals.Add($"Produce checked as {write}");
                if (!coordinator.HasPendingOffset("swap-group", topic, 0)) refusals.Add("staged offset not pending");
                checks++;
                if (refusals.Count > 0) return;
            }
        });
        reader.Start();
        try
        {
            for (var i = 2; i < 400 && !reader.Join(0); i++)
            {
                Assert.Equal(ErrorCode.None, await coordinator.TxnOffsetCommitAsync("txn-state-swap", "swap-group", producerId, epoch,
                    [new OffsetToCommit(topic, 0, i, -1, null, -1)]));
            }
        }
        finally
        {
            Volatile.Write(ref stop, 1);
            reader.Join();
        }
        Assert.Empty(refusals);
        Assert.True(checks > 0);
        Assert.Equal(ErrorCode.None, await coordinator.EndTxnAsync("txn-state-swap", producerId, epoch, commit: true));
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
    /// require_stable: OffsetFetch must never answer a group's old offset as stable while a committing transaction
    /// replaces it. The stability check is held open here until the transaction has finished, if it can: were the
    /// check made apart from the offset read, the transaction would finish in between and the old offset would pass
    /// as stable. Made on the group loop together with the read, the transaction cannot install its offset until the
    /// check is done, so the wait ends unfinished and the answer is UNSTABLE_OFFSET_COMMIT.
    /// </summary>
    [Fact]
    public async Task ARequireStableOffsetFetchNeverAnswersTheOffsetACommittingTransactionReplaces()
    {
        const string topic = "txn-stable-check", group = "stable-check", txnId = "txn-stable-check";
        await broker.CreateTopicAsync(topic);
        var groups = broker.Server.Groups;
        var coordinator = broker.Server.Transactions;
        Assert.Equal(ErrorCode.None, (await groups.CommitOffsetsAsync(group, -1, "", null, [new OffsetToCommit(topic, 0, 10, -1, null, -1)])).GroupError);
        var (error, producerId, epoch) = await coordinator.InitProducerIdAsync(txnId, 60_000, -1, -1);
        Assert.Equal(ErrorCode.None, error);
        Assert.Equal(ErrorCode.None, await coordinator.AddOffsetsAsync(txnId, producerId, epoch, group));
        Assert.Equal(ErrorCode.None, await coordinator.TxnOffsetCommitAsync(txnId, group, producerId, epoch, [new OffsetToCommit(topic, 0, 42, -1, null, -1)]));

        var original = groups.PendingTransactionalOffset!;
        Task<ErrorCode>? commit = null;
        groups.PendingTransactionalOffset = (g, t, p) =>
        {
            if (commit is null)
            {
                commit = Task.Run(() => coordinator.EndTxnAsync(txnId, producerId, epoch, commit: true));
                commit.Wait(TimeSpan.FromSeconds(1));
            }
            return original(g, t, p);
        };
        try
        {
            var request = new OffsetFetchRequest { GroupId = group, RequireStable = true, Topics = [new() { Name = topic, PartitionIndexes = [0] }] };
            var response = (OffsetFetchResponse)(await new OffsetFetchHandler(groups).HandleAsync(new RequestContext(7, 1, null, null, default), request))!;
            var answer = response.Topics.Single().Partitions.Single();
            Assert.True(answer.ErrorCode == (short)ErrorCode.UnstableOffsetCommit || answer.CommittedOffset == 42,
                $"require_stable OffsetFetch answered offset {answer.CommittedOffset} with error {(ErrorCode)answer.ErrorCode}");
        }
        finally
        {
            groups.PendingTransactionalOffset = original;
        }
        Assert.Equal(ErrorCode.None, await commit!);
        Assert.Equal(42, (await groups.FetchOffsetsAsync(group, [(topic, 0)])).Offsets.Single().Offset!.Offset);
    }
}
