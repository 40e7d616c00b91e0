using Tributary.Broker.Cluster;
using Tributary.Broker.Groups;
using Tributary.Broker.Transactions;

namespace Tributary.Broker.Metadata;

/// <summary>
/// The internal topics the broker owns and alone writes: <c>__consumer_offsets</c>, <c>__transaction_state</c> (Kafka's
/// <c>Topic.isInternal</c>) and <c>_schemas</c> when the embedded registry created it (an external registry may keep
/// its own <c>_schemas</c> here, which stays an ordinary topic). Clients may read them; Produce, DeleteRecords,
/// CreatePartitions and configs that would break them are refused. The coordinators and the registry append to the
/// partition logs directly, never through Produce, so none of these refusals stands in their way.
/// </summary>
public static class InternalTopics
{
    /// <summary>The schema registry's topic, created internal by the host's embedded registry.</summary>
    public const string SchemasTopic = "_schemas";

    public static bool IsOwned(TopicInfo topic) =>
        topic.Name is GroupSettings.OffsetsTopic or TransactionSettings.StateTopic
        || (topic.IsInternal && topic.Name == SchemasTopic);

    /// <summary>
    /// Why <paramref name="configs"/> (the topic's whole set after a change) would break an owned internal topic, or
    /// null. Their state is "last record per key", so the policy must stay exactly compact: delete (alone or with
    /// compact) would drop live offsets, transactions or schemas with age.
    /// </summary>
    public static string? ConfigProblem(TopicInfo topic, IReadOnlyDictionary<string, string> configs, Func<string, string> defaults)
    {
        if (!IsOwned(topic)) return null;
        var policy = configs.TryGetValue("cleanup.policy", out var value) ? value : defaults("cleanup.policy");
        var items = policy.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return items is ["compact"]
            ? null
            : $"Topic {topic.Name} is an internal topic: cleanup.policy must stay compact (requested \"{policy}\").";
    }
}
