using Tributary.Broker.Metadata;
using Tributary.Broker.Network;
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

    protected override ValueTask<CreateTopicsResponse?> HandleAsync(RequestContext context, CreateTopicsRequest request)
    {
        var response = new CreateTopicsResponse();
        var seen = new HashSet<string>(StringComparer.Ordinal);
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
            var partitions = topic.NumPartitions;
            var replication = topic.ReplicationFactor;
            if (topic.Assignments.Count > 0)
            {
                if (partitions != -1 || replication != -1)
                {
                    result.ErrorCode = (short)ErrorCode.InvalidRequest;
                    result.ErrorMessage = "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.";
                    continue;
                }
                if (topic.Assignments.Any(a => a.BrokerIds.Any(b => b != broker.NodeId)))
                {
                    result.ErrorCode = (short)ErrorCode.InvalidReplicaAssignment;
                    result.ErrorMessage = $"Replica assignment names brokers other than {broker.NodeId}.";
                    continue;
                }
                partitions = topic.Assignments.Count;
                replication = (short)topic.Assignments.Max(a => a.BrokerIds.Count);
            }
            var configs = new Dictionary<string, string?>(StringComparer.Ordinal);
            foreach (var c in topic.Configs) configs[c.Name] = c.Value;
            var outcome = creator.Create(topic.Name, partitions, replication, configs, validateOnly: true);
            if (outcome.Error == ErrorCode.None && !request.validateOnly)
            {
                var throttle = broker.MutationQuota.ThrottleTimeMs(context.ClientId);
                if (throttle > 0 && context.ApiVersion >= StrictQuotaVersion)
                {
                    response.ThrottleTimeMs = Math.Max(response.ThrottleTimeMs, throttle);
                    result.ErrorCode = (short)ErrorCode.ThrottlingQuotaExceeded;
                    result.ErrorMessage = TopicCreator.ThrottledMessage;
                    continue;
                }
                outcome = creator.Create(topic.Name, partitions, replication, configs, validateOnly: false);
                if (outcome.Error == ErrorCode.None) broker.MutationQuota.Record(context.ClientId, outcome.Partitions);
            }
            result.ErrorCode = (short)outcome.Error;
            result.ErrorMessage = outcome.Message;
            if (outcome.Error != ErrorCode.None) continue;
            result.NumPartitions = outcome.Partitions;
            result.ReplicationFactor = 1;
            result.TopicId = outcome.Topic?.Id ?? Guid.Empty;
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
        response.ThrottleTimeMs = Math.Max(response.ThrottleTimeMs, broker.MutationQuota.ThrottleTimeMs(context.ClientId));
        return new(response);
    }
}
