using Tributary.Broker.Metadata;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>IncrementalAlterConfigs v0-1: SET, DELETE, APPEND and SUBTRACT on single topic config keys.</summary>
internal sealed class IncrementalAlterConfigsHandler(TopicConfigChanger changer) : ApiHandler<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>
{
    public override ApiKey Key => ApiKey.IncrementalAlterConfigs;
    public override short MinVersion => 0;
    public override short MaxVersion => 1;

    protected override async ValueTask<IncrementalAlterConfigsResponse?> HandleAsync(RequestContext context, IncrementalAlterConfigsRequest request)
    {
        var response = new IncrementalAlterConfigsResponse();
        foreach (var resource in request.Resources)
        {
            var changes = resource.Configs.Select(c => new TopicConfigChanger.Change(c.Name, c.ConfigOperation, c.Value)).ToList();
            var (error, message) = ConfigResourceAcls.Refusal(context, resource.ResourceType, resource.ResourceName, AclOperation.AlterConfigs) is { } refused
                ? (refused, "Authorization failed.")
                : await changer.ApplyAsync(resource.ResourceType, resource.ResourceName, changes, incremental: true, request.ValidateOnly).ConfigureAwait(false);
            response.Responses.Add(new IncrementalAlterConfigsResponse.AlterConfigsResourceResponse
            {
                ErrorCode = (short)error,
                ErrorMessage = message,
                ResourceType = resource.ResourceType,
                ResourceName = resource.ResourceName,
            });
        }
        return response;
    }
}
