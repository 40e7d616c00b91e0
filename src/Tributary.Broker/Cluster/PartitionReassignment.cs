using Tributary.Protocol.Messages;

namespace Tributary.Broker.Cluster;

/// <summary>
/// KIP-455 partition reassignment, decided as Kafka 3.9's controller decides it (PartitionReassignmentReplicas,
/// PartitionReassignmentRevert, PartitionChangeBuilder), as pure functions from one <see cref="PartitionState"/> to the
/// next. The caller writes the result with a compare-and-swap on the partition epoch.
/// <list type="number">
/// <item><b>Start</b> (AlterPartitionReassignments with a target): replicas become the target followed by the current
/// replicas the target drops (ascending), <c>adding</c> = target − current, <c>removing</c> = current − target (both
/// ascending). ISR and leader stay: a new replica starts as a follower outside the ISR, copies the leader's log, and
/// the leader adds it to the ISR once its log reaches the high watermark, as for any follower. A target given while
/// another reassignment runs is taken relative to the current (union) replica list, as Kafka does.</item>
/// <item><b>Complete</b> (the active controller, after any change): once every target replica is in the ISR, replicas
/// become the target, the removed replicas leave the ISR, and adding/removing are cleared. The leader stays if it is
/// still in the ISR and alive; otherwise the first target replica in the ISR that is alive leads.</item>
/// <item><b>Cancel</b> (a null target): the replicas being added leave the replica list and the ISR; what remains is the
/// original replica set (in the current list's order, as Kafka reverts it). If that would leave the ISR empty (every
/// in-sync replica was being added) the revert is an unclean election and is refused unless
/// <c>unclean.leader.election.enable</c> allows it.</item>
/// </list>
/// Every change bumps the partition epoch; the leader epoch is bumped when the leader changes or a replica leaves the
/// replica list, which fences the removed replicas' fetches (FENCED_LEADER_EPOCH).
/// <para>
/// Invariants, which are what keeps every acknowledged record: the ISR after completion holds every target replica, so
/// completion never shrinks the ISR below the target's size (and so below what <c>min.insync.replicas</c> asked of it);
/// a replica is in the ISR only once it holds everything below the high watermark, i.e. everything acknowledged with
/// acks=all; and leadership only ever moves to an ISR member. A completion that would leave no live leader is not made.
/// </para>
/// </summary>
public static class PartitionReassignment
{
    /// <summary>The outcome of a request on one partition: the next state (null: nothing to change), or an error.</summary>
    public readonly record struct Decision(PartitionState? Next, ErrorCode Error = ErrorCode.None, string? Message = null)
    {
        public static Decision Fail(ErrorCode error, string message) => new(null, error, message);
    }

    /// <summary>Kafka's validateManualPartitionAssignment: null when the target is usable, else why not.</summary>
    public static string? TargetProblem(IReadOnlyList<int> target, IReadOnlyCollection<int> registered)
    {
        if (target.Count == 0) return "The manual partition assignment includes an empty replica list.";
        var seen = new HashSet<int>();
        foreach (var broker in target)
            if (!seen.Add(broker)) return $"The manual partition assignment includes the broker {broker} more than once.";
        foreach (var broker in target)
            if (!registered.Contains(broker)) return $"The manual partition assignment includes broker {broker}, but no such broker is registered.";
        return null;
    }

    /// <summary>Starts (or replaces) a reassignment to <paramref name="target"/>; completes it at once when the ISR already allows.</summary>
    public static Decision Start(PartitionState state, IReadOnlyList<int> target, IReadOnlySet<int> alive)
    {
        var removing = state.Replicas.Where(r => !target.Contains(r)).Order().ToArray();
        var adding = target.Where(r => !state.Replicas.Contains(r)).Order().ToArray();
        int[] replicas = [.. target, .. removing];
        var next = state with { Replicas = replicas, AddingReplicas = adding, RemovingReplicas = removing };
        // Nothing to wait for (a reorder, or only removals with the rest in sync): done in the same change, as Kafka.
        next = Completed(next, alive) ?? next;
        return new(Changed(state, next, alive));
    }

