using Tributary.Broker.Cluster;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Tests;

/// <summary>
/// The pure decisions of a KIP-455 reassignment (<see cref="PartitionReassignment"/>): start, completion, cancel, the
/// leader moving off a removed replica, and the epochs each bumps, against Kafka 3.9's controller behaviour.
/// </summary>
public sealed class PartitionReassignmentTests
{
    private static readonly HashSet<int> AllAlive = [1, 2, 3, 4, 5];

    private static PartitionState State(int[] replicas, int[] isr, int leader, int leaderEpoch = 4, int partitionEpoch = 7) =>
        new(replicas, isr, leader, leaderEpoch, partitionEpoch);

    [Fact]
    public void StartAddsTheTargetFirstAndKeepsIsrAndLeader()
    {
        var next = PartitionReassignment.Start(State([1, 2], [1, 2], 1), [2, 3], AllAlive).Next!;
        Assert.Equal([2, 3, 1], next.Replicas);
        Assert.Equal([3], next.AddingReplicas);
        Assert.Equal([1], next.RemovingReplicas);
        Assert.Equal([1, 2], next.Isr);
        Assert.Equal(1, next.Leader);
        Assert.Equal(4, next.LeaderEpoch); // no replica left the list, the leader stays: no new leader epoch
        Assert.Equal(8, next.PartitionEpoch);
        Assert.True(next.IsReassigning);
    }

    [Fact]
    public void RemovedAndAddedReplicasAreListedInAscendingOrder()
    {
        var next = PartitionReassignment.Start(State([5, 3, 1], [5, 3, 1], 5), [4, 2, 1], AllAlive).Next!;
        Assert.Equal([4, 2, 1, 3, 5], next.Replicas);
        Assert.Equal([2, 4], next.AddingReplicas);
        Assert.Equal([3, 5], next.RemovingReplicas);
    }

    [Fact]
    public void TheSameAssignmentChangesNothing()
    {
        var decision = PartitionReassignment.Start(State([1, 2], [1, 2], 1), [1, 2], AllAlive);
        Assert.Null(decision.Next);
        Assert.Equal(ErrorCode.None, decision.Error);
    }

    [Fact]
    public void ItDoesNotCompleteUntilEveryTargetReplicaIsInSync()
    {
        var started = PartitionReassignment.Start(State([1, 2], [1, 2], 1), [2, 3], AllAlive).Next!;
        Assert.Null(PartitionReassignment.Complete(started, AllAlive));
        // 3 caught up, but 2 (kept, not added) fell out of the ISR: completing now would leave an ISR of one.
        var lagging = started with { Isr = [1, 3], PartitionEpoch = started.PartitionEpoch + 1 };
        Assert.Null(PartitionReassignment.Complete(lagging, AllAlive));
    }

    [Fact]
    public void CompletionMovesTheLeaderOffARemovedReplicaToTheFirstTargetInSync()
    {
        var started = PartitionReassignment.Start(State([1, 2], [1, 2], 1), [2, 3], AllAlive).Next!;
        var caughtUp = started with { Isr = [1, 2, 3], PartitionEpoch = started.PartitionEpoch + 1 };
        var done = PartitionReassignment.Complete(caughtUp, AllAlive)!;
        Assert.Equal([2, 3], done.Replicas);
        Assert.Equal([2, 3], done.Isr);
        Assert.Equal(2, done.Leader);
        Assert.Equal(caughtUp.LeaderEpoch + 1, done.LeaderEpoch);
        Assert.Equal(caughtUp.PartitionEpoch + 1, done.PartitionEpoch);
        Assert.Empty(done.AddingReplicas);
        Assert.Empty(done.RemovingReplicas);
        Assert.False(done.IsReassigning);
        Assert.Null(PartitionReassignment.Complete(done, AllAlive)); // nothing left to complete
    }

    [Fact]
    public void CompletionSkipsADeadTargetWhenChoosingTheLeader()
    {
        var caughtUp = State([2, 3, 1], [1, 2, 3], 1) with { AddingReplicas = [3], RemovingReplicas = [1] };
        var done = PartitionReassignment.Complete(caughtUp, new HashSet<int> { 1, 3 })!;
        Assert.Equal(3, done.Leader);
        Assert.Null(PartitionReassignment.Complete(caughtUp, new HashSet<int> { 1 })); // no live leader: wait
    }

    [Fact]
    public void ALeaderThatStaysKeepsLeadingButTheRemovalBumpsItsEpoch()
    {
        var caughtUp = State([2, 3, 1], [1, 2, 3], 2) with { AddingReplicas = [3], RemovingReplicas = [1] };
        var done = PartitionReassignment.Complete(caughtUp, AllAlive)!;
        Assert.Equal(2, done.Leader);
        Assert.Equal(caughtUp.LeaderEpoch + 1, done.LeaderEpoch); // fences replica 1's fetches
    }

