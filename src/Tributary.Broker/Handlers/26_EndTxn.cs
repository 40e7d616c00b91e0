using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Broker.Transactions;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// EndTxn v0-5: commit or abort. Answered once the decision is durable and the markers and staged offsets are
/// written (Kafka answers after the decision and writes markers afterwards; answering later costs a little latency
/// and means a committed transaction is already visible to read_committed consumers when the producer hears back).
/// A retry of a finished end succeeds. PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2. Not implemented: the
/// KIP-890 v5 epoch bump on every end (the response repeats the current producer id and epoch).
/// </summary>
internal sealed class EndTxnHandler(TransactionCoordinator transactions) : ApiHandler<EndTxnRequest, EndTxnResponse>
{
    public override ApiKey Key => ApiKey.EndTxn;
    public override short MinVersion => 0;
    public override short MaxVersion => 4;

    protected override async ValueTask<EndTxnResponse?> HandleAsync(RequestContext context, EndTxnRequest request)
    {
        if (!context.AllowsTransactionalId(AclOperation.Write, request.TransactionalId))
            return new EndTxnResponse { ErrorCode = (short)ErrorCode.TransactionalIdAuthorizationFailed, ProducerId = -1, ProducerEpoch = -1 };
        var error = await transactions.EndTxnAsync(request.TransactionalId, request.ProducerId, request.ProducerEpoch, request.Committed).ConfigureAwait(false);
        return new EndTxnResponse
        {
            ErrorCode = (short)TransactionErrors.ForVersion(error, context.ApiVersion, fencedSince: 2),
            ProducerId = request.ProducerId,
            ProducerEpoch = request.ProducerEpoch,
        };
    }
}
