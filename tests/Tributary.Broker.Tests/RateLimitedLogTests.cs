namespace Tributary.Broker.Tests;

/// <summary>A storm of one kind of line costs a burst and one summary per interval; nothing goes unreported.</summary>
public sealed class RateLimitedLogTests
{
    private static string[] Lines(StringWriter output) => output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);

    [Fact]
    public void WritesTheFirstLinesOfAnIntervalThenOneSummaryOfTheRest()
    {
        var clock = FakeTime.Create();
        var output = new StringWriter();
        var limited = new RateLimitedLog(new BrokerLog(LogLevel.Info, output), LogLevel.Warn, burst: 3, TimeSpan.FromSeconds(10), clock);

        for (var i = 0; i < 1000; i++) limited.Write($"accept failed {i}");
        Assert.Equal(["accept failed 0", "accept failed 1", "accept failed 2"], Lines(output).Select(l => l[l.IndexOf("accept", StringComparison.Ordinal)..]));

        clock.Advance(9_999);
        Assert.Equal(3, Lines(output).Length);
        clock.Advance(1);
        var lines = Lines(output);
        Assert.Equal(4, lines.Length);
        Assert.Contains("WARN", lines[3]);
        Assert.Contains("suppressed 997 similar messages in the last 10 s (last: accept failed 999)", lines[3]);
    }

    [Fact]
    public void ANewIntervalStartsWithAFreshBurstAndAQuietIntervalWritesNoSummary()
    {
        var clock = FakeTime.Create();
        var output = new StringWriter();
        var limited = new RateLimitedLog(new BrokerLog(LogLevel.Info, output), LogLevel.Info, burst: 2, TimeSpan.FromSeconds(1), clock);

        limited.Write("a");
        clock.Advance(1_000);
        Assert.Single(Lines(output));

        limited.Write("b");
        limited.Write("c");
        limited.Write("d");
        clock.Advance(1_000);
        var lines = Lines(output);
        Assert.Equal(4, lines.Length);
        Assert.EndsWith("suppressed 1 similar messages in the last 1 s (last: d)", lines[3]);
    }

    [Fact]
    public void BelowTheLogLevelNothingIsWrittenOrCounted()
    {
        var clock = FakeTime.Create();
        var output = new StringWriter();
        var limited = new RateLimitedLog(new BrokerLog(LogLevel.Error, output), LogLevel.Warn, burst: 1, TimeSpan.FromSeconds(1), clock);
        for (var i = 0; i < 10; i++) limited.Write("x");
        clock.Advance(1_000);
        Assert.Empty(Lines(output));
    }
}
