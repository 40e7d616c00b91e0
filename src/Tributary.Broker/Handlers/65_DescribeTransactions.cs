using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Broker.Transactions;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// DescribeTransactions v0: state, producer id and epoch, timeout, start time and partitions of each id; unknown ids get
/// TRANSACTIONAL_ID_NOT_FOUND, and ids whose coordinator shard is loading (or failed to load) or not hosted here get
/// COORDINATOR_LOAD_IN_PROGRESS or NOT_COORDINATOR.
/// </summary>
internal sealed class DescribeTransactionsHandler(TransactionCoordinator transactions) : ApiHandler<DescribeTransactionsRequest, DescribeTransactionsResponse>
{
    public override ApiKey Key => ApiKey.DescribeTransactions;
    public override short MinVersion => 0;
    public override short MaxVersion => 0;

    protected override async ValueTask<DescribeTransactionsResponse?> HandleAsync(RequestContext context, DescribeTransactionsRequest request)
    {
        var found = (await transactions.DescribeAsync(request.TransactionalIds).ConfigureAwait(false)).ToDictionary(d => d.TransactionalId);
        var response = new DescribeTransactionsResponse();
        foreach (var id in request.TransactionalIds)
        {
            // ACLs: DESCRIBE on the transactional id; only partitions of topics the principal may DESCRIBE are shown.
            if (!context.AllowsTransactionalId(AclOperation.Describe, id))
            {
                response.TransactionStates.Add(new DescribeTransactionsResponse.TransactionStateData { TransactionalId = id, ErrorCode = (short)ErrorCode.TransactionalIdAuthorizationFailed });
                continue;
            }
            if (!found.TryGetValue(id, out var d) || d.Error != ErrorCode.None)
            {
                var error = d?.Error ?? ErrorCode.TransactionalIdNotFound;
                response.TransactionStates.Add(new DescribeTransactionsResponse.TransactionStateData { TransactionalId = id, ErrorCode = (short)error });
                continue;
            }
            response.TransactionStates.Add(new DescribeTransactionsResponse.TransactionStateData
            {
                TransactionalId = id,
                TransactionState = d.State.ToString(),
                TransactionTimeoutMs = d.TimeoutMs,
                TransactionStartTimeMs = d.StartTimeMs,
                ProducerId = d.ProducerId,
                ProducerEpoch = d.Epoch,
                Topics = [.. d.Partitions.Where(p => context.AllowsTopic(AclOperation.Describe, p.Topic)).GroupBy(p => p.Topic).Select(g => new DescribeTransactionsResponse.TopicData { Topic = g.Key, Partitions = [.. g.Select(p => p.Partition)] })],
            });
        }
        return response;
    }
}
