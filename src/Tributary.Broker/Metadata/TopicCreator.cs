using Tributary.Protocol.Messages;

namespace Tributary.Broker.Metadata;

/// <summary>Validates and creates topics for CreateTopics and for auto-creation, with Kafka's errors and messages.</summary>
public sealed class TopicCreator(BrokerState broker)
{
    public readonly record struct Outcome(ErrorCode Error, string? Message, TopicInfo? Topic, int Partitions);

    /// <summary>Auto-creation with the broker's defaults; null if the topic cannot be created.</summary>
    public TopicInfo? CreateDefault(string name)
    {
        var outcome = Create(name, -1, -1, new Dictionary<string, string?>(), validateOnly: false);
        return outcome.Topic ?? broker.Topics.Get(name);
    }

    /// <param name="partitions">-1 for num.partitions.</param>
    /// <param name="replicationFactor">-1 for the default; any other value but 1 cannot be met by one broker.</param>
    public Outcome Create(string name, int partitions, short replicationFactor, IReadOnlyDictionary<string, string?> configs, bool validateOnly)
    {
        if (TopicNames.Validate(name) is { } invalid) return new(ErrorCode.InvalidTopicException, invalid, null, 0);
        if (broker.Topics.Get(name) is not null) return new(ErrorCode.TopicAlreadyExists, $"Topic '{name}' already exists.", null, 0);
        var count = partitions == -1 ? broker.Settings.DefaultPartitions : partitions;
        if (count <= 0) return new(ErrorCode.InvalidPartitions, "Number of partitions must be larger than 0.", null, 0);
        if (count > 100_000) return new(ErrorCode.InvalidPartitions, $"Number of partitions {count} exceeds the limit of 100000.", null, 0);
        if (replicationFactor == 0 || replicationFactor < -1)
            return new(ErrorCode.InvalidReplicationFactor, "Replication factor must be larger than 0, or -1 to use the default value.", null, 0);
        if (replicationFactor > 1)
            return new(ErrorCode.InvalidReplicationFactor, $"Unable to replicate the partition {replicationFactor} time(s): The target replication factor of {replicationFactor} cannot be reached because only 1 broker(s) are registered.", null, 0);
        var accepted = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in configs)
        {
            if (TopicConfigDefinitions.Validate(key, value) is { } problem) return new(ErrorCode.InvalidConfig, problem, null, 0);
            if (value is not null) accepted[key] = value.Trim();
        }
        if (validateOnly) return new(ErrorCode.None, null, null, count);
        var topic = broker.Topics.Create(name, count, accepted, TopicNames.IsInternal(name));
        return topic is null
            ? new(ErrorCode.TopicAlreadyExists, $"Topic '{name}' already exists.", null, 0)
            : new(ErrorCode.None, null, topic, count);
    }
}
