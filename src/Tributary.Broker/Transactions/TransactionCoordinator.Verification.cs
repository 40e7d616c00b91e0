using Tributary.Broker.Replication;
using Tributary.Coordination;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Transactions;

/// <summary>
/// KIP-890 part 1, the partition leader's side: before a transactional write opens the producer's transaction in a
/// partition (its first transactional batch there; TxnOffsetCommit's first for the group's partition of
/// <c>__consumer_offsets</c>), the leader makes sure the transaction coordinator counts that partition in the
/// producer's open transaction under the batch's epoch, so a late or stray batch cannot leave a transaction hanging in a
/// partition the coordinator will never write a marker to.
///
/// When the shard of the request's transactional id is served on this broker the answer is read from the published
/// state (<see cref="CheckTransactionalWrite"/>, no loop, no round trip). When another broker leads that shard's
/// partition of <c>__transaction_state</c>, the leader asks it with a verify-only AddPartitionsToTxn v4
/// (<see cref="AskRemotelyAsync"/>), as Kafka's <c>AddPartitionsToTxnManager</c> does; callers skip that when the
/// partition's log already holds the producer's open transaction (<see cref="Storage.PartitionLog.HasOngoingTransaction"/>),
/// so only the first batch of a transaction in a partition pays for it.
/// </summary>
public sealed partial class TransactionCoordinator
{
    /// <summary>AddPartitionsToTxn v4 is the first with the brokers' batched form and verify_only.</summary>
    private const short VerifyVersion = 4;

    private const string NotAddedMessage = "Partition was not added to the transaction";

    // Per shard, 1 while it is loaded and its ids are published in _open; and how many are.
    private int[]? _shardServing;
    private int _servingShards;
    private long _remoteVerifications;
    private RateLimitedLog? _verifyFailures;

    /// <summary>
    /// Reaches the transaction coordinators on other brokers to verify writes (its own connections, so a verification
    /// never queues behind marker writes); set by the host of a cluster before Start and owned by this coordinator.
    /// Without it (a broker alone) every shard is local.
    /// </summary>
    internal InterBrokerClient? VerificationClient { get; set; }

    /// <summary>How many verify-only AddPartitionsToTxn this broker has sent (tests: later batches must not send one).</summary>
    internal long RemoteVerificationCount => Interlocked.Read(ref _remoteVerifications);

    /// <summary>
    /// The check by producer id alone, for a write that names no transactional id: a transactional batch is accepted
    /// only from the current epoch of a producer whose open transaction includes the partition. Until every shard is
    /// loaded here it answers None: a producer id does not name its shard, so an unknown producer may belong to one not
    /// serving, and the log's own epoch checks still apply. Safe to call from any thread.
    /// </summary>
    public ErrorCode VerifyTransactionalWrite(long producerId, short epoch, string topic, int partition)
    {
        if (_shardCount == 0 || Volatile.Read(ref _servingShards) < _shardCount) return ErrorCode.None;
        return CheckOpen(producerId, epoch, topic, partition);
    }

    /// <summary>
    /// The check of a transactional write by <paramref name="transactionalId"/>'s producer, made here when this broker
    /// serves the id's shard. Sets <paramref name="coordinator"/> to the broker to ask instead (and answers None) when
    /// another broker leads the id's partition of <c>__transaction_state</c>; otherwise -1. When the coordinator is
    /// nowhere to be asked (the partition has no leader; it is led here but still loading) the answer is the
    /// coordinator error (COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR), which callers
    /// turn into their retriable errors. Safe to call from any thread; allocates nothing.
    /// </summary>
    internal ErrorCode CheckTransactionalWrite(string? transactionalId, long producerId, short epoch, string topic, int partition, out int coordinator)
    {
        coordinator = -1;
        if (transactionalId is null || _shardServing is not { } serving) return VerifyTransactionalWrite(producerId, epoch, topic, partition);
        var shard = ShardOf(transactionalId);
        if (Volatile.Read(ref serving[shard]) != 0) return CheckOpen(producerId, epoch, topic, partition);
        var leader = _topics.Image.Partition(TransactionSettings.StateTopic, shard)?.Leader ?? -1;
        if (leader == _topics.NodeId) return CoordinatorRuntime<TransactionShard>.ErrorFor(Runtime.StatusOf(shard));
        if (leader < 0 || VerificationClient is null) return ErrorCode.CoordinatorNotAvailable;
        coordinator = leader;
        return ErrorCode.None;
    }

