using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>DescribeCluster v0-1: the cluster id, this broker as controller and only broker.</summary>
internal sealed class DescribeClusterHandler(BrokerState broker) : ApiHandler<DescribeClusterRequest, DescribeClusterResponse>
{
    public override ApiKey Key => ApiKey.DescribeCluster;
    public override short MinVersion => 0;
    public override short MaxVersion => 1;

    protected override ValueTask<DescribeClusterResponse?> HandleAsync(RequestContext context, DescribeClusterRequest request)
    {
        // v1 adds EndpointType: 1 = brokers, 2 = controllers; we are both, so either list is this node.
        if (context.ApiVersion >= 1 && request.EndpointType is not (1 or 2))
        {
            return new(new DescribeClusterResponse
            {
                ErrorCode = (short)ErrorCode.UnsupportedEndpointType,
                ErrorMessage = $"unsupported endpoint type {request.EndpointType}",
                ClusterId = broker.Identity.ClusterId,
            });
        }
        var image = broker.Topics.Image;
        return new(new DescribeClusterResponse
        {
            // As Kafka: the bits only with DESCRIBE on the cluster, 0 without; nothing else here needs an ACL.
            ClusterAuthorizedOperations = !request.IncludeClusterAuthorizedOperations ? int.MinValue
                : context.AllowsCluster(AclOperation.Describe) ? context.AuthorizedOperations(AclResourceType.Cluster, AclBinding.ClusterName) : 0,
            ClusterId = image.ClusterId,
            ControllerId = image.ControllerFor(broker.NodeId),
            EndpointType = request.EndpointType,
            // Only brokers reachable through the listener asked on, at that listener's address, as Kafka answers.
            Brokers = [.. image.Brokers.Values.OrderBy(b => b.NodeId)
                .Select(b => (Broker: b, Endpoint: b.EndpointFor(context.Listener))).Where(b => b.Endpoint is not null)
                .Select(b => new DescribeClusterResponse.DescribeClusterBroker { BrokerId = b.Broker.NodeId, Host = b.Endpoint!.Value.Host, Port = b.Endpoint.Value.Port, Rack = b.Broker.Rack })],
        });
    }
}
