using Tributary.Broker.Cluster;
using Tributary.Broker.Replication;
using Tributary.Storage;

namespace Tributary.Broker.Tests;

/// <summary>The leader's view of its followers: which of them it wants in the ISR.</summary>
public sealed class LeaderPartitionTests
{
    [Fact]
    public void A_caught_up_follower_joins_the_isr_only_while_it_is_registered()
    {
        // Found by ClusterFaultTests: a broker killed a moment ago still looked caught up, so its leader added it back
        // each time the controller dropped it, dozens of ISR writes in turn, until its lag ran out.
        var dir = Path.Combine(Path.GetTempPath(), "tributary-leader-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            using var log = PartitionLog.Open(dir, new LogConfig(), TimeProvider.System);
            var state = new PartitionState([1, 2, 3], [1, 3], Leader: 1, LeaderEpoch: 1, PartitionEpoch: 1);
            var leader = new LeaderPartition("t", 0, log, state, nodeId: 1, initialHighWatermark: 0);
            leader.Update(state, nowMs: 1000);
            leader.OnFollowerFetch(2, fetchOffset: 0, nowMs: 1000);

            Assert.Equal([1, 2, 3], Assert.IsType<int[]>(leader.WantedIsr(1000, lagMaxMs: 3000, eligible: _ => true)));
            Assert.Null(leader.WantedIsr(1000, lagMaxMs: 3000, eligible: replica => replica != 2));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