    private ErrorCode CheckOpen(long producerId, short epoch, string topic, int partition)
    {
        if (!_open.TryGetValue(producerId, out var open)) return ErrorCode.InvalidProducerIdMapping;
        if (epoch != open.Epoch) return ErrorCode.InvalidProducerEpoch;
        return open.Ongoing && open.Partitions.Contains((topic, partition)) ? ErrorCode.None : ErrorCode.InvalidTxnState;
    }

    /// <summary>The coordinator argument of <see cref="AddOrVerifyAsync"/> for a transaction whose coordinator is this broker.</summary>
    internal const int LocalCoordinator = -2;

    /// <summary>
    /// Transaction version 2 (KIP-890 part 2): a producer's first write to a partition in a transaction adds the partition
    /// itself (the client sends no AddPartitionsToTxn), so where a version-1 write is verified, a version-2 write asks
    /// the coordinator to add the partition: here when <paramref name="coordinator"/> is <see cref="LocalCoordinator"/>,
    /// else with an AddPartitionsToTxn v4 that is not verify-only. Without <paramref name="add"/>, a verification (see
    /// <see cref="AskRemotelyAsync"/>). One error per partition, in order.
    /// </summary>
    internal async Task<ErrorCode[]> AddOrVerifyAsync(int coordinator, bool add, string transactionalId, long producerId, short epoch,
        IReadOnlyList<(string Topic, int Partition)> partitions, CancellationToken cancellationToken)
    {
        if (coordinator != LocalCoordinator) return await AskRemotelyAsync(coordinator, transactionalId, producerId, epoch, partitions, verifyOnly: !add, cancellationToken).ConfigureAwait(false);
        var (error, results) = await AddPartitionsAsync(transactionalId, producerId, epoch, partitions, verifyOnly: !add).ConfigureAwait(false);
        return [.. partitions.Select(p => results.TryGetValue(p, out var e) ? e : error)];
    }

