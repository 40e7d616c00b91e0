using Tributary.Protocol.Messages;

namespace Tributary.Broker.Cluster;

/// <summary>
/// Carries out AlterPartitionReassignments and ListPartitionReassignments on the metadata store. Any broker may: the
/// decision is <see cref="PartitionReassignment"/>'s, written with a compare-and-swap on the partition's state, and
/// recomputed from the next image when another writer (the leader's ISR change, the controller) got there first. The
/// active controller completes a reassignment once its target is in sync (<see cref="ClusterController"/>).
/// </summary>
public sealed class PartitionReassigner(IMetadataStore store, bool uncleanLeaderElection)
{
    /// <summary>One partition's ongoing reassignment, as ListPartitionReassignments reports it.</summary>
    public sealed record Ongoing(string Topic, int Partition, int[] Replicas, int[] Adding, int[] Removing);

    /// <summary>
    /// Starts, replaces (a target) or cancels (null) the reassignment of one partition. Returns once this broker's image
    /// holds the change. <see cref="OperationCanceledException"/> when <paramref name="cancellationToken"/> ends first.
    /// </summary>
    public async Task<(ErrorCode Error, string? Message)> AlterAsync(string topic, int partition, IReadOnlyList<int>? target, CancellationToken cancellationToken)
    {
        while (true)
        {
            var image = store.Image;
            if (image.TopicsByName.GetValueOrDefault(topic) is not { } info) return (ErrorCode.UnknownTopicOrPartition, $"Unable to find a topic named {topic}.");
            if (partition < 0 || partition >= info.PartitionCount) return (ErrorCode.UnknownTopicOrPartition, $"Unable to find partition {topic}:{partition}.");
            var state = info.Partitions[partition];
            // As the controller: a broker in controlled shutdown neither leads nor is elected.
            var alive = image.Brokers.Values.Where(b => !b.ShuttingDown).Select(b => b.NodeId).ToHashSet();
            PartitionReassignment.Decision decision;
            if (target is null)
            {
                decision = PartitionReassignment.Cancel(state, alive, UncleanAllowed(info), topic, partition);
            }
            else
            {
                if (PartitionReassignment.TargetProblem(target, image.Brokers.Keys) is { } problem) return (ErrorCode.InvalidReplicaAssignment, problem);
                decision = PartitionReassignment.Start(state, target, alive);
            }
            if (decision.Error != ErrorCode.None) return (decision.Error, decision.Message);
            if (decision.Next is not { } next) return (ErrorCode.None, null);
            if (await store.AlterPartitionAsync(topic, info.Id, partition, state, next, asController: false, cancellationToken).ConfigureAwait(false))
                return (ErrorCode.None, null);
            await NewerImageAsync(image.Revision, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The reassignments in progress: of every partition (<paramref name="topics"/> null), or of the named partitions
    /// (unknown topics and partitions are left out, as Kafka does).
    /// </summary>
    public IReadOnlyList<Ongoing> List(IEnumerable<(string Topic, IReadOnlyList<int> Partitions)>? topics)
    {
        var image = store.Image;
        var result = new List<Ongoing>();
        if (topics is null)
        {
            foreach (var info in image.TopicsByName.Values.OrderBy(t => t.Name, StringComparer.Ordinal))
                for (var p = 0; p < info.PartitionCount; p++)
                    Add(info, p);
            return result;
        }
        foreach (var (name, partitions) in topics)
            if (image.TopicsByName.GetValueOrDefault(name) is { } info)
                foreach (var p in partitions)
                    if (p >= 0 && p < info.PartitionCount) Add(info, p);
        return result;

        void Add(TopicInfo info, int p)
        {
            var s = info.Partitions[p];
            if (s.IsReassigning) result.Add(new Ongoing(info.Name, p, s.Replicas, s.AddingReplicas, s.RemovingReplicas));
        }
    }

    private bool UncleanAllowed(TopicInfo topic) =>
        topic.Configs.TryGetValue("unclean.leader.election.enable", out var value) ? string.Equals(value, "true", StringComparison.OrdinalIgnoreCase) : uncleanLeaderElection;

    /// <summary>Waits for an image newer than <paramref name="revision"/> (the write lost a race; the winner's state is on its way).</summary>
    private async Task NewerImageAsync(long revision, CancellationToken cancellationToken)
    {
        var newer = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnPublished(MetadataImage previous, MetadataImage next)
        {
            if (next.Revision > revision) newer.TrySetResult();
        }
        store.Published += OnPublished;
        try
        {
            if (store.Image.Revision > revision) return;
            // A lost race means a newer revision exists; the bound only guards against waiting on a stalled watch.
            await newer.Task.WaitAsync(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
        finally
        {
            store.Published -= OnPublished;
        }
    }
}
