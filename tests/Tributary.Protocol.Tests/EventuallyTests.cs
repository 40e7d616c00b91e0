namespace Tributary.Protocol.Tests;

/// <summary>The shared wait helper (tests/Shared/Eventually.cs) fails on time, naming what it waited for and what it saw.</summary>
public sealed class EventuallyTests
{
    [Fact]
    public void A_condition_that_never_holds_fails_with_what_and_the_last_state()
    {
        var polls = 0;
        var e = Assert.ThrowsAny<Xunit.Sdk.XunitException>(() =>
            Eventually.True(() => ++polls < 0, TimeSpan.FromMilliseconds(50), "the impossible", () => $"{polls} polls"));
        Assert.Contains("the impossible", e.Message);
        Assert.Contains($"{polls} polls", e.Message);
        Assert.True(polls > 1);
    }

    [Fact]
    public async Task A_value_is_returned_as_soon_as_it_satisfies_the_test()
    {
        var polls = 0;
        Assert.Equal(3, await Eventually.ValueAsync(() => ++polls, n => n == 3, TimeSpan.FromSeconds(10), "the third poll"));
        var e = await Assert.ThrowsAnyAsync<Xunit.Sdk.XunitException>(() => Eventually.ValueAsync(() => 7, n => n == 8, TimeSpan.FromMilliseconds(20), "eight"));
        Assert.Contains("last seen: 7", e.Message);
    }
}
