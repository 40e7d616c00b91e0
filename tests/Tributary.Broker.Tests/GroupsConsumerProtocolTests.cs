using Confluent.Kafka;

namespace Tributary.Broker.Tests;

/// <summary>KIP-848: librdkafka consumers with group.protocol=consumer, assignment computed by the broker.</summary>
public sealed class GroupsConsumerProtocolTests(GroupsFixture fixture) : IClassFixture<GroupsFixture>
{
    private IConsumer<string, string> Member(string group, string? assignor = null, string? instance = null) =>
        new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = fixture.Bootstrap,
            GroupId = group,
            GroupInstanceId = instance,
            GroupProtocol = GroupProtocol.Consumer,
            GroupRemoteAssignor = assignor,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
        }).Build();

    [Theory]
    [InlineData("uniform")]
    [InlineData("range")]
    public async Task ConsumersConvergeToABalancedAssignmentAndEachRecordReachesOneMember(string assignor)
    {
        var topic = GroupsFixture.Unique("kip848");
        var group = GroupsFixture.Unique("g");
        await fixture.CreateTopicAsync(topic, 12);
        var members = Enumerable.Range(0, 3).Select(_ => Member(group, assignor)).ToList();
        try
        {
            foreach (var m in members) m.Subscribe(topic);
            GroupsFixture.PollUntil(members, () => GroupsFixture.Covers(members, 12) && members.All(m => m.Assignment.Count == 4), "a balanced assignment");

            fixture.Produce(topic, 12, 600);
            var received = new List<(int Member, int Partition, string Key)>();
            GroupsFixture.PollUntil(members, () => received.Count >= 600, "600 records", (i, r) =>
            {
                received.Add((i, r.Partition.Value, r.Message.Key));
                members[i].Commit(r);
            });
            Assert.Equal(600, received.Select(r => r.Key).Distinct().Count());
            foreach (var byPartition in received.GroupBy(r => r.Partition)) Assert.Single(byPartition.Select(r => r.Member).Distinct());

            // One member leaves: the other two take over its partitions.
            members[2].Close();
            members[2].Dispose();
            members.RemoveAt(2);
            GroupsFixture.PollUntil(members, () => GroupsFixture.Covers(members, 12) && members.All(m => m.Assignment.Count == 6), "two members with six each");
        }
        finally
        {
            foreach (var m in members) { m.Close(); m.Dispose(); }
        }
    }

    /// <summary>
    /// A regex plus a topic name, as librdkafka's 0045-subscribe_update expects of Kafka 4: the named topic is assigned in
    /// the first heartbeat's response and the regex's matches, resolved off the heartbeat, in a later one; records of
    /// both arrive.
    /// </summary>
    [Fact]
    public async Task ARegexAndANamedTopicAreBothConsumedTheNamedOneAssignedFirst()
    {
        var named = GroupsFixture.Unique("kip848-named");
        var prefix = GroupsFixture.Unique("kip848-rx");
        var group = GroupsFixture.Unique("g");
        await fixture.CreateTopicAsync(named, 2);
        await fixture.CreateTopicAsync(prefix + "-a", 2);
        await fixture.CreateTopicAsync(prefix + "-b", 1);
        await fixture.CreateTopicAsync(prefix.Replace("rx", "ry", StringComparison.Ordinal) + "-c", 1);
        foreach (var (topic, partitions) in new[] { (named, 2), (prefix + "-a", 2), (prefix + "-b", 1) }) fixture.Produce(topic, partitions, 10);

        var assigned = new List<string[]>();
        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = fixture.Bootstrap,
            GroupId = group,
            GroupProtocol = GroupProtocol.Consumer,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
        }).SetPartitionsAssignedHandler((_, partitions) => assigned.Add([.. partitions.Select(tp => tp.Topic).Distinct().Order(StringComparer.Ordinal)])).Build();
        try
        {
            consumer.Subscribe(["^" + prefix + "-.*", named]);
            var received = new Dictionary<string, int>(StringComparer.Ordinal);
            GroupsFixture.PollUntil([consumer], () => received.Values.Sum() >= 30, "30 records of the three topics",
                (_, r) => received[r.Topic] = received.GetValueOrDefault(r.Topic) + 1);

            Assert.Equal(new[] { (named, 10), (prefix + "-a", 10), (prefix + "-b", 10) }, received.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (kv.Key, kv.Value)));
            Assert.Equal(named, Assert.Single(assigned[0]));
            Assert.Equal(new[] { prefix + "-a", prefix + "-b" }, assigned.Skip(1).SelectMany(t => t).Order(StringComparer.Ordinal));
        }
        finally
        {
            consumer.Close();
        }
    }

    [Fact]
    public async Task AStaticMemberThatClosesAndComesBackGetsItsPartitionsWithoutARebalance()
    {
        var topic = GroupsFixture.Unique("kip848-static");
        var group = GroupsFixture.Unique("g");
        await fixture.CreateTopicAsync(topic, 6);
        var a = Member(group, instance: "static-a");
        var b = Member(group, instance: "static-b");
        var members = new List<IConsumer<string, string>> { a, b };
        try
        {
            foreach (var m in members) m.Subscribe(topic);
            GroupsFixture.PollUntil(members, () => GroupsFixture.Covers(members, 6) && members.All(m => m.Assignment.Count == 3), "a balanced assignment");
            var epoch = (await fixture.Server.Groups.DescribeConsumerGroupAsync(group)).GroupEpoch;
            var ofA = a.Assignment.Select(tp => tp.Partition.Value).Order().ToList();
            var ofB = b.Assignment.Select(tp => tp.Partition.Value).Order().ToList();

            // A static member's close is a temporary leave (epoch -2): it keeps its partitions, b is not disturbed.
            a.Close();
            a.Dispose();
            members.Remove(a);
            // librdkafka's close can return before the coordinator has handled its leave heartbeat.
            var left = await Tributary.Testing.Eventually.ValueAsync(() => fixture.Server.Groups.DescribeConsumerGroupAsync(group),
                d => d.Members.Single(m => m.InstanceId == "static-a").MemberEpoch == -2, TimeSpan.FromSeconds(15),
                "static-a's temporary leave (member epoch -2)", d => d.Members.Single(m => m.InstanceId == "static-a").MemberEpoch);
            Assert.True(epoch == left.GroupEpoch, $"left: {epoch} -> {left.GroupEpoch}");

            // Its next incarnation takes the same partitions over, at the same group epoch.
            var again = Member(group, instance: "static-a");
            members.Add(again);
            again.Subscribe(topic);
            GroupsFixture.PollUntil(members, () => again.Assignment.Count == 3, "the static member's partitions");
            Assert.Equal(ofA, again.Assignment.Select(tp => tp.Partition.Value).Order().ToList());
            Assert.Equal(ofB, b.Assignment.Select(tp => tp.Partition.Value).Order().ToList());
            var after = await fixture.Server.Groups.DescribeConsumerGroupAsync(group);
            Assert.True(epoch == after.GroupEpoch, $"after: {epoch} -> {after.GroupEpoch}");
            Assert.Equal(2, after.Members.Count);
        }
        finally
        {
            foreach (var m in members) { m.Close(); m.Dispose(); }
        }
    }
}
