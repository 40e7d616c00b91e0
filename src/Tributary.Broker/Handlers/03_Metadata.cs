using Tributary.Broker.Metadata;
using Tributary.Broker.Network;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Handlers;

/// <summary>
/// Metadata v0-12: this broker as the only broker, leader and sole replica of every partition. Topics asked for by
/// name that do not exist are created when auto.create.topics.enable is on and the client allows it (v4+), exactly
/// as Kafka does; a topic name that is not legal is answered with INVALID_TOPIC_EXCEPTION. v10+ may name topics by id.
/// </summary>
internal sealed class MetadataHandler(BrokerState broker, TopicCreator creator) : ApiHandler<MetadataRequest, MetadataResponse>
{
    public override ApiKey Key => ApiKey.Metadata;
    public override short MinVersion => 0;
    public override short MaxVersion => 12;

    protected override ValueTask<MetadataResponse?> HandleAsync(RequestContext context, MetadataRequest request)
    {
        var version = context.ApiVersion;
        var response = new MetadataResponse
        {
            Brokers = [new MetadataResponse.MetadataResponseBroker { NodeId = broker.NodeId, Host = broker.AdvertisedHost, Port = broker.AdvertisedPort }],
            ClusterId = broker.Identity.ClusterId,
            ControllerId = broker.NodeId,
        };
        var allTopics = request.Topics is null || (version == 0 && request.Topics.Count == 0);
        if (allTopics)
        {
            foreach (var topic in broker.Topics.Topics.OrderBy(t => t.Name, StringComparer.Ordinal))
                response.Topics.Add(Describe(topic));
            return new(response);
        }
        var autoCreate = version < 4 || request.AllowAutoTopicCreation;
        foreach (var requested in request.Topics!)
        {
            if (requested.Name is null)
            {
                var byId = broker.Topics.Get(requested.TopicId);
                response.Topics.Add(byId is null
                    ? new MetadataResponse.MetadataResponseTopic { ErrorCode = (short)ErrorCode.UnknownTopicId, TopicId = requested.TopicId }
                    : Describe(byId));
                continue;
            }
            var topic = broker.Topics.Get(requested.Name);
            if (topic is null && TopicNames.Validate(requested.Name) is not null)
            {
                response.Topics.Add(new MetadataResponse.MetadataResponseTopic { Name = requested.Name, ErrorCode = (short)ErrorCode.InvalidTopicException });
                continue;
            }
            var error = ErrorCode.UnknownTopicOrPartition;
            if (topic is null && autoCreate && broker.Settings.AutoCreateTopics)
            {
                var outcome = creator.CreateDefault(requested.Name, context.ClientId);
                topic = outcome.Topic;
                response.ThrottleTimeMs = Math.Max(response.ThrottleTimeMs, outcome.ThrottleTimeMs);
                // The limits' refusals are told as they are, so a client knows to slow down or that the broker is full.
                if (outcome.Error is ErrorCode.ThrottlingQuotaExceeded or ErrorCode.PolicyViolation or ErrorCode.KafkaStorageError) error = outcome.Error;
            }
            response.Topics.Add(topic is null
                ? new MetadataResponse.MetadataResponseTopic { Name = requested.Name, ErrorCode = (short)error }
                : Describe(topic));
        }
        return new(response);
    }

    private MetadataResponse.MetadataResponseTopic Describe(TopicInfo topic)
    {
        var replicas = new List<int> { broker.NodeId };
        var result = new MetadataResponse.MetadataResponseTopic
        {
            Name = topic.Name,
            TopicId = topic.Id,
            IsInternal = topic.IsInternal,
            Partitions = new List<MetadataResponse.MetadataResponsePartition>(topic.PartitionCount),
        };
        for (var p = 0; p < topic.PartitionCount; p++)
        {
            if (broker.Topics.IsPartitionOffline(topic.Name, p))
            {
                // Its log directory is offline: as Kafka for a partition with no online replica, no leader and this
                // broker among the offline replicas; clients retry and producers fail it, the other partitions go on.
                result.Partitions.Add(new MetadataResponse.MetadataResponsePartition
                {
                    ErrorCode = (short)ErrorCode.LeaderNotAvailable,
                    PartitionIndex = p,
                    LeaderId = -1,
                    LeaderEpoch = 0,
                    ReplicaNodes = replicas,
                    IsrNodes = [],
                    OfflineReplicas = replicas,
                });
                continue;
            }
            result.Partitions.Add(new MetadataResponse.MetadataResponsePartition
            {
                PartitionIndex = p,
                LeaderId = broker.NodeId,
                LeaderEpoch = 0,
                ReplicaNodes = replicas,
                IsrNodes = replicas,
            });
        }
        return result;
    }
}
