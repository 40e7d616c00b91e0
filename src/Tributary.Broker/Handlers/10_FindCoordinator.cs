using Tributary.Broker.Network;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// FindCoordinator v0-4. On a single broker every coordinator is this broker: key type 0 (group) and key type 1
/// (transaction — answered with this broker too, where the transaction coordinator will live). Other key types get
/// INVALID_REQUEST. v4 batches keys (coordinator_keys); v0-3 answer one key in the top-level fields.
/// </summary>
internal sealed class FindCoordinatorHandler(BrokerState broker) : ApiHandler<FindCoordinatorRequest, FindCoordinatorResponse>
{
    public override ApiKey Key => ApiKey.FindCoordinator;
    public override short MinVersion => 0;
    public override short MaxVersion => 4;

    protected override ValueTask<FindCoordinatorResponse?> HandleAsync(RequestContext context, FindCoordinatorRequest request)
    {
        var response = new FindCoordinatorResponse();
        var error = request.KeyType is 0 or 1 ? ErrorCode.None : ErrorCode.InvalidRequest;
        if (context.ApiVersion >= 4)
        {
            foreach (var key in request.CoordinatorKeys)
            {
                response.Coordinators.Add(new FindCoordinatorResponse.Coordinator
                {
                    Key = key,
                    ErrorCode = (short)error,
                    NodeId = error == ErrorCode.None ? broker.NodeId : -1,
                    Host = error == ErrorCode.None ? broker.AdvertisedHost : "",
                    Port = error == ErrorCode.None ? broker.AdvertisedPort : -1,
                });
            }
        }
        else
        {
            response.ErrorCode = (short)error;
            response.NodeId = error == ErrorCode.None ? broker.NodeId : -1;
            response.Host = error == ErrorCode.None ? broker.AdvertisedHost : "";
            response.Port = error == ErrorCode.None ? broker.AdvertisedPort : -1;
        }
        return new(response);
    }
}
