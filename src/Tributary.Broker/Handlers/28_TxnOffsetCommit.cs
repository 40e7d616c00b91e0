using Tributary.Broker.Groups;
using Tributary.Broker.Metadata;
using Tributary.Broker.Network;
using Tributary.Broker.Transactions;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// TxnOffsetCommit v0-4: offsets staged in the transaction (after AddOffsetsToTxn for the group) and committed to
/// the group only if the transaction commits. The producer's id and epoch are checked against the transaction, and
/// from v3 the member id and generation against the group (KIP-447: a zombie consumer's producer is refused).
/// A fenced producer gets INVALID_PRODUCER_EPOCH in every version: Kafka checks the epoch where it appends the staged
/// offsets, and never answers PRODUCER_FENCED here. A partition of a topic that does not exist gets
/// UNKNOWN_TOPIC_OR_PARTITION and is not staged; the rest go on, as in Kafka.
/// </summary>
internal sealed class TxnOffsetCommitHandler(TransactionCoordinator transactions, GroupCoordinator groups, TopicCatalog topics) : ApiHandler<TxnOffsetCommitRequest, TxnOffsetCommitResponse>
{
    public override ApiKey Key => ApiKey.TxnOffsetCommit;
    public override short MinVersion => 0;
    public override short MaxVersion => 4;

    protected override async ValueTask<TxnOffsetCommitResponse?> HandleAsync(RequestContext context, TxnOffsetCommitRequest request)
    {
        var offsets = request.Topics.SelectMany(t => t.Partitions.Where(p => topics.HasPartition(t.Name, p.PartitionIndex)).Select(p =>
            new OffsetToCommit(t.Name, p.PartitionIndex, p.CommittedOffset, p.CommittedLeaderEpoch, p.CommittedMetadata, -1))).ToList();
        var partitions = offsets.Select(o => (o.Topic, o.Partition)).ToList();
        var error = ErrorCode.None;
        if (offsets.Count > 0)
        {
            error = await groups.BeginTransactionalCommitAsync(request.GroupId, request.GenerationId, request.MemberId, request.GroupInstanceId,
                partitions, checkMember: context.ApiVersion >= 3).ConfigureAwait(false);
        }
        if (error == ErrorCode.None && offsets.Count > 0)
        {
            try
            {
                error = await transactions.TxnOffsetCommitAsync(request.TransactionalId, request.GroupId, request.ProducerId, request.ProducerEpoch, offsets).ConfigureAwait(false);
            }
            finally
            {
                groups.EndTransactionalCommit(request.GroupId, partitions);
            }
        }
        var code = (short)(error == ErrorCode.ProducerFenced ? ErrorCode.InvalidProducerEpoch : error);
        return new TxnOffsetCommitResponse
        {
            Topics = [.. request.Topics.Select(t => new TxnOffsetCommitResponse.TxnOffsetCommitResponseTopic
            {
                Name = t.Name,
                Partitions = [.. t.Partitions.Select(p => new TxnOffsetCommitResponse.TxnOffsetCommitResponsePartition
                {
                    PartitionIndex = p.PartitionIndex,
                    ErrorCode = topics.HasPartition(t.Name, p.PartitionIndex) ? code : (short)ErrorCode.UnknownTopicOrPartition,
                })],
            })],
        };
    }
}
