using Tributary.Broker.Groups;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// LeaveGroup v0-5: v0-2 one member id with a top-level error; v3+ a batch of members (member id and/or
/// group.instance.id, KIP-345) with an error each. Leaving triggers a rebalance of the remaining members.
/// </summary>
internal sealed class LeaveGroupHandler(GroupCoordinator coordinator) : ApiHandler<LeaveGroupRequest, LeaveGroupResponse>
{
    public override ApiKey Key => ApiKey.LeaveGroup;
    public override short MinVersion => 0;
    public override short MaxVersion => 5;

    protected override async ValueTask<LeaveGroupResponse?> HandleAsync(RequestContext context, LeaveGroupRequest request)
    {
        if (!context.AllowsGroup(AclOperation.Read, request.GroupId)) return new LeaveGroupResponse { ErrorCode = (short)ErrorCode.GroupAuthorizationFailed };
        var batched = context.ApiVersion >= 3;
        var leaving = batched
            ? request.Members.Select(m => (m.MemberId, m.GroupInstanceId)).ToList()
            : [(request.MemberId, (string?)null)];
        var (groupError, memberErrors) = await coordinator.LeaveGroupAsync(request.GroupId, leaving).ConfigureAwait(false);
        var response = new LeaveGroupResponse { ErrorCode = (short)groupError };
        if (!batched)
        {
            if (groupError == ErrorCode.None && memberErrors.Count == 1) response.ErrorCode = (short)memberErrors[0];
            return response;
        }
        for (var i = 0; i < memberErrors.Count; i++)
        {
            response.Members.Add(new LeaveGroupResponse.MemberResponse
            {
                MemberId = request.Members[i].MemberId,
                GroupInstanceId = request.Members[i].GroupInstanceId,
                ErrorCode = (short)memberErrors[i],
            });
        }
        return response;
    }
}
