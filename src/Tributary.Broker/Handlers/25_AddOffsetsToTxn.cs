using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Broker.Transactions;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// AddOffsetsToTxn v0-4: the group's offsets (sent next with TxnOffsetCommit, to the group's coordinator) commit or
/// abort with the transaction. As in Kafka, the group's partition of __consumer_offsets joins the transaction's
/// partitions, so the transaction's marker is written there as well and commits or drops those offsets.
/// PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2.
/// </summary>
internal sealed class AddOffsetsToTxnHandler(TransactionCoordinator transactions) : ApiHandler<AddOffsetsToTxnRequest, AddOffsetsToTxnResponse>
{
    public override ApiKey Key => ApiKey.AddOffsetsToTxn;
    public override short MinVersion => 0;
    public override short MaxVersion => 4;

    protected override async ValueTask<AddOffsetsToTxnResponse?> HandleAsync(RequestContext context, AddOffsetsToTxnRequest request)
    {
        // ACLs: WRITE on the transactional id, READ on the group.
        if (!context.AllowsTransactionalId(AclOperation.Write, request.TransactionalId))
            return new AddOffsetsToTxnResponse { ErrorCode = (short)ErrorCode.TransactionalIdAuthorizationFailed };
        if (!context.AllowsGroup(AclOperation.Read, request.GroupId)) return new AddOffsetsToTxnResponse { ErrorCode = (short)ErrorCode.GroupAuthorizationFailed };
        var error = await transactions.AddOffsetsAsync(request.TransactionalId, request.ProducerId, request.ProducerEpoch, request.GroupId).ConfigureAwait(false);
        return new AddOffsetsToTxnResponse { ErrorCode = (short)TransactionErrors.ForVersion(error, context.ApiVersion, fencedSince: 2) };
    }
}
