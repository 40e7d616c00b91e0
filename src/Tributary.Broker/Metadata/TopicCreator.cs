using Tributary.Broker.Cluster;
using Tributary.Protocol.Messages;
using Tributary.Storage;

namespace Tributary.Broker.Metadata;

/// <summary>
/// Validates and creates topics for CreateTopics and for auto-creation, with Kafka's errors and messages, under the
/// broker's <see cref="TopicLimits"/>: max.broker.partitions (POLICY_VIOLATION) here, the mutation quota by the callers
/// (its mode depends on the API and version). A storage failure (out of descriptors, disk) is KAFKA_STORAGE_ERROR for
/// that topic and leaves nothing behind.
/// </summary>
public sealed class TopicCreator(BrokerState broker)
{
    public const string ThrottledMessage = "The throttling quota has been exceeded.";

    public readonly record struct Outcome(ErrorCode Error, string? Message, TopicInfo? Topic, int Partitions, int ThrottleTimeMs = 0, int ReplicationFactor = 0);

    /// <summary>
    /// Auto-creation (Metadata) with the broker's defaults, under the same limits as CreateTopics, the quota in strict
    /// mode: THROTTLING_QUOTA_EXCEEDED with a throttle time while the client's bucket is empty. An existing topic
    /// (created meanwhile) is returned as success.
    /// </summary>
    public async Task<Outcome> CreateDefaultAsync(string name, string principal, string? clientId)
    {
        var throttle = broker.MutationQuota.ThrottleTimeMs(principal, clientId);
        if (throttle > 0) return new(ErrorCode.ThrottlingQuotaExceeded, ThrottledMessage, null, 0, throttle);
        var outcome = await CreateAsync(name, -1, -1, null, new Dictionary<string, string?>(), validateOnly: false).ConfigureAwait(false);
        if (outcome.Topic is not null) broker.MutationQuota.Record(principal, clientId, outcome.Partitions);
        else if (broker.Topics.Get(name) is { } existing) return new(ErrorCode.None, null, existing, existing.PartitionCount);
        return outcome;
    }

    /// <param name="partitions">-1 for num.partitions.</param>
    /// <param name="replicationFactor">-1 for default.replication.factor.</param>
    /// <param name="assignment">Explicit replicas per partition (then both counts are -1), or null to place them.</param>
    public async Task<Outcome> CreateAsync(string name, int partitions, short replicationFactor, IReadOnlyList<int[]>? assignment,
        IReadOnlyDictionary<string, string?> configs, bool validateOnly)
    {
        if (TopicNames.Validate(name) is { } invalid) return new(ErrorCode.InvalidTopicException, invalid, null, 0);
        if (broker.Topics.Get(name) is not null) return new(ErrorCode.TopicAlreadyExists, $"Topic '{name}' already exists.", null, 0);
        var count = assignment?.Count ?? (partitions == -1 ? broker.Settings.DefaultPartitions : partitions);
        if (count <= 0) return new(ErrorCode.InvalidPartitions, "Number of partitions must be larger than 0.", null, 0);
        if (count > 100_000) return new(ErrorCode.InvalidPartitions, $"Number of partitions {count} exceeds the limit of 100000.", null, 0);
        if (replicationFactor == 0 || replicationFactor < -1)
            return new(ErrorCode.InvalidReplicationFactor, "Replication factor must be larger than 0, or -1 to use the default value.", null, 0);
        var image = broker.Topics.Image;
        if (assignment is not null)
        {
            if (AssignmentProblem(assignment, image) is { } problem) return new(ErrorCode.InvalidReplicaAssignment, problem, null, 0);
        }
        else
        {
            var factor = replicationFactor == -1 ? broker.Settings.Int("default.replication.factor") : replicationFactor;
            try
            {
                assignment = ReplicaPlacement.Assign(image.Brokers.Values, count, factor);
            }
            catch (InvalidReplicationFactorException e)
            {
                return new(ErrorCode.InvalidReplicationFactor, e.Message, null, 0);
            }
        }
        var accepted = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in configs)
        {
            if (TopicConfigDefinitions.Validate(key, value) is { } problem) return new(ErrorCode.InvalidConfig, problem, null, 0);
            if (value is not null) accepted[key] = value.Trim();
        }
        var limit = broker.Settings.TopicLimits.MaxBrokerPartitions;
        var local = assignment.Count(r => Array.IndexOf(r, broker.NodeId) >= 0);
        if (limit > 0 && (long)broker.Topics.PartitionTotal + local > limit)
            return new(ErrorCode.PolicyViolation, new PartitionLimitException(broker.Topics.PartitionTotal, local, limit).Message, null, 0);
        if (validateOnly) return new(ErrorCode.None, null, null, count, ReplicationFactor: assignment[0].Length);
        TopicInfo? topic;
        try
        {
            topic = await broker.Topics.CreateAsync(name, assignment, accepted, TopicNames.IsInternal(name), limit > 0 ? limit : int.MaxValue).ConfigureAwait(false);
        }
        catch (PartitionLimitException e)
        {
            return new(ErrorCode.PolicyViolation, e.Message, null, 0);
        }
        catch (Exception e) when (e is StorageException or IOException or UnauthorizedAccessException)
        {
            broker.Log.Warn($"Creating topic '{name}' with {count} partition(s) failed: {e.Message}");
            return new(ErrorCode.KafkaStorageError, $"Could not create the partitions of topic '{name}': {e.Message}", null, 0);
        }
        return topic is null
            ? new(ErrorCode.TopicAlreadyExists, $"Topic '{name}' already exists.", null, 0)
            : new(ErrorCode.None, null, topic, count, ReplicationFactor: assignment[0].Length);
    }

    /// <summary>Kafka's checks of a manual assignment: same replica count everywhere, no broker twice, every broker registered.</summary>
    public static string? AssignmentProblem(IReadOnlyList<int[]> assignment, MetadataImage image)
    {
        if (assignment.Count == 0) return "The manual partition assignment is empty.";
        var factor = assignment[0].Length;
        for (var p = 0; p < assignment.Count; p++)
        {
            var replicas = assignment[p];
            if (replicas.Length == 0) return $"The manual partition assignment includes an empty replica list for partition {p}.";
            if (replicas.Length != factor)
                return $"The manual partition assignment includes a partition with {replicas.Length} replica(s), but this is not consistent with previous partitions, which have {factor} replica(s).";
            if (replicas.Distinct().Count() != replicas.Length)
                return $"The manual partition assignment includes the broker {replicas.GroupBy(r => r).First(g => g.Count() > 1).Key} more than once.";
            foreach (var id in replicas)
                if (!image.Brokers.ContainsKey(id))
                    return $"The manual partition assignment includes broker {id}, but no such broker is registered.";
        }
        return null;
    }
}
