using Tributary.Broker.Groups;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// ConsumerGroupDescribe v0 (KIP-848): epochs, assignor, and each member's current and target assignment. A classic
/// or unknown group gets GROUP_ID_NOT_FOUND, as in Kafka (clients then describe it with DescribeGroups).
/// </summary>
internal sealed class ConsumerGroupDescribeHandler(GroupCoordinator coordinator) : ApiHandler<ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse>
{
    public override ApiKey Key => ApiKey.ConsumerGroupDescribe;
    public override short MinVersion => 0;
    public override short MaxVersion => 0;

    protected override async ValueTask<ConsumerGroupDescribeResponse?> HandleAsync(RequestContext context, ConsumerGroupDescribeRequest request)
    {
        var response = new ConsumerGroupDescribeResponse();
        foreach (var id in request.GroupIds)
        {
            if (!context.AllowsGroup(AclOperation.Describe, id))
            {
                response.Groups.Add(new ConsumerGroupDescribeResponse.DescribedGroup { GroupId = id, ErrorCode = (short)ErrorCode.GroupAuthorizationFailed });
                continue;
            }
            var group = await coordinator.DescribeConsumerGroupAsync(id).ConfigureAwait(false);
            if (request.IncludeAuthorizedOperations && group.ErrorCode == 0) group.AuthorizedOperations = context.AuthorizedOperations(AclResourceType.Group, id);
            response.Groups.Add(group);
        }
        return response;
    }
}
