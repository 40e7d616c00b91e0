using Tributary.Broker.Metadata;
using Tributary.SchemaRegistry;

namespace Tributary.Server;

/// <summary>
/// The registry's view of the cluster, from the broker's metadata image: <c>_schemas</c>-0's leader takes writes (at the
/// registry URL its registration advertises), a broker with an in-sync replica (or none, following the leader over
/// Fetch) answers reads from its own state once it is current, and the
/// first write creates <c>_schemas</c> with <c>schema.registry.topic.replication.factor</c> replicas (at most the brokers
/// registered then), as FindCoordinator creates <c>__consumer_offsets</c>.
/// </summary>
internal sealed class SchemaRegistryCluster(TopicCatalog topics, SchemaStore store) : IRegistryCluster
{
    private const string Topic = InternalTopics.SchemasTopic;

    /// <summary>How often a wait for a leader looks again: an election and a writer's load are not events it can await.</summary>
    private static readonly TimeSpan LeaderPoll = TimeSpan.FromMilliseconds(20);

    public static readonly IReadOnlyDictionary<string, string> TopicConfigs = new Dictionary<string, string> { ["cleanup.policy"] = "compact" };

    public int NodeId => topics.NodeId;

    public bool ServesReads
    {
        get
        {
            if (topics.Image.Partition(Topic, 0) is not { } state) return true;
            // No replica here: the state follows the leader over Fetch, and is current when the last fetch reached its end.
            if (!state.IsReplica(NodeId)) return store.IsCurrent;
            return (state.Leader == NodeId || state.InIsr(NodeId)) && topics.GetPartition(Topic, 0) is not null
                && !topics.IsPartitionOffline(Topic, 0) && store.IsCurrent;
        }
    }

    public Task EnsureTopicAsync(CancellationToken cancellationToken) =>
        topics.Get(Topic) is not null ? Task.CompletedTask : topics.EnsureInternalTopicAsync(Topic, 1, TopicConfigs);

    public async Task<RegistryLeader?> FindLeaderAsync(TimeSpan wait, CancellationToken cancellationToken)
    {
        // The wall clock: this waits for other brokers, whatever clock the broker's own timers run on.
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            if (Current() is { } leader) return leader;
            if (waited.Elapsed >= wait) return null;
            await Task.Delay(LeaderPoll, cancellationToken).ConfigureAwait(false);
        }
    }

    private RegistryLeader? Current()
    {
        var image = topics.Image;
        if (image.Partition(Topic, 0) is not { Leader: >= 0 } state) return null;
        if (state.Leader == NodeId) return store.IsWriter ? new RegistryLeader(NodeId, null) : null;
        return image.Brokers.GetValueOrDefault(state.Leader)?.SchemaRegistryUrl is { } url ? new RegistryLeader(state.Leader, url) : null;
    }
}