    [Fact]
    public void ShrinkingWithTheRestInSyncCompletesInTheSameChange()
    {
        var next = PartitionReassignment.Start(State([1, 2, 3], [1, 2, 3], 3), [1, 2], AllAlive).Next!;
        Assert.Equal([1, 2], next.Replicas);
        Assert.Equal([1, 2], next.Isr);
        Assert.Equal(1, next.Leader);
        Assert.False(next.IsReassigning);
        Assert.Equal(5, next.LeaderEpoch);
    }

    [Fact]
    public void ReorderingCompletesAtOnceWithoutMovingTheLeader()
    {
        var next = PartitionReassignment.Start(State([1, 2, 3], [1, 2, 3], 1), [3, 2, 1], AllAlive).Next!;
        Assert.Equal([3, 2, 1], next.Replicas);
        Assert.Equal(1, next.Leader);
        Assert.Equal(4, next.LeaderEpoch);
        Assert.False(next.IsReassigning);
    }

    [Fact]
    public void ANewTargetReplacesTheOneInProgress()
    {
        var started = PartitionReassignment.Start(State([1, 2], [1, 2], 1), [2, 3], AllAlive).Next!;
        var again = PartitionReassignment.Start(started, [4, 5], AllAlive).Next!;
        Assert.Equal([4, 5, 1, 2, 3], again.Replicas);
        Assert.Equal([4, 5], again.AddingReplicas);
        Assert.Equal([1, 2, 3], again.RemovingReplicas);
        Assert.Equal(1, again.Leader);
    }

    [Fact]
    public void CancelRevertsToTheOriginalReplicas()
    {
        var started = PartitionReassignment.Start(State([1, 2], [1, 2], 1), [2, 3], AllAlive).Next!;
        var joined = started with { Isr = [1, 2, 3], PartitionEpoch = started.PartitionEpoch + 1 };
        var cancelled = PartitionReassignment.Cancel(joined, AllAlive, allowUnclean: false, "t", 0).Next!;
        Assert.Equal([2, 1], cancelled.Replicas); // Kafka's revert keeps the current list's order
        Assert.Equal([1, 2], cancelled.Isr);
        Assert.Equal(1, cancelled.Leader);
        Assert.False(cancelled.IsReassigning);
        Assert.Equal(joined.LeaderEpoch + 1, cancelled.LeaderEpoch); // replica 3 left the list
    }

    [Fact]
    public void CancelMovesTheLeaderOffAnAddedReplica()
    {
        var state = State([2, 3, 1], [2, 3], 3) with { AddingReplicas = [3], RemovingReplicas = [1] };
        var cancelled = PartitionReassignment.Cancel(state, AllAlive, allowUnclean: false, "t", 0).Next!;
        Assert.Equal([2, 1], cancelled.Replicas);
        Assert.Equal([2], cancelled.Isr);
        Assert.Equal(2, cancelled.Leader);
    }

    [Fact]
    public void CancellingNothingIsNoReassignmentInProgress()
    {
        var decision = PartitionReassignment.Cancel(State([1, 2], [1, 2], 1), AllAlive, allowUnclean: false, "t", 0);
        Assert.Equal(ErrorCode.NoReassignmentInProgress, decision.Error);
        Assert.Equal((ErrorCode)85, decision.Error);
        Assert.Null(decision.Next);
    }

    [Fact]
    public void ACancelThatNeedsAnUncleanElectionIsRefusedUnlessAllowed()
    {
        // Only the added replica is in sync (the originals fell behind): reverting would elect an out-of-sync leader.
        var state = State([3, 1], [3], 3) with { AddingReplicas = [3], RemovingReplicas = [1] };
        var refused = PartitionReassignment.Cancel(state, AllAlive, allowUnclean: false, "orders", 2);
        Assert.Equal(ErrorCode.InvalidReplicaAssignment, refused.Error);
        Assert.Contains("orders:2", refused.Message);
        var allowed = PartitionReassignment.Cancel(state, AllAlive, allowUnclean: true, "orders", 2).Next!;
        Assert.Equal([1], allowed.Replicas);
        Assert.Equal([1], allowed.Isr);
        Assert.Equal(1, allowed.Leader);
    }

    [Theory]
    [InlineData(new int[0], "empty replica list")]
    [InlineData(new[] { 1, 2, 1 }, "broker 1 more than once")]
    [InlineData(new[] { 1, 9 }, "broker 9, but no such broker is registered")]
    public void BadTargetsAreNamed(int[] target, string problem)
    {
        Assert.Contains(problem, PartitionReassignment.TargetProblem(target, [1, 2, 3]));
    }

    [Fact]
    public void AGoodTargetHasNoProblem() => Assert.Null(PartitionReassignment.TargetProblem([3, 1], [1, 2, 3]));
}
