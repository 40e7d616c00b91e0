using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Broker.Transactions;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// EndTxn v0-5: commit or abort. Answered once the decision is durable and the markers and staged offsets are
/// written (Kafka answers after the decision and writes markers afterwards; answering later costs a little latency
/// and means a committed transaction is already visible to read_committed consumers when the producer hears back).
/// A retry of a finished end succeeds. PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2. v5 is transaction version
/// 2 (KIP-890 part 2; when transaction.version is 2): every end bumps the epoch and the response carries the producer id
/// and epoch to go on with; before v5 the response repeats the request's.
/// </summary>
internal sealed class EndTxnHandler(TransactionCoordinator transactions) : ApiHandler<EndTxnRequest, EndTxnResponse>
{
    public override ApiKey Key => ApiKey.EndTxn;
    public override short MinVersion => 0;
    public override short MaxVersion => 5;

    protected override async ValueTask<EndTxnResponse?> HandleAsync(RequestContext context, EndTxnRequest request)
    {
        if (!context.AllowsTransactionalId(AclOperation.Write, request.TransactionalId))
            return new EndTxnResponse { ErrorCode = (short)ErrorCode.TransactionalIdAuthorizationFailed, ProducerId = -1, ProducerEpoch = -1 };
        var bump = context.ApiVersion >= 5 && transactions.Settings.Version2;
        var (error, producerId, epoch) = await transactions.EndTxnAsync(request.TransactionalId, request.ProducerId, request.ProducerEpoch, request.Committed, bump)
            .ConfigureAwait(false);
        return new EndTxnResponse
        {
            ErrorCode = (short)TransactionErrors.ForVersion(error, context.ApiVersion, fencedSince: 2),
            ProducerId = bump ? producerId : request.ProducerId,
            ProducerEpoch = bump ? epoch : request.ProducerEpoch,
        };
    }
}
