using Tributary.Broker.Cluster;
using Tributary.Broker.Groups;
using Tributary.Broker.Metadata;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Broker.Transactions;
using Tributary.Protocol.Messages;
using Tributary.Storage;

namespace Tributary.Broker.Handlers;

/// <summary>
/// FindCoordinator v0-5 (v5 is v4, allowing TRANSACTION_ABORTABLE, which this coordinator lookup never answers): the coordinator of a group (key type 0) or transactional id (key type 1) is the leader of its
/// partition of <c>__consumer_offsets</c> or <c>__transaction_state</c>, read from the metadata image; the topic is
/// created first when it does not exist yet. A partition without a leader is COORDINATOR_NOT_AVAILABLE
/// (clients retry). Other key types get INVALID_REQUEST. v4 batches keys (coordinator_keys); v0-3 answer one key in the
/// top-level fields.
/// </summary>
internal sealed class FindCoordinatorHandler(BrokerState broker, GroupCoordinator groups, TransactionCoordinator transactions)
    : ApiHandler<FindCoordinatorRequest, FindCoordinatorResponse>
{
    public override ApiKey Key => ApiKey.FindCoordinator;
    public override short MinVersion => 0;
    public override short MaxVersion => 5;

    protected override async ValueTask<FindCoordinatorResponse?> HandleAsync(RequestContext context, FindCoordinatorRequest request)
    {
        var response = new FindCoordinatorResponse();
        // As Kafka: the coordinators' topic is created before a coordinator is named, so the one named leads a
        // partition that exists (a creation that fails leaves the key COORDINATOR_NOT_AVAILABLE, and the client retries).
        try
        {
            if (request.KeyType == 0 && broker.Topics.Get(GroupSettings.OffsetsTopic) is null) await groups.EnsureOffsetsTopicAsync().ConfigureAwait(false);
            if (request.KeyType == 1 && broker.Topics.Get(TransactionSettings.StateTopic) is null) await transactions.EnsureStateTopicAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            broker.Log.Warn($"FindCoordinator: creating the coordinators' topic failed: {e.Message}");
        }
        if (context.ApiVersion >= 4)
        {
            foreach (var key in request.CoordinatorKeys)
            {
                var (error, node, endpoint) = Allowed(context, request.KeyType, key) is { } refused ? (refused, null, null) : Locate(request.KeyType, key, context.Listener);
                response.Coordinators.Add(new FindCoordinatorResponse.Coordinator
                {
                    Key = key,
                    ErrorCode = (short)error,
                    NodeId = node?.NodeId ?? -1,
                    Host = endpoint?.Host ?? "",
                    Port = endpoint?.Port ?? -1,
                });
            }
        }
        else
        {
            var (error, node, endpoint) = Allowed(context, request.KeyType, request.Key) is { } refused ? (refused, null, null) : Locate(request.KeyType, request.Key, context.Listener);
            response.ErrorCode = (short)error;
            response.NodeId = node?.NodeId ?? -1;
            response.Host = endpoint?.Host ?? "";
            response.Port = endpoint?.Port ?? -1;
        }
        return response;
    }

    /// <summary>ACLs: DESCRIBE on the group, or on the transactional id; null when allowed.</summary>
    private static ErrorCode? Allowed(RequestContext context, sbyte keyType, string key) => keyType switch
    {
        0 when !context.AllowsGroup(AclOperation.Describe, key) => ErrorCode.GroupAuthorizationFailed,
        1 when !context.AllowsTransactionalId(AclOperation.Describe, key) => ErrorCode.TransactionalIdAuthorizationFailed,
        _ => null,
    };

    private (ErrorCode, BrokerRegistration?, (string Host, int Port)?) Locate(sbyte keyType, string key, string listener)
    {
        if (keyType is not (0 or 1)) return (ErrorCode.InvalidRequest, null, null);
        var image = broker.Topics.Image;
        var (topic, partition) = keyType == 0
            ? (GroupSettings.OffsetsTopic, groups.PartitionFor(key))
            : (TransactionSettings.StateTopic, transactions.PartitionFor(key));
        var leader = image.Partition(topic, partition) is { } state ? state.Leader : -1;
        // A coordinator not reachable through the client's listener is as good as none to that client.
        return image.Brokers.TryGetValue(leader, out var node) && node.EndpointFor(listener) is { } endpoint
            ? (ErrorCode.None, node, endpoint)
            : (ErrorCode.CoordinatorNotAvailable, null, null);
    }
}
