using Tributary.Broker.Cluster;
using Tributary.Broker.Replication;

namespace Tributary.Broker.Tests;

/// <summary>
/// The replication quotas of KIP-73: the token bucket's rate and overshoot, which replicas the topic configs throttle on
/// which broker (never an in-sync one), the precedence of the rate configs, and that the fetch-path checks allocate nothing.
/// </summary>
public sealed class ReplicationThrottleTests
{
    [Fact]
    public void TheBucketLetsOneTransferOvershootAndThenWaitsForTheRateToPayItBack()
    {
        var time = FakeTime.Create();
        var bucket = new TokenBucket(time);
        Assert.False(bucket.IsExceeded()); // unlimited
        bucket.Rate = 1000;
        Assert.False(bucket.IsExceeded());
        bucket.Record(1500);
        Assert.True(bucket.IsExceeded());
        Assert.Equal(501, bucket.TimeUntilAvailable().TotalMilliseconds, 1);
        time.Advance(400);
        Assert.True(bucket.IsExceeded());
        time.Advance(200);
        Assert.False(bucket.IsExceeded());
        // Idle time refills at most one second's worth.
        time.Advance(10_000);
        bucket.Record(1000);
        Assert.True(bucket.IsExceeded());
        bucket.Rate = TokenBucket.Unlimited;
        Assert.False(bucket.IsExceeded());
    }

    private static MetadataImage Image(Dictionary<string, string> configs, Dictionary<string, IReadOnlyDictionary<string, string>>? brokerConfigs = null) =>
        new("c", 1, 1, [], [new TopicInfo("t", Guid.NewGuid(), [new PartitionState([1, 2, 3], [1, 2], 1, 0, 0), new PartitionState([2, 1, 3], [2, 1], 2, 0, 0)], configs)],
            brokerConfigs);

    [Fact]
    public void OnlyListedReplicasOutsideTheIsrAreThrottled()
    {
        var throttle = new ReplicationThrottle(1, new BrokerSettings(new Dictionary<string, string>()), FakeTime.Create());
        var image = Image(new() { [ReplicationThrottle.LeaderReplicas] = "0:1, 1:2", [ReplicationThrottle.FollowerReplicas] = "*" });
        throttle.Apply(image);
        Assert.True(throttle.CountsAsLeader("t", 0, 3, image)); // 0:1 names this broker; replica 3 is not in sync
        Assert.False(throttle.CountsAsLeader("t", 0, 2, image)); // an in-sync follower is never throttled
        Assert.False(throttle.CountsAsLeader("t", 1, 3, image)); // 1:2 names another broker
        Assert.False(throttle.CountsAsLeader("other", 0, 3, image));
        Assert.True(throttle.HasFollowerThrottles);
        Assert.False(throttle.CountsAsFollower("t", 0, image)); // broker 1 is in both ISRs

        var three = new ReplicationThrottle(3, new BrokerSettings(new Dictionary<string, string>()), FakeTime.Create());
        three.Apply(image);
        Assert.True(three.CountsAsFollower("t", 0, image));
        Assert.True(three.CountsAsFollower("t", 1, image));
        Assert.False(three.CountsAsLeader("t", 0, 2, image));

        throttle.Apply(Image([]));
        Assert.False(throttle.CountsAsLeader("t", 0, 3, image));
        Assert.False(throttle.HasFollowerThrottles);
    }

    [Fact]
    public void ABrokersOwnRateWinsOverTheClusterDefaultWhichWinsOverTheStartSetting()
    {
        var settings = new BrokerSettings(new Dictionary<string, string> { [ReplicationThrottle.LeaderRate] = "10" });
        var throttle = new ReplicationThrottle(1, settings, FakeTime.Create());
        throttle.Apply(Image([]));
        Assert.Equal(10, throttle.Leader.Rate);
        Assert.Equal(TokenBucket.Unlimited, throttle.Follower.Rate);
        throttle.Apply(Image([], new() { [""] = new Dictionary<string, string> { [ReplicationThrottle.LeaderRate] = "20", [ReplicationThrottle.FollowerRate] = "30" } }));
        Assert.Equal(20, throttle.Leader.Rate);
        Assert.Equal(30, throttle.Follower.Rate);
        throttle.Apply(Image([], new()
        {
            [""] = new Dictionary<string, string> { [ReplicationThrottle.LeaderRate] = "20" },
            ["1"] = new Dictionary<string, string> { [ReplicationThrottle.LeaderRate] = "40" },
            ["2"] = new Dictionary<string, string> { [ReplicationThrottle.LeaderRate] = "50" },
        }));
        Assert.Equal(40, throttle.Leader.Rate);
    }

    [Fact]
    public void TheFetchPathChecksAllocateNothing()
    {
        var throttle = new ReplicationThrottle(1, new BrokerSettings(new Dictionary<string, string> { [ReplicationThrottle.LeaderRate] = "1000000" }), FakeTime.Create());
        var image = Image(new() { [ReplicationThrottle.LeaderReplicas] = "0:1" });
        throttle.Apply(image);
        var counted = 0;
        for (var i = 0; i < 100; i++) Step(); // warm up
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++) Step();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(10_100, counted);

        void Step()
        {
            if (throttle.CountsAsLeader("t", 0, 3, image) && !throttle.Leader.IsExceeded()) counted++;
            throttle.Leader.Record(1);
            throttle.CountsAsFollower("t", 0, image);
        }
    }
}
