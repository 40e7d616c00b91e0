using System.Diagnostics;
using Tributary.Broker.Cluster;
using Tributary.Broker.Groups;
using Tributary.Broker.Metadata;

namespace Tributary.Broker.Tests;

/// <summary>The matching behind KIP-848 regex subscriptions: whole names, Kafka's (RE2/J) limits, bounded time.</summary>
public sealed class TopicRegexResolverTests
{
    private static TopicInfo Topic(string name, bool isInternal = false) => new(name, Guid.NewGuid(), [PartitionState.Initial([1])], new Dictionary<string, string>(), isInternal);

    private static string Matches(string pattern, params TopicInfo[] topics) =>
        TopicRegexResolver.Resolve([pattern], topics)[pattern] is { } names ? string.Join(",", names.Order(StringComparer.Ordinal)) : "(out of time)";

    [Fact]
    public void APatternMatchesWholeNamesAndLeavesInternalTopicsOut()
    {
        TopicInfo[] topics = [Topic("orders"), Topic("orders-eu"), Topic("pre-orders"), Topic("__consumer_offsets", isInternal: true)];
        Assert.Equal("orders", Matches("orders", topics));
        Assert.Equal("orders,orders-eu", Matches("^orders.*", topics));
        Assert.Equal("", Matches("__consumer.*", topics));
    }

    [Fact]
    public void WhatRe2RefusesAndWhatDoesNotParseMatchNothing()
    {
        TopicInfo[] topics = [Topic("a"), Topic("b"), Topic("ab")];
        Assert.Equal("", Matches("(?=a)a", topics)); // lookaround
        Assert.Equal("", Matches(@"(a)\1", topics)); // backreference
        Assert.Equal("", Matches("a)|(b", topics)); // would escape the anchoring group
        Assert.Equal("", Matches("[a", topics));
    }

    [Fact]
    public void APatternThatBacktracksExponentiallyResolvesInLinearTime()
    {
        // The classic catastrophic pattern: a naive backtracking matcher tries 2^40 ways to split each name.
        var topics = Enumerable.Range(0, 200).Select(i => Topic(new string('a', 40) + i)).ToArray();
        var clock = Stopwatch.StartNew();

        Assert.Equal("", Matches("(a+)+b", topics));

        Assert.True(clock.Elapsed < TopicRegexResolver.PatternBudget, $"took {clock.Elapsed}");
    }
}
