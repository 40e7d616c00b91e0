using Tributary.Broker.Cluster;
using Tributary.Broker.Replication;
using Tributary.Protocol.Records;
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

    [Fact]
    public async Task A_joining_replica_holds_the_high_watermark_back_while_its_isr_write_is_in_flight()
    {
        // Kafka's maximal ISR: once the expansion commits, the controller may complete a reassignment or elect the new
        // member before this leader sees it; nothing may be acknowledged meanwhile that the new member lacks.
        var dir = Path.Combine(Path.GetTempPath(), "tributary-leader-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            using var log = PartitionLog.Open(dir, new LogConfig(), TimeProvider.System);
            var state = new PartitionState([1, 2, 3], [1, 2], Leader: 1, LeaderEpoch: 1, PartitionEpoch: 1);
            var leader = new LeaderPartition("t", 0, log, state, nodeId: 1, initialHighWatermark: 0);
            leader.Update(state, nowMs: 1000);
            for (var i = 0; i < 10; i++)
                await log.AppendAsync(new RecordBatchBuilder().Add(1000, null, [(byte)i]).Build());
            leader.OnFollowerFetch(3, fetchOffset: 4, nowMs: 1000); // 3 reached the high watermark (0): it may join
            var wanted = Assert.IsType<int[]>(leader.WantedIsr(1000, lagMaxMs: 3000, eligible: _ => true));
            Assert.Equal([1, 2, 3], wanted);

            leader.ProposeIsr(wanted);
            leader.OnFollowerFetch(2, fetchOffset: 10, nowMs: 1001);
            Assert.Equal(4, leader.HighWatermark); // not 10: replica 3 holds only 4 records
            leader.IsrWritten(); // refused: the committed ISR [1, 2] stands again
            Assert.Equal(10, leader.HighWatermark);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
