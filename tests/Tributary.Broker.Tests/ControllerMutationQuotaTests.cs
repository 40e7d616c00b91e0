using Tributary.Broker.Cluster;
using Tributary.Broker.Metadata;
using Tributary.Broker.Quotas;

namespace Tributary.Broker.Tests;

/// <summary>The KIP-599 token bucket: burst, refill at the rate, strict and permissive recording.</summary>
public sealed class ControllerMutationQuotaTests
{
    private const string Anonymous = "User:ANONYMOUS";

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
            quota.Record(Anonymous, "c", 1);
            clock.Advance(TimeSpan.FromMilliseconds(10));
        }
        // 110 - 200 + 20 = -70 tokens: 7 s to climb back to zero at 10/s.
        Assert.InRange(quota.ThrottleTimeMs(Anonymous, "c"), 6_990, 7_001);
    }

    [Fact]
    public void Strict_recording_admits_while_the_bucket_is_not_below_zero()
    {
        var (quota, clock) = Quota();
        Assert.Equal(0, quota.TryRecord(Anonymous, "c", 110));
        Assert.Equal(0, quota.TryRecord(Anonymous, "c", 5)); // the bucket was at zero: admitted whole, now -5
        Assert.Equal(500, quota.TryRecord(Anonymous, "c", 1));
        clock.Advance(TimeSpan.FromMilliseconds(500));
        Assert.Equal(0, quota.ThrottleTimeMs(Anonymous, "c"));
        Assert.Equal(0, quota.TryRecord(Anonymous, "other", 110)); // buckets are per client id
    }

    [Fact]
    public void The_bucket_never_holds_more_than_the_burst()
    {
        var (quota, clock) = Quota();
        clock.Advance(TimeSpan.FromHours(1));
        Assert.Equal(0, quota.TryRecord(Anonymous, "c", 111));
        Assert.True(quota.ThrottleTimeMs(Anonymous, "c") > 0);
    }

    [Fact]
    public void A_controller_mutation_rate_client_quota_overrides_the_broker_rate_for_its_entity()
    {
        var clock = FakeTime.Create();
        var image = MetadataImage.Empty.With(clientQuotas: new Dictionary<string, IReadOnlyDictionary<string, double>>
        {
            [new QuotaEntity(true, "alice", false, null).Key] = new Dictionary<string, double> { ["controller_mutation_rate"] = 1 },
            [new QuotaEntity(false, null, true, null).Key] = new Dictionary<string, double> { ["controller_mutation_rate"] = 100 },
        });
        var quota = new ControllerMutationQuota(new TopicLimits(4000, 10, 11, 1, 0), clock, () => image);

        // alice: 1/s, a burst of 11, counted for the user whatever client id she uses.
        Assert.Equal(0, quota.TryRecord("User:alice", "a", 11));
        Assert.Equal(0, quota.TryRecord("User:alice", "b", 1));
        Assert.Equal(1_000, quota.TryRecord("User:alice", "c", 1));
        // Everyone else matches the default client id quota (100/s, a burst of 1100), a budget per client id.
        Assert.Equal(0, quota.TryRecord("User:bob", "a", 1_100));
        Assert.Equal(0, quota.TryRecord("User:bob", "a", 1));
        Assert.Equal(10, quota.TryRecord("User:bob", "a", 1));
        Assert.Equal(0, quota.TryRecord("User:bob", "b", 1_100));
    }
}
