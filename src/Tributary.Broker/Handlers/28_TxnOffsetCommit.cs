using Tributary.Broker.Groups;
using Tributary.Broker.Metadata;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Broker.Transactions;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// TxnOffsetCommit v0-5 (v5 has v4's fields and means transaction version 2), served by the group's coordinator as in Kafka (KIP-98): the offsets are appended to the
/// group's partition of <c>__consumer_offsets</c> as a transactional batch of the producer and stay pending until the
/// transaction's marker lands there (AddOffsetsToTxn made that partition one of the transaction's), which commits or
/// drops them. Checked: from v3 the member id and generation against the group (KIP-447: a zombie consumer's producer
/// is refused); the producer epoch against the newest the group's partition has seen for the producer id; and, as
/// Produce is (KIP-890), against the transaction — the partition must be in the producer's open transaction: read here
/// when this broker coordinates the transactional id, else asked of the broker that does (once per transaction; an
/// unreachable coordinator is COORDINATOR_LOAD_IN_PROGRESS, retried). A fenced producer gets INVALID_PRODUCER_EPOCH in
/// every version: Kafka checks the epoch where it appends, and never answers PRODUCER_FENCED here. A partition of a topic that does not exist gets
/// UNKNOWN_TOPIC_OR_PARTITION and is not written; the rest go on, as in Kafka. Metadata longer than
/// offset.metadata.max.bytes: OFFSET_METADATA_TOO_LARGE for that partition.
/// </summary>
internal sealed class TxnOffsetCommitHandler(TransactionCoordinator transactions, GroupCoordinator groups, TopicCatalog topics) : ApiHandler<TxnOffsetCommitRequest, TxnOffsetCommitResponse>
{
    public override ApiKey Key => ApiKey.TxnOffsetCommit;
    public override short MinVersion => 0;
    public override short MaxVersion => 5;

    protected override async ValueTask<TxnOffsetCommitResponse?> HandleAsync(RequestContext context, TxnOffsetCommitRequest request)
    {
        // ACLs: WRITE on the transactional id, then READ on the group (either refused answers every partition), READ on each topic.
        var refused = !context.AllowsTransactionalId(AclOperation.Write, request.TransactionalId) ? ErrorCode.TransactionalIdAuthorizationFailed
            : !context.AllowsGroup(AclOperation.Read, request.GroupId) ? ErrorCode.GroupAuthorizationFailed : ErrorCode.None;
        var offsets = refused != ErrorCode.None ? [] : request.Topics.Where(t => context.AllowsTopic(AclOperation.Read, t.Name))
            .SelectMany(t => t.Partitions.Where(p => topics.HasPartition(t.Name, p.PartitionIndex)).Select(p =>
            new OffsetToCommit(t.Name, p.PartitionIndex, p.CommittedOffset, p.CommittedLeaderEpoch, p.CommittedMetadata, -1))).ToList();
        var groupError = ErrorCode.None;
        var partitionErrors = new List<ErrorCode>();
        if (offsets.Count > 0)
        {
            groupError = TransactionCoordinator.TxnOffsetCommitError(await VerifyAsync(request, context.ApiVersion >= 5 && transactions.Settings.Version2, context.Cancellation).ConfigureAwait(false));
            if (groupError == ErrorCode.None)
            {
                (groupError, partitionErrors) = await groups.CommitTransactionalOffsetsAsync(new TransactionalCommit(request.GroupId, request.ProducerId,
                    request.ProducerEpoch, request.GenerationId, request.MemberId, request.GroupInstanceId, CheckMember: context.ApiVersion >= 3, offsets)).ConfigureAwait(false);
            }
        }
        var answers = new Dictionary<(string, int), ErrorCode>();
        for (var i = 0; i < offsets.Count; i++)
        {
            var error = groupError != ErrorCode.None ? groupError : i < partitionErrors.Count ? partitionErrors[i] : ErrorCode.None;
            answers[(offsets[i].Topic, offsets[i].Partition)] = error == ErrorCode.ProducerFenced ? ErrorCode.InvalidProducerEpoch : error;
        }
        return new TxnOffsetCommitResponse
        {
            Topics = [.. request.Topics.Select(t => new TxnOffsetCommitResponse.TxnOffsetCommitResponseTopic
            {
                Name = t.Name,
                Partitions = [.. t.Partitions.Select(p => new TxnOffsetCommitResponse.TxnOffsetCommitResponsePartition
                {
                    PartitionIndex = p.PartitionIndex,
                    ErrorCode = (short)(refused != ErrorCode.None ? refused
                        : !context.AllowsTopic(AclOperation.Read, t.Name) ? ErrorCode.TopicAuthorizationFailed
                        : answers.GetValueOrDefault((t.Name, p.PartitionIndex), ErrorCode.UnknownTopicOrPartition)),
                })],
            })],
        };
    }

    /// <summary>
    /// KIP-890 for the group's partition of <c>__consumer_offsets</c>: the producer's open transaction must hold it
    /// (AddOffsetsToTxn put it there). Checked here when this broker coordinates the transactional id; otherwise the
    /// transaction coordinator is asked (verify-only AddPartitionsToTxn), unless that partition's log already holds the
    /// producer's open transaction under this epoch (an earlier TxnOffsetCommit of the same transaction was verified).
    /// v5 with transaction version 2 (KIP-890 part 2): the client sends no AddOffsetsToTxn, so the partition is added to
    /// the transaction instead of verified.
    /// </summary>
    private async ValueTask<ErrorCode> VerifyAsync(TxnOffsetCommitRequest request, bool add, CancellationToken cancellationToken)
    {
        var partition = groups.PartitionFor(request.GroupId);
        var error = transactions.CheckTransactionalWrite(request.TransactionalId, request.ProducerId, request.ProducerEpoch, GroupSettings.OffsetsTopic, partition,
            out var coordinator);
        if (add && error == ErrorCode.InvalidTxnState && coordinator < 0) (error, coordinator) = (ErrorCode.None, TransactionCoordinator.LocalCoordinator);
        if (error != ErrorCode.None || coordinator == -1) return error;
        if (topics.GetPartition(GroupSettings.OffsetsTopic, partition) is { } log && log.HasOngoingTransaction(request.ProducerId, request.ProducerEpoch))
            return ErrorCode.None;
        var errors = await transactions.AddOrVerifyAsync(coordinator, add, request.TransactionalId, request.ProducerId, request.ProducerEpoch,
            [(GroupSettings.OffsetsTopic, partition)], cancellationToken).ConfigureAwait(false);
        return errors[0];
    }
}