    /// <summary>The completed reassignment, once every target replica is in the ISR; null while it must wait (or none runs).</summary>
    public static PartitionState? Complete(PartitionState state, IReadOnlySet<int> alive) =>
        state.IsReassigning && Completed(state, alive) is { } done ? Changed(state, done, alive) : null;

    /// <summary>Cancels the reassignment in progress: back to the original replicas (Kafka's revert).</summary>
    public static Decision Cancel(PartitionState state, IReadOnlySet<int> alive, bool allowUnclean, string topic, int partition)
    {
        if (!state.IsReassigning) return Decision.Fail(ErrorCode.NoReassignmentInProgress, "No partition reassignment is in progress.");
        var replicas = state.Replicas.Where(r => !state.AddingReplicas.Contains(r)).ToArray();
        var isr = state.Isr.Where(r => !state.AddingReplicas.Contains(r)).ToArray();
        if (replicas.Length == 0)
            return Decision.Fail(ErrorCode.InvalidReplicaAssignment, "Invalid replica assignment: addingReplicas contains all replicas.");
        var unclean = isr.Length == 0;
        if (unclean && !allowUnclean)
            return Decision.Fail(ErrorCode.InvalidReplicaAssignment,
                $"Unable to revert partition assignment for {topic}:{partition} because it would require an unclean leader election.");
        var next = state with { Replicas = replicas, Isr = unclean ? [replicas[0]] : isr, AddingReplicas = [], RemovingReplicas = [] };
        if (unclean)
        {
            // The new leader's log becomes the truth: it alone is in sync.
            var leader = replicas.FirstOrDefault(alive.Contains, -1);
            next = next with { Leader = leader, Isr = leader >= 0 ? [leader] : next.Isr };
            return new(Bump(state, next));
        }
        return new(Changed(state, next, alive, electEvenIfNone: true));
    }

    /// <summary>Replicas, ISR and the empty adding/removing sets of a reassignment whose target is all in sync; else null.</summary>
    private static PartitionState? Completed(PartitionState state, IReadOnlySet<int> alive)
    {
        if (!state.IsReassigning) return null;
        var isr = state.Isr.Where(r => !state.RemovingReplicas.Contains(r)).ToArray();
        var replicas = state.Replicas.Where(r => !state.RemovingReplicas.Contains(r)).ToArray();
        if (isr.Length == 0 || replicas.Length == 0 || !replicas.All(isr.Contains)) return null;
        var done = state with { Replicas = replicas, Isr = isr, AddingReplicas = [], RemovingReplicas = [] };
        return Elect(done, alive) < 0 ? null : done;
    }

    /// <summary>
    /// Elects the leader of <paramref name="next"/> (as Kafka's electAnyLeader: the current leader while it is in the
    /// ISR and alive, else the first replica in the ISR that is alive) and bumps the epochs; null when nothing changed.
    /// </summary>
    private static PartitionState? Changed(PartitionState state, PartitionState next, IReadOnlySet<int> alive, bool electEvenIfNone = false)
    {
        var leader = Elect(next, alive);
        if (leader >= 0 || electEvenIfNone) next = next with { Leader = leader };
        if (next.SameAs(state)) return null;
        return Bump(state, next);
    }

    private static PartitionState Bump(PartitionState state, PartitionState next)
    {
        // A replica leaving the list, like a new leader, needs a new leader epoch: it fences the removed replica.
        var leaderEpochBump = next.Leader != state.Leader || !state.Replicas.All(next.Replicas.Contains);
        return next with
        {
            LeaderEpoch = leaderEpochBump ? state.LeaderEpoch + 1 : state.LeaderEpoch,
            PartitionEpoch = state.PartitionEpoch + 1,
        };
    }

    private static int Elect(PartitionState state, IReadOnlySet<int> alive)
    {
        if (state.Leader >= 0 && state.InIsr(state.Leader) && state.IsReplica(state.Leader) && alive.Contains(state.Leader)) return state.Leader;
        return state.Replicas.FirstOrDefault(r => state.InIsr(r) && alive.Contains(r), -1);
    }
}
