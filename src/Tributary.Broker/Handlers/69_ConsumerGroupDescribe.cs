using Tributary.Broker.Groups;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// ConsumerGroupDescribe v0 (KIP-848): epochs, assignor, and each member's current and target assignment. A classic
/// or unknown group gets GROUP_ID_NOT_FOUND, as in Kafka (clients then describe it with DescribeGroups). Needs DESCRIBE
/// on the group (GROUP_AUTHORIZATION_FAILED) and, as Kafka's current KafkaApis (not 3.9), DESCRIBE on every topic in
/// its members' assignments: a group naming a topic the caller may not describe is answered TOPIC_AUTHORIZATION_FAILED
/// with no members, so the assignment cannot reveal the topic's name.
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
            if (HasUndescribableTopic(context, group))
            {
                group = new ConsumerGroupDescribeResponse.DescribedGroup
                {
                    GroupId = id,
                    ErrorCode = (short)ErrorCode.TopicAuthorizationFailed,
                    ErrorMessage = "The group has described topic(s) that the client is not authorized to describe.",
                };
            }
            else if (request.IncludeAuthorizedOperations && group.ErrorCode == 0)
                group.AuthorizedOperations = context.AuthorizedOperations(AclResourceType.Group, id);
            response.Groups.Add(group);
        }
        return response;
    }

    private static bool HasUndescribableTopic(RequestContext context, ConsumerGroupDescribeResponse.DescribedGroup group) =>
        group.Members.Any(m => m.Assignment.TopicPartitions.Concat(m.TargetAssignment.TopicPartitions)
            .Any(tp => !context.AllowsTopic(AclOperation.Describe, tp.TopicName)));
}
