using Tributary.Broker.Metadata;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// CreateTopics v0-7: partitions (-1 for num.partitions), replication factor (1 or -1 on a single broker), topic
/// configs validated against Kafka's names and types, validate_only. v5+ answers with the resulting configs; v7 with
/// the topic id. Manual replica assignments are accepted when they name only this broker. Limits: max.broker.partitions
/// (POLICY_VIOLATION) and the controller mutation quota (THROTTLING_QUOTA_EXCEEDED from v6, with throttle_time_ms).
/// </summary>
internal sealed class CreateTopicsHandler(BrokerState broker, TopicCreator creator, TopicConfigDescriber describer)
    : ApiHandler<CreateTopicsRequest, CreateTopicsResponse>
{
    public override ApiKey Key => ApiKey.CreateTopics;
    public override short MinVersion => 0;
    public override short MaxVersion => 7;

    /// <summary>From v6 a topic over the controller mutation quota is refused with THROTTLING_QUOTA_EXCEEDED (KIP-599); before, it is created and only the throttle time is told.</summary>
    private const short StrictQuotaVersion = 6;

    protected override async ValueTask<CreateTopicsResponse?> HandleAsync(RequestContext context, CreateTopicsRequest request)
    {
        var response = new CreateTopicsResponse();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        // ACLs: CREATE on the cluster, or else on each topic; its configs are shown only with DESCRIBE_CONFIGS on it.
        var clusterCreate = context.AllowsCluster(AclOperation.Create);
        foreach (var topic in request.Topics)
        {
            var result = new CreateTopicsResponse.CreatableTopicResult { Name = topic.Name };
            response.Topics.Add(result);
            if (!seen.Add(topic.Name))
            {
                result.ErrorCode = (short)ErrorCode.InvalidRequest;
                result.ErrorMessage = $"Topic '{topic.Name}' is named more than once in the request.";
                continue;
            }
            if (!clusterCreate && !context.AllowsTopic(AclOperation.Create, topic.Name))
            {
                result.ErrorCode = (short)ErrorCode.TopicAuthorizationFailed;
                result.ErrorMessage = "Authorization failed.";
                continue;
            }
            var partitions = topic.NumPartitions;
            var replication = topic.ReplicationFactor;
            int[][]? assignment = null;
            if (topic.Assignments.Count > 0)
            {
                if (partitions != -1 || replication != -1)
                {
                    result.ErrorCode = (short)ErrorCode.InvalidRequest;
                    result.ErrorMessage = "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.";
                    continue;
                }
                // Kafka wants the partition indexes 0..n-1, each once, in any order.
                var indexes = topic.Assignments.Select(a => a.PartitionIndex).ToList();
                if (indexes.Order().Where((p, i) => p != i).Any())
                {
                    result.ErrorCode = (short)ErrorCode.InvalidReplicaAssignment;
                    result.ErrorMessage = "Partitions should be numbered consecutively from 0, each once.";
                    continue;
                }
                assignment = [.. topic.Assignments.OrderBy(a => a.PartitionIndex).Select(a => a.BrokerIds.ToArray())];
            }
            var configs = new Dictionary<string, string?>(StringComparer.Ordinal);
            foreach (var c in topic.Configs) configs[c.Name] = c.Value;
            var outcome = await creator.CreateAsync(topic.Name, partitions, replication, assignment, configs, validateOnly: true).ConfigureAwait(false);
            if (outcome.Error == ErrorCode.None && !request.validateOnly)
            {
                var throttle = broker.MutationQuota.ThrottleTimeMs(context.Principal, context.ClientId);
                if (throttle > 0 && context.ApiVersion >= StrictQuotaVersion)
                {
                    response.ThrottleTimeMs = Math.Max(response.ThrottleTimeMs, throttle);
                    result.ErrorCode = (short)ErrorCode.ThrottlingQuotaExceeded;
                    result.ErrorMessage = TopicCreator.ThrottledMessage;
                    continue;
                }
                outcome = await creator.CreateAsync(topic.Name, partitions, replication, assignment, configs, validateOnly: false).ConfigureAwait(false);
                if (outcome.Error == ErrorCode.None) broker.MutationQuota.Record(context.Principal, context.ClientId, outcome.Partitions);
            }
            result.ErrorCode = (short)outcome.Error;
            result.ErrorMessage = outcome.Message;
            if (outcome.Error != ErrorCode.None) continue;
            result.NumPartitions = outcome.Partitions;
            result.ReplicationFactor = (short)outcome.ReplicationFactor;
            result.TopicId = outcome.Topic?.Id ?? Guid.Empty;
            if (!context.AllowsTopic(AclOperation.DescribeConfigs, topic.Name))
            {
                result.TopicConfigErrorCode = (short)ErrorCode.TopicAuthorizationFailed;
                continue;
            }
            var effective = outcome.Topic?.Configs
                ?? configs.Where(c => c.Value is not null).ToDictionary(c => c.Key, c => c.Value!.Trim(), StringComparer.Ordinal);
            result.Configs = describer.Describe(effective, includeSynonyms: false)
                .Select(d => new CreateTopicsResponse.CreatableTopicConfigs
                {
                    Name = d.Name,
                    Value = d.Value,
                    ReadOnly = d.ReadOnly,
                    ConfigSource = d.Source,
                    IsSensitive = d.Sensitive,
                })
                .ToList();
        }
        response.ThrottleTimeMs = Math.Max(response.ThrottleTimeMs, broker.MutationQuota.ThrottleTimeMs(context.Principal, context.ClientId));
        return response;
    }
}
