using Tributary.Broker.Cluster;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// ElectLeaders v0-2 (kafka-leader-election.sh, Admin.electLeaders): PREFERRED (v0's only type) or UNCLEAN elections,
/// decided by <see cref="LeaderElection"/> with Kafka's controller rules and written as compare-and-swap changes of the
/// partition state (any broker may answer: a change computed from a stale image fails and is decided again). Per
/// partition: NONE, ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE, ELIGIBLE_LEADERS_NOT_AVAILABLE or
/// UNKNOWN_TOPIC_OR_PARTITION, with Kafka's messages. topic_partitions null means every partition, and then, as Kafka,
/// the ones answering ELECTION_NOT_NEEDED are left out (each topic is still listed). An unknown election type is
/// INVALID_REQUEST for the request (top-level error from v1) and every partition named. timeout_ms bounds the writes
/// (REQUEST_TIMED_OUT for the partitions not done); 0 or less waits as long as they take. Not implemented: ACLs
/// (CLUSTER ALTER), so no CLUSTER_AUTHORIZATION_FAILED; throttle_time_ms is 0 (Kafka throttles only by request quotas).
/// </summary>
internal sealed class ElectLeadersHandler(BrokerState broker) : ApiHandler<ElectLeadersRequest, ElectLeadersResponse>
{
    public override ApiKey Key => ApiKey.ElectLeaders;
    public override short MinVersion => 0;
    public override short MaxVersion => 2;

    protected override async ValueTask<ElectLeadersResponse?> HandleAsync(RequestContext context, ElectLeadersRequest request)
    {
        if (!context.AllowsCluster(AclOperation.Alter)) return ErrorResponse(request, ErrorCode.ClusterAuthorizationFailed, "Cluster authorization failed.");
        var type = context.ApiVersion == 0 ? ElectionType.Preferred : (ElectionType)request.ElectionType;
        if (type is not (ElectionType.Preferred or ElectionType.Unclean))
            return ErrorResponse(request, ErrorCode.InvalidRequest, $"Unknown election type {request.ElectionType}");
        var response = new ElectLeadersResponse();
        using var timeout = request.TimeoutMs > 0 ? new CancellationTokenSource(TimeSpan.FromMilliseconds(request.TimeoutMs), broker.Time) : new CancellationTokenSource();
        var store = broker.Topics.Store;
        var all = request.TopicPartitions is null;
        var wanted = all
            ? broker.Topics.Image.TopicsByName.Values.OrderBy(t => t.Name, StringComparer.Ordinal).Select(t => (t.Name, Partitions: Enumerable.Range(0, t.PartitionCount)))
            : request.TopicPartitions!.Select(t => (Name: t.Topic, Partitions: (IEnumerable<int>)t.Partitions));
        foreach (var (topic, partitions) in wanted)
        {
            var result = new ElectLeadersResponse.ReplicaElectionResult { Topic = topic };
            response.ReplicaElectionResults.Add(result);
            foreach (var partition in partitions)
            {
                ElectionDecision decision;
                try
                {
                    decision = await LeaderElection.ElectAsync(store, topic, partition, type, asController: false, timeout.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (timeout.IsCancellationRequested)
                {
                    decision = new(ErrorCode.RequestTimedOut, null, $"The election of {topic}-{partition} did not finish within {request.TimeoutMs} ms.");
                }
                if (all && decision.Error == ErrorCode.ElectionNotNeeded) continue;
                result.PartitionResult.Add(new ElectLeadersResponse.PartitionResult
                {
                    PartitionId = partition,
                    ErrorCode = (short)decision.Error,
                    ErrorMessage = decision.Error == ErrorCode.None ? null : decision.Message,
                });
                if (decision.Error == ErrorCode.None && decision.Next is { } next)
                    broker.Log.Info($"ElectLeaders ({type}): {topic}-{partition} is led by {next.Leader} (epoch {next.LeaderEpoch}).");
            }
        }
        return response;
    }

    /// <summary>Kafka's ElectLeadersRequest.getErrorResponse: the error at the top and on every partition named.</summary>
    private static ElectLeadersResponse ErrorResponse(ElectLeadersRequest request, ErrorCode error, string message) => new()
    {
        ErrorCode = (short)error,
        ReplicaElectionResults = [.. (request.TopicPartitions ?? []).Select(t => new ElectLeadersResponse.ReplicaElectionResult
        {
            Topic = t.Topic,
            PartitionResult = [.. t.Partitions.Select(p => new ElectLeadersResponse.PartitionResult { PartitionId = p, ErrorCode = (short)error, ErrorMessage = message })],
        })],
    };
}
