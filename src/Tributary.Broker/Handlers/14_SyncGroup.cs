using Tributary.Broker.Groups;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// SyncGroup v0-5: the leader brings the assignment it computed; every member's SyncGroup is answered with its own
/// share once the assignment is stored in __consumer_offsets. In a Stable group it returns the current assignment.
/// v5 checks protocol type and name (INCONSISTENT_GROUP_PROTOCOL).
/// </summary>
internal sealed class SyncGroupHandler(GroupCoordinator coordinator) : ApiHandler<SyncGroupRequest, SyncGroupResponse>
{
    public override ApiKey Key => ApiKey.SyncGroup;
    public override short MinVersion => 0;
    public override short MaxVersion => 5;

    protected override async ValueTask<SyncGroupResponse?> HandleAsync(RequestContext context, SyncGroupRequest request) =>
        !context.AllowsGroup(AclOperation.Read, request.GroupId) ? new SyncGroupResponse { ErrorCode = (short)ErrorCode.GroupAuthorizationFailed, Assignment = [] }
        : await coordinator.SyncGroupAsync(request).ConfigureAwait(false);
}
