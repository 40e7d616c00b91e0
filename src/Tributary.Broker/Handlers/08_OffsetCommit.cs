using Tributary.Broker.Groups;
using Tributary.Broker.Metadata;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// OffsetCommit v0-9. v0 has no generation (a standalone commit); v1 adds generation, member id and a per-partition
/// commit timestamp; v2-4 a retention time (accepted, not applied: offsets are kept until deleted); v6+ the leader
/// epoch; v7+ group.instance.id; v9 carries a KIP-848 member epoch in the generation field. Generation -1 with an
/// empty member id is the commit of an assign()-only consumer, allowed while the group has no members. The response
/// waits for the append to __consumer_offsets. A partition of a topic that does not exist (or beyond its partition
/// count) gets UNKNOWN_TOPIC_OR_PARTITION and is not stored, as Kafka checks its metadata before the coordinator; the
/// rest are committed.
/// </summary>
internal sealed class OffsetCommitHandler(GroupCoordinator coordinator, TopicCatalog topics) : ApiHandler<OffsetCommitRequest, OffsetCommitResponse>
{
    public override ApiKey Key => ApiKey.OffsetCommit;
    public override short MinVersion => 0;
    public override short MaxVersion => 9;

    protected override async ValueTask<OffsetCommitResponse?> HandleAsync(RequestContext context, OffsetCommitRequest request)
    {
        // ACLs: READ on the group (else every partition is GROUP_AUTHORIZATION_FAILED), READ on each topic.
        var groupAllowed = context.AllowsGroup(AclOperation.Read, request.GroupId);
        var offsets = new List<OffsetToCommit>();
        foreach (var topic in request.Topics)
            foreach (var p in topic.Partitions)
                if (groupAllowed && context.AllowsTopic(AclOperation.Read, topic.Name) && topics.HasPartition(topic.Name, p.PartitionIndex))
                    offsets.Add(new OffsetToCommit(topic.Name, p.PartitionIndex, p.CommittedOffset, p.CommittedLeaderEpoch, p.CommittedMetadata,
                        context.ApiVersion == 1 ? p.CommitTimestamp : -1));
        var (groupError, errors) = (ErrorCode.None, new List<ErrorCode>());
        if (offsets.Count > 0)
        {
            var generation = context.ApiVersion == 0 ? -1 : request.GenerationIdOrMemberEpoch;
            (groupError, errors) = await coordinator.CommitOffsetsAsync(request.GroupId, generation, request.MemberId, request.GroupInstanceId, offsets)
                .ConfigureAwait(false);
        }
        var response = new OffsetCommitResponse();
        var i = 0;
        foreach (var topic in request.Topics)
        {
            var t = new OffsetCommitResponse.OffsetCommitResponseTopic { Name = topic.Name };
            response.Topics.Add(t);
            foreach (var p in topic.Partitions)
            {
                ErrorCode error;
                if (!groupAllowed) error = ErrorCode.GroupAuthorizationFailed;
                else if (!context.AllowsTopic(AclOperation.Read, topic.Name)) error = ErrorCode.TopicAuthorizationFailed;
                else if (!topics.HasPartition(topic.Name, p.PartitionIndex)) error = ErrorCode.UnknownTopicOrPartition;
                else error = groupError != ErrorCode.None ? groupError : errors[i++];
                t.Partitions.Add(new OffsetCommitResponse.OffsetCommitResponsePartition { PartitionIndex = p.PartitionIndex, ErrorCode = (short)error });
            }
        }
        return response;
    }
}
