using Tributary.Broker.Groups;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// OffsetDelete v0: deletes a group's committed offsets for some partitions. A partition of a topic that active
/// members subscribe to gets GROUP_SUBSCRIBED_TO_TOPIC; an unknown group GROUP_ID_NOT_FOUND.
/// </summary>
internal sealed class OffsetDeleteHandler(GroupCoordinator coordinator) : ApiHandler<OffsetDeleteRequest, OffsetDeleteResponse>
{
    public override ApiKey Key => ApiKey.OffsetDelete;
    public override short MinVersion => 0;
    public override short MaxVersion => 0;

    protected override async ValueTask<OffsetDeleteResponse?> HandleAsync(RequestContext context, OffsetDeleteRequest request)
    {
        // ACLs: DELETE on the group (else GROUP_AUTHORIZATION_FAILED), READ on each topic (else TOPIC_AUTHORIZATION_FAILED).
        if (!context.AllowsGroup(AclOperation.Delete, request.GroupId)) return new OffsetDeleteResponse { ErrorCode = (short)ErrorCode.GroupAuthorizationFailed };
        var partitions = request.Topics.Where(t => context.AllowsTopic(AclOperation.Read, t.Name))
            .SelectMany(t => t.Partitions.Select(p => (t.Name, p.PartitionIndex))).ToList();
        var (groupError, errors) = await coordinator.DeleteOffsetsAsync(request.GroupId, partitions).ConfigureAwait(false);
        var response = new OffsetDeleteResponse { ErrorCode = (short)groupError };
        if (groupError != ErrorCode.None) return response;
        var i = 0;
        foreach (var topic in request.Topics)
        {
            var t = new OffsetDeleteResponse.OffsetDeleteResponseTopic { Name = topic.Name };
            response.Topics.Add(t);
            var allowed = context.AllowsTopic(AclOperation.Read, topic.Name);
            foreach (var p in topic.Partitions)
                t.Partitions.Add(new OffsetDeleteResponse.OffsetDeleteResponsePartition
                {
                    PartitionIndex = p.PartitionIndex,
                    ErrorCode = allowed ? (short)errors[i++] : (short)ErrorCode.TopicAuthorizationFailed,
                });
        }
        return response;
    }
}
