using Tributary.Broker.Groups;
using Tributary.Broker.Network;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// ConsumerGroupDescribe v0 (KIP-848): epochs, assignor, and each member's current and target assignment. A classic
/// or unknown group gets GROUP_ID_NOT_FOUND, as in Kafka (clients then describe it with DescribeGroups).
/// </summary>
internal sealed class ConsumerGroupDescribeHandler(GroupCoordinator coordinator) : ApiHandler<ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse>
{
    public override ApiKey Key => ApiKey.ConsumerGroupDescribe;
    public override short MinVersion => 0;
    public override short MaxVersion => 0;

    protected override async ValueTask<ConsumerGroupDescribeResponse?> HandleAsync(RequestContext context, ConsumerGroupDescribeRequest request)
    {
        var response = new ConsumerGroupDescribeResponse();
        foreach (var id in request.GroupIds) response.Groups.Add(await coordinator.DescribeConsumerGroupAsync(id).ConfigureAwait(false));
        return response;
    }
}
