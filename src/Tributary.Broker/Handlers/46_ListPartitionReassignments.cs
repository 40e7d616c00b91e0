using Tributary.Broker.Cluster;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// ListPartitionReassignments v0 (KIP-455): the reassignments in progress, of every partition (topics null) or of the
/// partitions named, each with its full replica list and the replicas being added and removed. Unknown topics and
/// partitions, and partitions with no reassignment, are left out, as Kafka does.
/// </summary>
internal sealed class ListPartitionReassignmentsHandler(BrokerState broker) : ApiHandler<ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse>
{
    private readonly PartitionReassigner _reassigner = new(broker.Topics.Store, broker.Settings.Bool("unclean.leader.election.enable"));

    public override ApiKey Key => ApiKey.ListPartitionReassignments;
    public override short MinVersion => 0;
    public override short MaxVersion => 0;

    protected override ValueTask<ListPartitionReassignmentsResponse?> HandleAsync(RequestContext context, ListPartitionReassignmentsRequest request)
    {
        if (!context.AllowsCluster(AclOperation.Describe))
            return new(new ListPartitionReassignmentsResponse { ErrorCode = (short)ErrorCode.ClusterAuthorizationFailed, ErrorMessage = "Cluster authorization failed." });
        var ongoing = _reassigner.List(request.Topics?.Select(t => (t.Name, (IReadOnlyList<int>)t.PartitionIndexes)));
        var response = new ListPartitionReassignmentsResponse();
        foreach (var topic in ongoing.GroupBy(o => o.Topic))
            response.Topics.Add(new ListPartitionReassignmentsResponse.OngoingTopicReassignment
            {
                Name = topic.Key,
                Partitions = [.. topic.Select(o => new ListPartitionReassignmentsResponse.OngoingPartitionReassignment
                {
                    PartitionIndex = o.Partition,
                    Replicas = [.. o.Replicas],
                    AddingReplicas = [.. o.Adding],
                    RemovingReplicas = [.. o.Removing],
                })],
            });
        return new(response);
    }
}
