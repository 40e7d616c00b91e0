using Tributary.Broker.Cluster;
using Tributary.Broker.Metadata;
using Tributary.Broker.Network;
using Tributary.Broker.Security;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// Metadata v0-12, answered from the metadata image: every registered broker, the controller, and each partition's
/// leader, epoch, replicas, ISR and offline replicas. Topics asked for by name that do not exist are created when
/// auto.create.topics.enable is on and the client allows it (v4+), exactly as Kafka does; a topic name that is not legal
/// is answered with INVALID_TOPIC_EXCEPTION. v10+ may name topics by id.
/// ACLs, as KafkaApis: listing all topics shows only those the principal may DESCRIBE; a topic named (or known by id)
/// that it may not DESCRIBE is TOPIC_AUTHORIZATION_FAILED, existing or not; auto-creating one needs CREATE on the
/// cluster or the topic (else TOPIC_AUTHORIZATION_FAILED). v8+ answers include_*_authorized_operations with the bits of
/// the operations allowed.
/// </summary>
internal sealed class MetadataHandler(BrokerState broker, TopicCreator creator) : ApiHandler<MetadataRequest, MetadataResponse>
{
    public override ApiKey Key => ApiKey.Metadata;
    public override short MinVersion => 0;
    public override short MaxVersion => 12;

    protected override async ValueTask<MetadataResponse?> HandleAsync(RequestContext context, MetadataRequest request)
    {
        var version = context.ApiVersion;
        var image = broker.Topics.Image;
        var response = new MetadataResponse
        {
            // Each broker at its address on the listener this request came through; a broker without that listener is left out.
            Brokers = [.. image.Brokers.Values.OrderBy(b => b.NodeId)
                .Select(b => (Broker: b, Endpoint: b.EndpointFor(context.Listener))).Where(b => b.Endpoint is not null)
                .Select(b => new MetadataResponse.MetadataResponseBroker { NodeId = b.Broker.NodeId, Host = b.Endpoint!.Value.Host, Port = b.Endpoint.Value.Port, Rack = b.Broker.Rack })],
            ClusterId = image.ClusterId,
            ControllerId = image.ControllerFor(broker.NodeId),
        };
        if (request.IncludeClusterAuthorizedOperations && version >= 8)
            response.ClusterAuthorizedOperations = context.AllowsCluster(AclOperation.Describe)
                ? context.AuthorizedOperations(AclResourceType.Cluster, AclBinding.ClusterName) : 0;
        var withOperations = request.IncludeTopicAuthorizedOperations && version >= 8;
        var allTopics = request.Topics is null || (version == 0 && request.Topics.Count == 0);
        if (allTopics)
        {
            foreach (var topic in image.TopicsByName.Values.OrderBy(t => t.Name, StringComparer.Ordinal))
                if (context.AllowsTopic(AclOperation.Describe, topic.Name))
                    response.Topics.Add(Describe(topic, image, context, withOperations));
            return response;
        }
        var autoCreate = version < 4 || request.AllowAutoTopicCreation;
        foreach (var requested in request.Topics!)
        {
            if (requested.Name is null)
            {
                var byId = image.TopicsById.GetValueOrDefault(requested.TopicId);
                response.Topics.Add(byId is null
                    ? new MetadataResponse.MetadataResponseTopic { ErrorCode = (short)ErrorCode.UnknownTopicId, TopicId = requested.TopicId }
                    : !context.AllowsTopic(AclOperation.Describe, byId.Name) ? Refused(null, requested.TopicId)
                    : Describe(byId, image, context, withOperations));
                continue;
            }
            if (!context.AllowsTopic(AclOperation.Describe, requested.Name))
            {
                response.Topics.Add(Refused(requested.Name, Guid.Empty));
                continue;
            }
            var topic = image.TopicsByName.GetValueOrDefault(requested.Name);
            if (topic is null && TopicNames.Validate(requested.Name) is not null)
            {
                response.Topics.Add(new MetadataResponse.MetadataResponseTopic { Name = requested.Name, ErrorCode = (short)ErrorCode.InvalidTopicException });
                continue;
            }
            var error = ErrorCode.UnknownTopicOrPartition;
            if (topic is null && autoCreate && broker.Settings.AutoCreateTopics
                && !context.AllowsCluster(AclOperation.Create) && !context.AllowsTopic(AclOperation.Create, requested.Name))
            {
                response.Topics.Add(Refused(requested.Name, Guid.Empty));
                continue;
            }
            if (topic is null && autoCreate && broker.Settings.AutoCreateTopics)
            {
                var outcome = await creator.CreateDefaultAsync(requested.Name, context.Principal, context.ClientId).ConfigureAwait(false);
                topic = outcome.Topic;
                response.ThrottleTimeMs = Math.Max(response.ThrottleTimeMs, outcome.ThrottleTimeMs);
                // The limits' refusals are told as they are, so a client knows to slow down or that the broker is full.
                if (outcome.Error is ErrorCode.ThrottlingQuotaExceeded or ErrorCode.PolicyViolation or ErrorCode.KafkaStorageError
                    or ErrorCode.InvalidReplicationFactor) error = outcome.Error;
            }
            response.Topics.Add(topic is null
                ? new MetadataResponse.MetadataResponseTopic { Name = requested.Name, ErrorCode = (short)error }
                : Describe(topic, broker.Topics.Image, context, withOperations));
        }
        return response;
    }

    private static MetadataResponse.MetadataResponseTopic Refused(string? name, Guid id) =>
        new() { Name = name, TopicId = id, ErrorCode = (short)ErrorCode.TopicAuthorizationFailed };

    private MetadataResponse.MetadataResponseTopic Describe(TopicInfo topic, MetadataImage image, RequestContext context, bool withOperations)
    {
        var listener = context.Listener;
        var result = new MetadataResponse.MetadataResponseTopic
        {
            Name = topic.Name,
            TopicId = topic.Id,
            IsInternal = topic.IsInternal,
            Partitions = new List<MetadataResponse.MetadataResponsePartition>(topic.PartitionCount),
        };
        if (withOperations) result.TopicAuthorizedOperations = context.AuthorizedOperations(AclResourceType.Topic, topic.Name);
        for (var p = 0; p < topic.PartitionCount; p++)
        {
            var state = topic.Partitions[p];
            var offline = broker.Topics.OfflineReplicas(image, topic.Name, p, state);
            var leader = state.Leader >= 0 && !offline.Contains(state.Leader) ? state.Leader : -1;
            // A live leader without this listener is LISTENER_NOT_FOUND (a listener missing on some brokers), as in Kafka.
            var unreachable = leader >= 0 && image.Brokers.TryGetValue(leader, out var leaderBroker) && leaderBroker.EndpointFor(listener) is null;
            result.Partitions.Add(new MetadataResponse.MetadataResponsePartition
            {
                // No leader: as Kafka, LEADER_NOT_AVAILABLE; clients retry and producers fail it, the other partitions go on.
                ErrorCode = leader < 0 ? (short)ErrorCode.LeaderNotAvailable : unreachable ? (short)ErrorCode.ListenerNotFound : (short)0,
                PartitionIndex = p,
                LeaderId = leader,
                LeaderEpoch = state.LeaderEpoch,
                ReplicaNodes = [.. state.Replicas],
                IsrNodes = leader < 0 ? [.. state.Isr.Where(r => !offline.Contains(r))] : [.. state.Isr],
                OfflineReplicas = offline,
            });
        }
        return result;
    }
}
