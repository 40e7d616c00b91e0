using Tributary.Broker.Network;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// DeleteTopics v0-6: by name, and by topic id from v6. The topic disappears from metadata at once and its partition
/// directories are removed (renamed first, so a crash never leaves half a topic). Internal topics cannot be deleted.
/// </summary>
public sealed class DeleteTopicsHandler(BrokerState broker) : ApiHandler<DeleteTopicsRequest, DeleteTopicsResponse>
{
    public override ApiKey Key => ApiKey.DeleteTopics;
    public override short MinVersion => 0;
    public override short MaxVersion => 6;

    protected override ValueTask<DeleteTopicsResponse?> HandleAsync(RequestContext context, DeleteTopicsRequest request)
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
            else
            {
                broker.Topics.Delete(topic.Name);
            }
        }
        return new(response);
    }
}
