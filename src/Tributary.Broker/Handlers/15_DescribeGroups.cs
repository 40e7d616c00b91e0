using Tributary.Broker.Groups;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// DescribeGroups v0-5: state, protocol type, and members (id, instance id v4+, client id and host); a Stable group
/// also reports the protocol and each member's metadata and assignment, as Kafka does. An unknown group is reported
/// as Dead without an error. Authorized operations are not computed (no ACLs yet).
/// </summary>
internal sealed class DescribeGroupsHandler(GroupCoordinator coordinator) : ApiHandler<DescribeGroupsRequest, DescribeGroupsResponse>
{
    public override ApiKey Key => ApiKey.DescribeGroups;
    public override short MinVersion => 0;
    public override short MaxVersion => 5;

    protected override async ValueTask<DescribeGroupsResponse?> HandleAsync(RequestContext context, DescribeGroupsRequest request)
    {
        var response = new DescribeGroupsResponse();
        foreach (var id in request.Groups)
        {
            if (!context.AllowsGroup(AclOperation.Describe, id))
            {
                response.Groups.Add(new DescribeGroupsResponse.DescribedGroup { GroupId = id, ErrorCode = (short)ErrorCode.GroupAuthorizationFailed });
                continue;
            }
            var (error, group) = await coordinator.DescribeAsync(id).ConfigureAwait(false);
            if (error != ErrorCode.None)
            {
                response.Groups.Add(new DescribeGroupsResponse.DescribedGroup { GroupId = id, ErrorCode = (short)error });
                continue;
            }
            response.Groups.Add(group is null
                ? new DescribeGroupsResponse.DescribedGroup { GroupId = id, GroupState = "Dead" }
                : new DescribeGroupsResponse.DescribedGroup
                {
                    GroupId = id,
                    GroupState = group.State,
                    ProtocolType = group.ProtocolType,
                    ProtocolData = group.Protocol,
                    Members = [.. group.Members.Select(m => new DescribeGroupsResponse.DescribedGroupMember
                    {
                        MemberId = m.MemberId,
                        GroupInstanceId = m.InstanceId,
                        ClientId = m.ClientId,
                        ClientHost = m.ClientHost,
                        MemberMetadata = m.Metadata,
                        MemberAssignment = m.Assignment,
                    })],
                });
        }
        if (request.IncludeAuthorizedOperations && context.ApiVersion >= 3)
            foreach (var g in response.Groups.Where(g => g.ErrorCode == 0))
                g.AuthorizedOperations = context.AuthorizedOperations(AclResourceType.Group, g.GroupId);
        return response;
    }
}