    /// <summary>
    /// Asks broker <paramref name="coordinator"/>, the transaction coordinator of <paramref name="transactionalId"/>,
    /// whether each partition is in the producer's open transaction under <paramref name="epoch"/> (a verify-only
    /// AddPartitionsToTxn: nothing is added), or, without <paramref name="verifyOnly"/>, to add them. One error per
    /// partition, in order: the coordinator's answer, or NETWORK_EXCEPTION when it could not be reached or did not
    /// answer for the partition.
    /// </summary>
    internal async Task<ErrorCode[]> AskRemotelyAsync(int coordinator, string transactionalId, long producerId, short epoch,
        IReadOnlyList<(string Topic, int Partition)> partitions, bool verifyOnly, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _remoteVerifications);
        var errors = new ErrorCode[partitions.Count];
        var transaction = new AddPartitionsToTxnRequest.AddPartitionsToTxnTransaction
        {
            TransactionalId = transactionalId,
            ProducerId = producerId,
            ProducerEpoch = epoch,
            VerifyOnly = verifyOnly,
        };
        foreach (var (topic, partition) in partitions)
        {
            var entry = transaction.Topics.Find(t => t.Name == topic);
            if (entry is null) transaction.Topics.Add(entry = new AddPartitionsToTxnRequest.AddPartitionsToTxnTopic { Name = topic });
            if (!entry.Partitions.Contains(partition)) entry.Partitions.Add(partition);
        }
        AddPartitionsToTxnResponse response;
        try
        {
            var client = VerificationClient ?? throw new IOException("no inter-broker client");
            response = await client.SendAsync<AddPartitionsToTxnResponse>(coordinator, new AddPartitionsToTxnRequest { Transactions = [transaction] },
                VerifyVersion, cancellationToken).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            (_verifyFailures ??= new RateLimitedLog(Log, LogLevel.Warn, 5, TimeSpan.FromSeconds(30), Time))
                .Write($"transaction verification: asking broker {coordinator} about {transactionalId} failed: {e.Message}");
            Array.Fill(errors, ErrorCode.NetworkException);
            return errors;
        }
        if (response.ErrorCode != 0)
        {
            // Kafka keeps CLUSTER_AUTHORIZATION_FAILED from clients: the write simply was not verified.
            var all = (ErrorCode)response.ErrorCode == ErrorCode.ClusterAuthorizationFailed ? ErrorCode.InvalidTxnState : (ErrorCode)response.ErrorCode;
            Array.Fill(errors, all);
            return errors;
        }
        Array.Fill(errors, ErrorCode.NetworkException);
        foreach (var result in response.ResultsByTransaction)
        {
            if (result.TransactionalId != transactionalId) continue;
            foreach (var topic in result.TopicResults)
                foreach (var p in topic.ResultsByPartition)
                    for (var i = 0; i < partitions.Count; i++)
                        if (partitions[i].Partition == p.PartitionIndex && partitions[i].Topic == topic.Name) errors[i] = (ErrorCode)p.PartitionErrorCode;
        }
        return errors;
    }

    /// <summary>
    /// What a produce is answered when its transaction check failed, as Kafka's ReplicaManager answers: a partition
    /// outside the transaction is INVALID_TXN_STATE (TRANSACTION_ABORTABLE from Produce v11, which clients abort and go
    /// on from); a fenced epoch is INVALID_PRODUCER_EPOCH; and a verification that could not be made (the coordinator
    /// unreachable, moving, loading, or busy ending the transaction) is NOT_ENOUGH_REPLICAS, which every client retries
    /// without a metadata refresh.
    /// </summary>
    internal static (ErrorCode Error, string? Message) ProduceError(ErrorCode check, short produceVersion) => check switch
    {
        ErrorCode.InvalidTxnState or ErrorCode.TransactionAbortable =>
            (produceVersion >= 11 ? ErrorCode.TransactionAbortable : ErrorCode.InvalidTxnState, NotAddedMessage),
        ErrorCode.ProducerFenced => (ErrorCode.InvalidProducerEpoch, null),
        ErrorCode.NetworkException => (ErrorCode.NotEnoughReplicas, Unverified("NETWORK_EXCEPTION")),
        ErrorCode.CoordinatorLoadInProgress => (ErrorCode.NotEnoughReplicas, Unverified("COORDINATOR_LOAD_IN_PROGRESS")),
        ErrorCode.CoordinatorNotAvailable => (ErrorCode.NotEnoughReplicas, Unverified("COORDINATOR_NOT_AVAILABLE")),
        ErrorCode.NotCoordinator => (ErrorCode.NotEnoughReplicas, Unverified("NOT_COORDINATOR")),
        ErrorCode.ConcurrentTransactions => (ErrorCode.NotEnoughReplicas, Unverified("CONCURRENT_TRANSACTIONS")),
        _ => (check, null),
    };

    /// <summary>
    /// What a TxnOffsetCommit is answered when its transaction check failed, as Kafka's group coordinator converts it:
    /// NETWORK_EXCEPTION (which older clients do not retry) becomes COORDINATOR_LOAD_IN_PROGRESS, retried at once; a
    /// fenced epoch is INVALID_PRODUCER_EPOCH; the rest as the coordinator said.
    /// </summary>
    internal static ErrorCode TxnOffsetCommitError(ErrorCode check) => check switch
    {
        ErrorCode.NetworkException => ErrorCode.CoordinatorLoadInProgress,
        ErrorCode.ProducerFenced => ErrorCode.InvalidProducerEpoch,
        _ => check,
    };

    private static string Unverified(string underlying) => $"Unable to verify the partition has been added to the transaction. Underlying error: {underlying}";

    /// <summary>A shard has loaded and published its ids.</summary>
    internal void ShardServing(int shard)
    {
        if (_shardServing is { } serving && (uint)shard < (uint)serving.Length) Volatile.Write(ref serving[shard], 1);
        Interlocked.Increment(ref _servingShards);
    }

    /// <summary>A shard that was serving has unpublished its ids.</summary>
    internal void ShardStopped(int shard)
    {
        if (_shardServing is { } serving && (uint)shard < (uint)serving.Length) Volatile.Write(ref serving[shard], 0);
        Interlocked.Decrement(ref _servingShards);
    }
}
