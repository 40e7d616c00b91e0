using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Broker.Transactions;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// AddPartitionsToTxn v0-5. v0-3 (clients): one transaction's partitions join it. v4+ (KIP-890, sent by brokers in
/// Kafka) batch several transactions and may be verify-only: nothing changes, and partitions not in the open
/// transaction get INVALID_TXN_STATE. Errors per partition; an unknown partition fails the request with the others
/// OPERATION_NOT_ATTEMPTED. PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2.
/// </summary>
internal sealed class AddPartitionsToTxnHandler(TransactionCoordinator transactions) : ApiHandler<AddPartitionsToTxnRequest, AddPartitionsToTxnResponse>
{
    public override ApiKey Key => ApiKey.AddPartitionsToTxn;
    public override short MinVersion => 0;
    public override short MaxVersion => 5;

    protected override async ValueTask<AddPartitionsToTxnResponse?> HandleAsync(RequestContext context, AddPartitionsToTxnRequest request)
    {
        var version = context.ApiVersion;
        var response = new AddPartitionsToTxnResponse();
        if (version <= 3)
        {
            response.ResultsByTopicV3AndBelow = await AddAsync(context, request.V3AndBelowTransactionalId, request.V3AndBelowProducerId,
                request.V3AndBelowProducerEpoch, request.V3AndBelowTopics, verifyOnly: false).ConfigureAwait(false);
            return response;
        }
        // v4+ comes from brokers (KIP-890's verification): CLUSTER_ACTION on the cluster.
        if (!context.AllowsCluster(AclOperation.ClusterAction)) return new AddPartitionsToTxnResponse { ErrorCode = (short)ErrorCode.ClusterAuthorizationFailed };
        foreach (var txn in request.Transactions)
        {
            response.ResultsByTransaction.Add(new AddPartitionsToTxnResponse.AddPartitionsToTxnResult
            {
                TransactionalId = txn.TransactionalId,
                TopicResults = await AddAsync(context, txn.TransactionalId, txn.ProducerId, txn.ProducerEpoch, txn.Topics, txn.VerifyOnly).ConfigureAwait(false),
            });
        }
        return response;
    }

    /// <summary>
    /// ACLs, as Kafka: without WRITE on the transactional id every partition is TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    /// without WRITE on a topic its partitions are TOPIC_AUTHORIZATION_FAILED and nothing is added (the others are
    /// OPERATION_NOT_ATTEMPTED).
    /// </summary>
    private async Task<List<AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult>> AddAsync(RequestContext context, string transactionalId, long producerId,
        short epoch, List<AddPartitionsToTxnRequest.AddPartitionsToTxnTopic> topics, bool verifyOnly)
    {
        var version = context.ApiVersion;
        if (!context.AllowsTransactionalId(AclOperation.Write, transactionalId)) return Answer(topics, _ => ErrorCode.TransactionalIdAuthorizationFailed);
        if (topics.Any(t => !context.AllowsTopic(AclOperation.Write, t.Name)))
            return Answer(topics, t => context.AllowsTopic(AclOperation.Write, t) ? ErrorCode.OperationNotAttempted : ErrorCode.TopicAuthorizationFailed);
        var partitions = topics.SelectMany(t => t.Partitions.Select(p => (t.Name, p))).ToList();
        var (_, errors) = await transactions.AddPartitionsAsync(transactionalId, producerId, epoch, partitions, verifyOnly).ConfigureAwait(false);
        return [.. topics.Select(t => new AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult
        {
            Name = t.Name,
            ResultsByPartition = [.. t.Partitions.Select(p => new AddPartitionsToTxnResponse.AddPartitionsToTxnPartitionResult
            {
                PartitionIndex = p,
                PartitionErrorCode = (short)TransactionErrors.ForVersion(errors.GetValueOrDefault((t.Name, p)), version, fencedSince: 2),
            })],
        })];
    }

    private static List<AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult> Answer(List<AddPartitionsToTxnRequest.AddPartitionsToTxnTopic> topics,
        Func<string, ErrorCode> error) =>
        [.. topics.Select(t => new AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult
        {
            Name = t.Name,
            ResultsByPartition = [.. t.Partitions.Select(p => new AddPartitionsToTxnResponse.AddPartitionsToTxnPartitionResult { PartitionIndex = p, PartitionErrorCode = (short)error(t.Name) })],
        })];
}
