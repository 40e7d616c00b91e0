using Tributary.Broker.Cluster;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// AlterPartitionReassignments v0 (KIP-455): per partition, a replica list starts (or replaces) a reassignment and a
/// null list cancels the one in progress; <see cref="PartitionReassigner"/> applies it, the controller completes it.
/// Per-partition errors as Kafka 3.9: UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT (empty, duplicate or
/// unregistered brokers; a cancel needing an unclean election), NO_REASSIGNMENT_IN_PROGRESS. Top level: a request whose
/// timeout_ms passes first (or is not positive) is REQUEST_TIMED_OUT, repeated on every partition, as Kafka's error
/// response; a metadata store failure is UNKNOWN_SERVER_ERROR. Partitions decided before a timeout stay changed.
/// Any broker answers (Kafka forwards to the controller; here every broker writes the store directly).
/// </summary>
internal sealed class AlterPartitionReassignmentsHandler(BrokerState broker) : ApiHandler<AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse>
{
    private readonly PartitionReassigner _reassigner = new(broker.Topics.Store, broker.Settings.Bool("unclean.leader.election.enable"));

    public override ApiKey Key => ApiKey.AlterPartitionReassignments;
    public override short MinVersion => 0;
    public override short MaxVersion => 0;

    protected override async ValueTask<AlterPartitionReassignmentsResponse?> HandleAsync(RequestContext context, AlterPartitionReassignmentsRequest request)
    {
        if (!context.AllowsCluster(AclOperation.Alter)) return Failed(request, ErrorCode.ClusterAuthorizationFailed, "Cluster authorization failed.");
        if (request.TimeoutMs <= 0) return Failed(request, ErrorCode.RequestTimedOut, "The request timed out before it could be processed.");
        using var timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(request.TimeoutMs), broker.Time);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(context.Cancellation, timeout.Token);
        var response = new AlterPartitionReassignmentsResponse();
        try
        {
            foreach (var topic in request.Topics)
            {
                var result = new AlterPartitionReassignmentsResponse.ReassignableTopicResponse { Name = topic.Name };
                response.Responses.Add(result);
                foreach (var p in topic.Partitions)
                {
                    var (error, message) = await _reassigner.AlterAsync(topic.Name, p.PartitionIndex, p.Replicas, deadline.Token).ConfigureAwait(false);
                    if (error == ErrorCode.None)
                        broker.Log.Info(p.Replicas is null
                            ? $"reassignment: {topic.Name}-{p.PartitionIndex} cancelled."
                            : $"reassignment: {topic.Name}-{p.PartitionIndex} to [{string.Join(",", p.Replicas)}].");
                    result.Partitions.Add(new AlterPartitionReassignmentsResponse.ReassignablePartitionResponse
                    {
                        PartitionIndex = p.PartitionIndex,
                        ErrorCode = (short)error,
                        ErrorMessage = message,
                    });
                }
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !context.Cancellation.IsCancellationRequested)
        {
            return Failed(request, ErrorCode.RequestTimedOut, $"The reassignments were not all written within {request.TimeoutMs} ms.");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            broker.Log.Warn($"reassignment: writing to the metadata store failed: {e.Message}");
            return Failed(request, ErrorCode.UnknownServerError, $"The metadata store failed: {e.Message}");
        }
        return response;
    }

    /// <summary>Kafka's error response: the top-level error, and the same on every partition named.</summary>
    private static AlterPartitionReassignmentsResponse Failed(AlterPartitionReassignmentsRequest request, ErrorCode error, string message) => new()
    {
        ErrorCode = (short)error,
        ErrorMessage = message,
        Responses = [.. request.Topics.Select(t => new AlterPartitionReassignmentsResponse.ReassignableTopicResponse
        {
            Name = t.Name,
            Partitions = [.. t.Partitions.Select(p => new AlterPartitionReassignmentsResponse.ReassignablePartitionResponse
            {
                PartitionIndex = p.PartitionIndex,
                ErrorCode = (short)error,
                ErrorMessage = message,
            })],
        })],
    };
}
