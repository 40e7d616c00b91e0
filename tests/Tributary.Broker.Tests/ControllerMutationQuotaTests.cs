using Tributary.Broker.Metadata;

namespace Tributary.Broker.Tests;

/// <summary>The KIP-599 token bucket: burst, refill at the rate, strict and permissive recording.</summary>
public sealed class ControllerMutationQuotaTests
{
    /// <summary>A monotonic clock that moves only when told.</summary>
    private static (ControllerMutationQuota Quota, FakeTimeProvider Clock) Quota(double rate = 10)
    {
        var clock = FakeTime.Create();
        return (new ControllerMutationQuota(new TopicLimits(4000, rate, 11, 1, 0), clock), clock);
    }

    [Fact]
    public void Permissive_recording_refills_only_for_the_time_that_passed()
    {
        var (quota, clock) = Quota();
        // 110 in the burst; one partition every 10 ms for 2 s is 200 recorded while 20 are refilled.
        for (var i = 0; i < 200; i++)
        {
            quota.Record("c", 1);
            clock.Advance(TimeSpan.FromMilliseconds(10));
        }
        // 110 - 200 + 20 = -70 tokens: 7 s to climb back to zero at 10/s.
        Assert.InRange(quota.ThrottleTimeMs("c"), 6_990, 7_001);
    }

    [Fact]
    public void Strict_recording_admits_while_the_bucket_is_not_below_zero()
    {
        var (quota, clock) = Quota();
        Assert.Equal(0, quota.TryRecord("c", 110));
        Assert.Equal(0, quota.TryRecord("c", 5)); // the bucket was at zero: admitted whole, now -5
        Assert.Equal(500, quota.TryRecord("c", 1));
        clock.Advance(TimeSpan.FromMilliseconds(500));
        Assert.Equal(0, quota.ThrottleTimeMs("c"));
        Assert.Equal(0, quota.TryRecord("other", 110)); // buckets are per client id
    }

    [Fact]
    public void The_bucket_never_holds_more_than_the_burst()
    {
        var (quota, clock) = Quota();
        clock.Advance(TimeSpan.FromHours(1));
        Assert.Equal(0, quota.TryRecord("c", 111));
        Assert.True(quota.ThrottleTimeMs("c") > 0);
    }
}
