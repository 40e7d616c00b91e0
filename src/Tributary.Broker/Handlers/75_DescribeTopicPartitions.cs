using Tributary.Broker.Cluster;
using Tributary.Broker.Metadata;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// DescribeTopicPartitions v0 (KIP-966; Admin.describeTopics in Kafka 3.8+), answered from the metadata image as
/// Kafka's DescribeTopicPartitionsRequestHandler: the topics named (an empty list: every topic), in name order from the
/// cursor's topic on, at most min(response_partition_limit, max.request.partition.size.limit) partitions (at least 1);
/// when more remain, next_cursor names the first partition left out. Per partition: the leader (-1 when it has none or
/// its broker is offline; the error code stays NONE, unlike Metadata), leader epoch, replicas, ISR and offline replicas
/// (brokers not registered, or this broker's failed log directory). A topic named that does not exist is
/// UNKNOWN_TOPIC_OR_PARTITION (INVALID_TOPIC_EXCEPTION for an illegal name); a cursor whose topic is not among those
/// named, or with a negative partition, is INVALID_REQUEST for every topic named. Eligible leader replicas (KIP-966's
/// ELR) are not implemented: eligible_leader_replicas and last_known_elr are empty, as Kafka sends them with ELR off.
/// topic_authorized_operations: the request has no flag to ask for it, so Kafka always fills it; without ACLs every
/// topic operation is allowed, and that is what this answers.
/// </summary>
internal sealed class DescribeTopicPartitionsHandler(BrokerState broker) : ApiHandler<DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse>
{
    public override ApiKey Key => ApiKey.DescribeTopicPartitions;
    public override short MinVersion => 0;
    public override short MaxVersion => 0;


    protected override ValueTask<DescribeTopicPartitionsResponse?> HandleAsync(RequestContext context, DescribeTopicPartitionsRequest request)
    {
        var image = broker.Topics.Image;
        var cursor = request.Cursor;
        var cursorTopic = cursor?.TopicName ?? "";
        var all = request.Topics.Count == 0;
        var names = (all ? image.TopicsByName.Keys : request.Topics.Select(t => t.Name))
            .Where(n => string.CompareOrdinal(n, cursorTopic) >= 0).ToHashSet(StringComparer.Ordinal);
        if (!all && cursor is not null && !names.Contains(cursor.TopicName))
            return new(ErrorResponse(request, $"DescribeTopicPartitionsRequest topic list should contain the cursor topic: {cursor.TopicName}"));
        if (cursor is not null && cursor.PartitionIndex < 0)
            return new(ErrorResponse(request, $"DescribeTopicPartitionsRequest cursor partition must be valid: {cursor.TopicName}-{cursor.PartitionIndex}"));

        var response = new DescribeTopicPartitionsResponse();
        var remaining = Math.Max(Math.Min(broker.Settings.Int("max.request.partition.size.limit"), request.ResponsePartitionLimit), 1);
        foreach (var name in names.Order(StringComparer.Ordinal))
        {
            if (remaining == 0)
            {
                // The page is full: the next one starts at this topic (which may not exist; the cursor says where, not what).
                response.NextCursor = new DescribeTopicPartitionsResponse.Cursor { TopicName = name, PartitionIndex = 0 };
                break;
            }
            if (!context.AllowsTopic(AclOperation.Describe, name))
            {
                // ACLs: listed topics the principal may not DESCRIBE are left out; named ones are refused, existing or not.
                if (!all)
                    response.Topics.Add(new DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic
                    {
                        ErrorCode = (short)ErrorCode.TopicAuthorizationFailed,
                        Name = name,
                        IsInternal = IsInternalName(name),
                    });
                continue;
            }
            if (!image.TopicsByName.TryGetValue(name, out var topic))
            {
                if (!all)
                {
                    response.Topics.Add(new DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic
                    {
                        ErrorCode = (short)(TopicNames.Validate(name) is null ? ErrorCode.UnknownTopicOrPartition : ErrorCode.InvalidTopicException),
                        Name = name,
                        IsInternal = IsInternalName(name),
                        TopicAuthorizedOperations = context.AuthorizedOperations(AclResourceType.Topic, name),
                    });
                }
                continue;
            }
            var start = cursor is not null && name == cursor.TopicName ? cursor.PartitionIndex : 0;
            var end = Math.Min(topic.PartitionCount, start + remaining);
            var result = new DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic
            {
                Name = name,
                TopicId = topic.Id,
                IsInternal = topic.IsInternal,
                TopicAuthorizedOperations = context.AuthorizedOperations(AclResourceType.Topic, name),
            };
            for (var p = start; p < end; p++) result.Partitions.Add(Describe(image, topic, p));
            response.Topics.Add(result);
            if (end < topic.PartitionCount)
            {
                response.NextCursor = new DescribeTopicPartitionsResponse.Cursor { TopicName = name, PartitionIndex = end };
                break;
            }
            remaining -= result.Partitions.Count;
        }
        return new(response);
    }

    private DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponsePartition Describe(MetadataImage image, TopicInfo topic, int partition)
    {
        var state = topic.Partitions[partition];
        var offline = broker.Topics.OfflineReplicas(image, topic.Name, partition, state);
        return new()
        {
            PartitionIndex = partition,
            LeaderId = state.Leader >= 0 && !offline.Contains(state.Leader) ? state.Leader : -1,
            LeaderEpoch = state.LeaderEpoch,
            ReplicaNodes = [.. state.Replicas],
            IsrNodes = [.. state.Isr],
            EligibleLeaderReplicas = [],
            LastKnownElr = [],
            OfflineReplicas = offline,
        };
    }

    /// <summary>Kafka's Topic.isInternal: the names of the two internal topics, whether or not they exist yet.</summary>
    private static bool IsInternalName(string name) => name is Groups.GroupSettings.OffsetsTopic or Transactions.TransactionSettings.StateTopic;

    /// <summary>
    /// Kafka's DescribeTopicPartitionsRequest.getErrorResponse: INVALID_REQUEST on every topic named (the response has no
    /// message field, so <paramref name="why"/> goes to the broker's log at debug level).
    /// </summary>
    private DescribeTopicPartitionsResponse ErrorResponse(DescribeTopicPartitionsRequest request, string why)
    {
        broker.Log.Debug($"DescribeTopicPartitions: {why}");
        return new()
        {
            Topics = [.. request.Topics.Select(t => new DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic
            {
                ErrorCode = (short)ErrorCode.InvalidRequest,
                Name = t.Name,
            })],
        };
    }
}
