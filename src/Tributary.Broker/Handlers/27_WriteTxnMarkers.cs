using Tributary.Broker.Groups;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Broker.Transactions;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// WriteTxnMarkers v0-1: a transaction coordinator on another broker asks this one, the leader of some of the
/// transaction's partitions, to append the commit or abort marker to each. Each partition is answered once its in-sync
/// replicas hold the marker (Kafka appends markers with acks=all); NOT_LEADER_OR_FOLLOWER where this broker does not
/// lead, and the coordinator tries the new leader. A marker for a producer epoch older than the partition's is
/// INVALID_PRODUCER_EPOCH, as Kafka's append checks it. A marker on a partition of <c>__consumer_offsets</c> is answered
/// once the group coordinator has applied it to the producer's pending offsets. (Which principals may send it,
/// CLUSTER_ACTION, comes with ACLs.)
/// </summary>
internal sealed class WriteTxnMarkersHandler(BrokerState broker, GroupCoordinator groups) : ApiHandler<WriteTxnMarkersRequest, WriteTxnMarkersResponse>
{
    public override ApiKey Key => ApiKey.WriteTxnMarkers;
    public override short MinVersion => 0;
    public override short MaxVersion => 1;

    protected override async ValueTask<WriteTxnMarkersResponse?> HandleAsync(RequestContext context, WriteTxnMarkersRequest request)
    {
        var response = new WriteTxnMarkersResponse();
        var writes = new List<(WriteTxnMarkersResponse.WritableTxnMarkerPartitionResult Result, Task<ErrorCode> Write)>();
        var now = broker.Time.GetUtcNow().ToUnixTimeMilliseconds();
        // Only brokers write markers: CLUSTER_ACTION on the cluster, else every partition is CLUSTER_AUTHORIZATION_FAILED.
        var allowed = context.AllowsCluster(AclOperation.ClusterAction);
        foreach (var marker in request.Markers)
        {
            var result = new WriteTxnMarkersResponse.WritableTxnMarkerResult { ProducerId = marker.ProducerId };
            response.Markers.Add(result);
            foreach (var topic in marker.Topics)
            {
                var topicResult = new WriteTxnMarkersResponse.WritableTxnMarkerTopicResult { Name = topic.Name };
                result.Topics.Add(topicResult);
                foreach (var index in topic.PartitionIndexes)
                {
                    var partition = new WriteTxnMarkersResponse.WritableTxnMarkerPartitionResult { PartitionIndex = index };
                    topicResult.Partitions.Add(partition);
                    if (!allowed)
                    {
                        partition.ErrorCode = (short)ErrorCode.ClusterAuthorizationFailed;
                        continue;
                    }
                    writes.Add((partition, TransactionMarkers.AppendAsync(broker.Topics, broker.Replicas, groups, topic.Name, index, marker.ProducerId,
                        marker.ProducerEpoch, marker.TransactionResult, marker.CoordinatorEpoch, now)));
                }
            }
        }
        foreach (var (result, write) in writes)
            result.ErrorCode = (short)await write.ConfigureAwait(false);
        return response;
    }
}
