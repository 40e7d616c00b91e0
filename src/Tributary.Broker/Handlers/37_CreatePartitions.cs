using Tributary.Broker.Metadata;
using Tributary.Broker.Network;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>CreatePartitions v0-3: grows a topic to a larger partition count (never shrinks), with validate_only.</summary>
public sealed class CreatePartitionsHandler(BrokerState broker) : ApiHandler<CreatePartitionsRequest, CreatePartitionsResponse>
{
    public override ApiKey Key => ApiKey.CreatePartitions;
    public override short MinVersion => 0;
    public override short MaxVersion => 3;

    protected override ValueTask<CreatePartitionsResponse?> HandleAsync(RequestContext context, CreatePartitionsRequest request)
    {
        var response = new CreatePartitionsResponse();
        foreach (var t in request.Topics)
        {
            var result = new CreatePartitionsResponse.CreatePartitionsTopicResult { Name = t.Name };
            response.Results.Add(result);
            var topic = broker.Topics.Get(t.Name);
            if (topic is null)
            {
                result.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                result.ErrorMessage = $"The topic '{t.Name}' does not exist.";
            }
            else if (InternalTopics.IsOwned(topic))
            {
                // A group's or transactional id's partition is its hash modulo the count: more partitions would strand their state.
                result.ErrorCode = (short)ErrorCode.PolicyViolation;
                result.ErrorMessage = $"Topic {topic.Name} is an internal topic; its partition count cannot change.";
            }
            else if (t.Count <= topic.PartitionCount)
            {
                result.ErrorCode = (short)ErrorCode.InvalidPartitions;
                result.ErrorMessage = t.Count == topic.PartitionCount
                    ? $"Topic already has {topic.PartitionCount} partitions."
                    : $"The topic {t.Name} currently has {topic.PartitionCount} partition(s); {t.Count} would not be an increase.";
            }
            else if (t.Assignments is { } assignments && (assignments.Count != t.Count - topic.PartitionCount || assignments.Any(a => a.BrokerIds.Any(b => b != broker.NodeId))))
            {
                result.ErrorCode = (short)ErrorCode.InvalidReplicaAssignment;
                result.ErrorMessage = $"Replica assignments must list one entry per new partition naming only broker {broker.NodeId}.";
            }
            else if (!request.ValidateOnly)
            {
                broker.Topics.AddPartitions(topic, t.Count);
            }
        }
        return new(response);
    }
}
