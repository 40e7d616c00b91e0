using Tributary.Broker.Groups;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// Heartbeat v0-4: keeps a classic member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin,
/// ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID / FENCED_INSTANCE_ID that it is out of the group.
/// </summary>
internal sealed class HeartbeatHandler(GroupCoordinator coordinator) : ApiHandler<HeartbeatRequest, HeartbeatResponse>
{
    public override ApiKey Key => ApiKey.Heartbeat;
    public override short MinVersion => 0;
    public override short MaxVersion => 4;

    protected override async ValueTask<HeartbeatResponse?> HandleAsync(RequestContext context, HeartbeatRequest request)
    {
        if (!context.AllowsGroup(AclOperation.Read, request.GroupId)) return new HeartbeatResponse { ErrorCode = (short)ErrorCode.GroupAuthorizationFailed };
        var error = await coordinator.HeartbeatAsync(request.GroupId, request.MemberId, request.GroupInstanceId, request.GenerationId).ConfigureAwait(false);
        return new HeartbeatResponse { ErrorCode = (short)error };
    }
}
