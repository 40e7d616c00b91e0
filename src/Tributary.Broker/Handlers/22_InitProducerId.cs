using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Broker.Transactions;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// InitProducerId v0-5 (v0 is advertised because librdkafka up to 2.11 enables idempotence only when it is).
/// Without a transactional id: a fresh producer id at epoch 0. With one: the transaction coordinator bumps the id's
/// epoch, aborting an open transaction and fencing older instances; v3+ may carry the current producer id and epoch
/// for a KIP-360 recovery bump. PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v4 (KIP-588).
/// </summary>
internal sealed class InitProducerIdHandler(TransactionCoordinator transactions) : ApiHandler<InitProducerIdRequest, InitProducerIdResponse>
{
    public override ApiKey Key => ApiKey.InitProducerId;
    public override short MinVersion => 0;
    public override short MaxVersion => 5;

    protected override async ValueTask<InitProducerIdResponse?> HandleAsync(RequestContext context, InitProducerIdRequest request)
    {
        // ACLs: WRITE on the transactional id; an idempotent producer needs IDEMPOTENT_WRITE on the cluster or WRITE on
        // some topic (KIP-679), as Kafka checks.
        var refused = request.TransactionalId is { } id
            ? context.AllowsTransactionalId(AclOperation.Write, id) ? ErrorCode.None : ErrorCode.TransactionalIdAuthorizationFailed
            : context.AllowsCluster(AclOperation.IdempotentWrite) || context.AllowsAny(AclOperation.Write, AclResourceType.Topic) ? ErrorCode.None
            : ErrorCode.ClusterAuthorizationFailed;
        if (refused != ErrorCode.None) return new InitProducerIdResponse { ErrorCode = (short)refused, ProducerId = -1, ProducerEpoch = -1 };
        var (error, producerId, epoch) = await transactions.InitProducerIdAsync(request.TransactionalId, request.TransactionTimeoutMs, request.ProducerId, request.ProducerEpoch).ConfigureAwait(false);
        return new InitProducerIdResponse
        {
            ErrorCode = (short)TransactionErrors.ForVersion(error, context.ApiVersion, fencedSince: 4),
            ProducerId = producerId,
            ProducerEpoch = epoch,
        };
    }
}
