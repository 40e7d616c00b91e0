using Tributary.Broker.Groups;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// ConsumerGroupHeartbeat v0-1 (KIP-848): join (epoch 0), heartbeat, leave (-1, or -2 for a static member) of the
/// next-generation consumer protocol; the broker computes the assignment (uniform or range server assignor) and
/// hands it out as members release partitions. v0 the broker generates member ids; v1 clients bring their own and
/// may subscribe by regex (resolved off the heartbeat, as Kafka does: GroupShard.Regex.cs). Fields left null mean
/// "unchanged since the last heartbeat".
/// </summary>
internal sealed class ConsumerGroupHeartbeatHandler(GroupCoordinator coordinator) : ApiHandler<ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse>
{
    public override ApiKey Key => ApiKey.ConsumerGroupHeartbeat;
    public override short MinVersion => 0;
    public override short MaxVersion => 1;

    protected override async ValueTask<ConsumerGroupHeartbeatResponse?> HandleAsync(RequestContext context, ConsumerGroupHeartbeatRequest request)
    {
        // ACLs: READ on the group; DESCRIBE on every topic subscribed to by name (a client may not learn of others).
        if (!context.AllowsGroup(AclOperation.Read, request.GroupId))
            return new ConsumerGroupHeartbeatResponse { ErrorCode = (short)ErrorCode.GroupAuthorizationFailed, HeartbeatIntervalMs = 0 };
        if (request.SubscribedTopicNames is { Count: > 0 } names && !names.All(n => context.AllowsTopic(AclOperation.Describe, n)))
            return new ConsumerGroupHeartbeatResponse { ErrorCode = (short)ErrorCode.TopicAuthorizationFailed, HeartbeatIntervalMs = 0 };
        var owned = request.TopicPartitions?.ToDictionary(t => t.TopicId, t => (IReadOnlyList<int>)t.Partitions);
        var heartbeat = new ConsumerHeartbeat(request.GroupId, request.MemberId, request.MemberEpoch, request.InstanceId, request.RackId,
            request.RebalanceTimeoutMs, request.SubscribedTopicNames, request.SubscribedTopicRegex, request.ServerAssignor, owned, context.Client());
        return await coordinator.ConsumerHeartbeatAsync(heartbeat).ConfigureAwait(false);
    }
}
