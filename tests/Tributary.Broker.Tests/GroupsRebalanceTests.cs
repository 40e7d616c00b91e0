using System.Diagnostics;
using Confluent.Kafka;
using Xunit.Abstractions;

namespace Tributary.Broker.Tests;

/// <summary>
/// The rebalance figure of issue 4: ten members over 100 partitions. The time from the tenth member's subscribe
/// until every member holds its share is written to the test output (no timing assertion: the machine is shared).
/// Members heartbeat every 500 ms; an eager rebalance needs each old member to learn of it from a heartbeat, so the
/// expected figure is about one heartbeat interval.
/// </summary>
public sealed class GroupsRebalanceTests(GroupsFixture fixture, ITestOutputHelper output) : IClassFixture<GroupsFixture>
{
    [Fact]
    public async Task TenMembersOverAHundredPartitionsRebalanceWhenTheLastJoins()
    {
        var topic = GroupsFixture.Unique("hundred");
        var group = GroupsFixture.Unique("g");
        await fixture.CreateTopicAsync(topic, 100);
        var members = new List<IConsumer<string, string>>();
        try
        {
            for (var i = 0; i < 9; i++)
            {
                var m = fixture.Member(group);
                m.Subscribe(topic);
                members.Add(m);
            }
            Poll(members, () => GroupsFixture.Covers(members, 100) && members.All(m => m.Assignment.Count >= 11), "nine members sharing 100 partitions");

            var last = fixture.Member(group);
            members.Add(last);
            var clock = Stopwatch.StartNew();
            last.Subscribe(topic);
            Poll(members, () => GroupsFixture.Covers(members, 100) && members.All(m => m.Assignment.Count == 10), "ten members with ten partitions each");
            clock.Stop();
            output.WriteLine($"rebalance of 10 members over 100 partitions after the last joined: {clock.ElapsedMilliseconds} ms (heartbeat.interval.ms=500)");
        }
        finally
        {
            foreach (var m in members) { m.Close(); m.Dispose(); }
        }
    }

    private static void Poll(List<IConsumer<string, string>> members, Func<bool> done, string what)
        => Eventually.True(() =>
        {
            foreach (var m in members) m.Consume(TimeSpan.FromMilliseconds(1));
            return done();
        }, TimeSpan.FromSeconds(60), what, () => string.Join(", ", members.Select(m => m.Assignment.Count)));
}
