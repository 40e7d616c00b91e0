using Tributary.Broker.Metadata;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// DescribeConfigs v0-4 for topics (overrides and inherited defaults with their sources and synonyms) and for this
/// broker. Specific keys can be asked for; unknown keys are left out, as Kafka does.
/// </summary>
internal sealed class DescribeConfigsHandler(BrokerState broker, TopicConfigDescriber describer) : ApiHandler<DescribeConfigsRequest, DescribeConfigsResponse>
{
    public override ApiKey Key => ApiKey.DescribeConfigs;
    public override short MinVersion => 0;
    public override short MaxVersion => 4;

    protected override ValueTask<DescribeConfigsResponse?> HandleAsync(RequestContext context, DescribeConfigsRequest request)
    {
        var response = new DescribeConfigsResponse();
        var synonyms = context.ApiVersion >= 1 && request.IncludeSynonyms;
        foreach (var resource in request.Resources)
        {
            var result = new DescribeConfigsResponse.DescribeConfigsResult { ResourceType = resource.ResourceType, ResourceName = resource.ResourceName };
            response.Results.Add(result);
            IEnumerable<DescribedConfig> configs;
            if (ConfigResourceAcls.Refusal(context, resource.ResourceType, resource.ResourceName, AclOperation.DescribeConfigs) is { } refused)
            {
                (result.ErrorCode, result.ErrorMessage) = ((short)refused, "Authorization failed.");
                continue;
            }
            if (resource.ResourceType == TopicConfigChanger.TopicResource)
            {
                var topic = broker.Topics.Get(resource.ResourceName);
                if (topic is null)
                {
                    result.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                    result.ErrorMessage = $"Topic '{resource.ResourceName}' does not exist.";
                    continue;
                }
                configs = describer.Describe(topic.Configs, synonyms);
            }
            else if (resource.ResourceType == TopicConfigChanger.BrokerResource)
            {
                if (resource.ResourceName.Length > 0 && resource.ResourceName != broker.NodeId.ToString())
                {
                    result.ErrorCode = (short)ErrorCode.InvalidRequest;
                    result.ErrorMessage = $"Unexpected broker id, expected {broker.NodeId} or empty string, but received {resource.ResourceName}";
                    continue;
                }
                configs = describer.DescribeBroker(broker.Topics.Image);
            }
            else
            {
                result.ErrorCode = (short)ErrorCode.InvalidRequest;
                result.ErrorMessage = $"Unsupported resource type {resource.ResourceType}";
                continue;
            }
            var keys = resource.ConfigurationKeys is { Count: > 0 } k ? new HashSet<string>(k, StringComparer.Ordinal) : null;
            foreach (var c in configs)
            {
                if (keys is not null && !keys.Contains(c.Name)) continue;
                result.Configs.Add(new DescribeConfigsResponse.DescribeConfigsResourceResult
                {
                    Name = c.Name,
                    Value = c.Sensitive ? null : c.Value,
                    ReadOnly = c.ReadOnly,
                    IsDefault = c.IsDefault,
                    ConfigSource = c.Source,
                    IsSensitive = c.Sensitive,
                    ConfigType = c.Type,
                    Synonyms = c.Synonyms.Select(s => new DescribeConfigsResponse.DescribeConfigsSynonym { Name = s.Name, Value = s.Value, Source = s.Source }).ToList(),
                    Documentation = request.IncludeDocumentation ? c.Documentation : null,
                });
            }
        }
        return new(response);
    }
}
