using Tributary.Broker.Metadata;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// DeleteTopics v0-6: by name, and by topic id from v6. The topic disappears from metadata at once and its partition
/// directories are renamed to <c>-delete</c> and removed in the background (crash-safe: see TopicCatalog). Internal
/// topics cannot be deleted. Deleted partitions count against the controller mutation quota, which refuses with
/// THROTTLING_QUOTA_EXCEEDED from v5 (KIP-599).
/// </summary>
internal sealed class DeleteTopicsHandler(BrokerState broker) : ApiHandler<DeleteTopicsRequest, DeleteTopicsResponse>
{
    public override ApiKey Key => ApiKey.DeleteTopics;
    public override short MinVersion => 0;
    public override short MaxVersion => 6;

    private const short StrictQuotaVersion = 5;

    protected override async ValueTask<DeleteTopicsResponse?> HandleAsync(RequestContext context, DeleteTopicsRequest request)
    {
        var response = new DeleteTopicsResponse();
        var targets = context.ApiVersion >= 6
            ? request.Topics.Select(t => (t.Name, t.TopicId))
            : request.TopicNames.Select(n => ((string?)n, Guid.Empty));
        foreach (var (name, id) in targets)
        {
            var topic = name is not null ? broker.Topics.Get(name) : broker.Topics.Get(id);
            var result = new DeleteTopicsResponse.DeletableTopicResult { Name = name ?? topic?.Name, TopicId = topic?.Id ?? id };
            response.Responses.Add(result);
            if (!broker.Settings.DeleteTopicEnable)
            {
                result.ErrorCode = (short)ErrorCode.TopicDeletionDisabled;
                result.ErrorMessage = "Topic deletion is disabled (delete.topic.enable=false).";
            }
            else if (name is null && topic is not null && !context.AllowsTopic(AclOperation.Describe, topic.Name))
            {
                // Named by id: who may not describe the topic does not learn its name.
                (result.Name, result.ErrorCode, result.ErrorMessage) = (null, (short)ErrorCode.TopicAuthorizationFailed, "Authorization failed.");
            }
            else if ((name ?? topic?.Name) is { } target && !context.AllowsTopic(AclOperation.Delete, target))
            {
                // Before existence: who may not delete a topic does not learn whether it exists.
                (result.ErrorCode, result.ErrorMessage) = ((short)ErrorCode.TopicAuthorizationFailed, "Authorization failed.");
            }
            else if (topic is null)
            {
                result.ErrorCode = (short)(name is null ? ErrorCode.UnknownTopicId : ErrorCode.UnknownTopicOrPartition);
                result.ErrorMessage = "This server does not host this topic.";
            }
            else if (topic.IsInternal)
            {
                result.ErrorCode = (short)ErrorCode.InvalidTopicException;
                result.ErrorMessage = $"Topic {topic.Name} is an internal topic and cannot be deleted.";
            }
            else if (broker.MutationQuota.ThrottleTimeMs(context.Principal, context.ClientId) is > 0 and var throttle && context.ApiVersion >= StrictQuotaVersion)
            {
                response.ThrottleTimeMs = Math.Max(response.ThrottleTimeMs, throttle);
                result.ErrorCode = (short)ErrorCode.ThrottlingQuotaExceeded;
                result.ErrorMessage = TopicCreator.ThrottledMessage;
            }
            else if (await broker.Topics.DeleteAsync(topic.Name).ConfigureAwait(false))
            {
                broker.MutationQuota.Record(context.Principal, context.ClientId, topic.PartitionCount);
            }
        }
        response.ThrottleTimeMs = Math.Max(response.ThrottleTimeMs, broker.MutationQuota.ThrottleTimeMs(context.Principal, context.ClientId));
        return response;
    }
}
