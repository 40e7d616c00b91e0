using Tributary.Broker.Cluster;
using Tributary.Broker.Metadata;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;
using Tributary.Storage;

namespace Tributary.Broker.Handlers;

/// <summary>
/// CreatePartitions v0-3: grows a topic to a larger partition count (never shrinks), with validate_only. Limits:
/// max.broker.partitions (POLICY_VIOLATION) and the controller mutation quota (THROTTLING_QUOTA_EXCEEDED from v3).
/// </summary>
internal sealed class CreatePartitionsHandler(BrokerState broker) : ApiHandler<CreatePartitionsRequest, CreatePartitionsResponse>
{
    public override ApiKey Key => ApiKey.CreatePartitions;
    public override short MinVersion => 0;
    public override short MaxVersion => 3;

    /// <summary>From v3 the controller mutation quota refuses (KIP-599).</summary>
    private const short StrictQuotaVersion = 3;

    protected override async ValueTask<CreatePartitionsResponse?> HandleAsync(RequestContext context, CreatePartitionsRequest request)
    {
        var response = new CreatePartitionsResponse();
        foreach (var t in request.Topics)
        {
            var result = new CreatePartitionsResponse.CreatePartitionsTopicResult { Name = t.Name };
            response.Results.Add(result);
            var topic = broker.Topics.Get(t.Name);
            if (!context.AllowsTopic(AclOperation.Alter, t.Name))
            {
                result.ErrorCode = (short)ErrorCode.TopicAuthorizationFailed;
                result.ErrorMessage = "Authorization failed.";
            }
            else if (topic is null)
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
            else if (t.Assignments is { } assignments && assignments.Count != t.Count - topic.PartitionCount)
            {
                result.ErrorCode = (short)ErrorCode.InvalidReplicaAssignment;
                result.ErrorMessage = $"Increasing the number of partitions by {t.Count - topic.PartitionCount} but {assignments.Count} assignments provided.";
            }
            else if (t.Assignments is { } given && TopicCreator.AssignmentProblem([.. given.Select(a => a.BrokerIds.ToArray())], broker.Topics.Image) is { } problem)
            {
                result.ErrorCode = (short)ErrorCode.InvalidReplicaAssignment;
                result.ErrorMessage = problem;
            }
            else if (t.Assignments is { } sized && sized.Any(a => a.BrokerIds.Count != topic.Partitions[0].Replicas.Length))
            {
                result.ErrorCode = (short)ErrorCode.InvalidReplicaAssignment;
                result.ErrorMessage = $"The manual partition assignment must have {topic.Partitions[0].Replicas.Length} replica(s) per partition, as the topic's partitions have.";
            }
            else if (Limit(topic.PartitionCount, t.Count) is { } policy)
            {
                result.ErrorCode = (short)ErrorCode.PolicyViolation;
                result.ErrorMessage = policy;
            }
            else if (!request.ValidateOnly)
            {
                var throttle = broker.MutationQuota.ThrottleTimeMs(context.Principal, context.ClientId);
                if (throttle > 0 && context.ApiVersion >= StrictQuotaVersion)
                {
                    response.ThrottleTimeMs = Math.Max(response.ThrottleTimeMs, throttle);
                    result.ErrorCode = (short)ErrorCode.ThrottlingQuotaExceeded;
                    result.ErrorMessage = TopicCreator.ThrottledMessage;
                    continue;
                }
                (result.ErrorCode, result.ErrorMessage) = await AddPartitionsAsync(topic, t.Count, t.Assignments?.Select(a => a.BrokerIds.ToArray()).ToList()).ConfigureAwait(false);
                if (result.ErrorCode == 0) broker.MutationQuota.Record(context.Principal, context.ClientId, t.Count - topic.PartitionCount);
            }
        }
        response.ThrottleTimeMs = Math.Max(response.ThrottleTimeMs, broker.MutationQuota.ThrottleTimeMs(context.Principal, context.ClientId));
        return response;
    }

    private string? Limit(int current, int wanted)
    {
        var limit = broker.Settings.TopicLimits.MaxBrokerPartitions;
        var total = broker.Topics.PartitionTotal;
        return limit > 0 && (long)total + wanted - current > limit ? new PartitionLimitException(total, wanted - current, limit).Message : null;
    }

    private async Task<(short, string?)> AddPartitionsAsync(TopicInfo topic, int count, IReadOnlyList<int[]>? assignment)
    {
        var limit = broker.Settings.TopicLimits.MaxBrokerPartitions;
        try
        {
            // New partitions get as many replicas as the topic's first, placed as a new topic's would be.
            assignment ??= ReplicaPlacement.Assign(broker.Topics.Image.Brokers.Values, count - topic.PartitionCount, topic.Partitions[0].Replicas.Length);
            await broker.Topics.AddPartitionsAsync(topic, assignment, limit > 0 ? limit : int.MaxValue).ConfigureAwait(false);
            return (0, null);
        }
        catch (InvalidReplicationFactorException e)
        {
            return ((short)ErrorCode.InvalidReplicationFactor, e.Message);
        }
        catch (PartitionLimitException e)
        {
            return ((short)ErrorCode.PolicyViolation, e.Message);
        }
        catch (Exception e) when (e is StorageException or IOException or UnauthorizedAccessException)
        {
            broker.Log.Warn($"Adding partitions to topic '{topic.Name}' failed: {e.Message}");
            return ((short)ErrorCode.KafkaStorageError, $"Could not create the new partitions of topic '{topic.Name}': {e.Message}");
        }
    }
}
