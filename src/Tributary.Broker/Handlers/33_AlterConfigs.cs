using Tributary.Broker.Metadata;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>AlterConfigs v0-2: replaces a topic's whole set of overrides (keys not named return to their defaults).</summary>
internal sealed class AlterConfigsHandler(TopicConfigChanger changer) : ApiHandler<AlterConfigsRequest, AlterConfigsResponse>
{
    public override ApiKey Key => ApiKey.AlterConfigs;
    public override short MinVersion => 0;
    public override short MaxVersion => 2;

    protected override async ValueTask<AlterConfigsResponse?> HandleAsync(RequestContext context, AlterConfigsRequest request)
    {
        var response = new AlterConfigsResponse();
        foreach (var resource in request.Resources)
        {
            var changes = resource.Configs.Select(c => new TopicConfigChanger.Change(c.Name, TopicConfigChanger.Set, c.Value)).ToList();
            var (error, message) = ConfigResourceAcls.Refusal(context, resource.ResourceType, resource.ResourceName, AclOperation.AlterConfigs) is { } refused
                ? (refused, "Authorization failed.")
                : await changer.ApplyAsync(resource.ResourceType, resource.ResourceName, changes, incremental: false, request.ValidateOnly).ConfigureAwait(false);
            response.Responses.Add(new AlterConfigsResponse.AlterConfigsResourceResponse
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
