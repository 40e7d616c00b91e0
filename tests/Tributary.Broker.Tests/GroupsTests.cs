using Confluent.Kafka;
using Tributary.Protocol.Messages;
using ErrorCode = Tributary.Protocol.Messages.ErrorCode;

namespace Tributary.Broker.Tests;

/// <summary>Consumer groups of the classic protocol, driven by real librdkafka consumers.</summary>
public sealed class GroupsTests(GroupsFixture fixture) : IClassFixture<GroupsFixture>
{
    [Fact]
    public async Task ThreeMembersShareTwelvePartitionsAndEachRecordReachesExactlyOneMember()
    {
        var topic = GroupsFixture.Unique("shared");
        var group = GroupsFixture.Unique("g");
        await fixture.CreateTopicAsync(topic, 12);
        var members = Enumerable.Range(0, 3).Select(_ => fixture.Member(group)).ToList();
        try
        {
            foreach (var m in members) m.Subscribe(topic);
            GroupsFixture.PollUntil(members, () => GroupsFixture.Covers(members, 12) && members.All(m => m.Assignment.Count == 4),
                "three members to share 12 partitions");

            fixture.Produce(topic, 12, 1200);
            var received = new List<(int Member, int Partition, string Key)>();
            GroupsFixture.PollUntil(members, () => received.Count >= 1200, "1200 records",
                (i, r) => received.Add((i, r.Partition.Value, r.Message.Key)));

            Assert.Equal(1200, received.Count);
            Assert.Equal(1200, received.Select(r => r.Key).Distinct().Count());
            foreach (var byPartition in received.GroupBy(r => r.Partition))
                Assert.Single(byPartition.Select(r => r.Member).Distinct());
        }
        finally
        {
            foreach (var m in members) { m.Close(); m.Dispose(); }
        }
    }

    [Fact]
    public async Task AMemberThatStopsHeartbeatingLosesItsPartitionsToTheOthers()
    {
        var topic = GroupsFixture.Unique("expire");
        var group = GroupsFixture.Unique("g");
        await fixture.CreateTopicAsync(topic, 12);
        using var survivor = fixture.Member(group);
        survivor.Subscribe(topic);
        GroupsFixture.PollUntil([survivor], () => survivor.Assignment.Count == 12, "the first member to own all partitions");

        // A raw member joins with a short session timeout, takes its share, and then goes silent (no LeaveGroup).
        await using var raw = await RawKafkaClient.ConnectAsync(fixture.Bootstrap);
        var join = Task.Run(async () =>
        {
            var request = new JoinGroupRequest
            {
                GroupId = group,
                SessionTimeoutMs = 1500,
                RebalanceTimeoutMs = 30000,
                ProtocolType = "consumer",
                Protocols = [new JoinGroupRequest.JoinGroupRequestProtocol { Name = "range", Metadata = GroupsFixture.Subscription(topic) }],
            };
            var first = await raw.SendAsync<JoinGroupResponse>(request, 5);
            Assert.Equal((short)ErrorCode.MemberIdRequired, first.ErrorCode);
            request.MemberId = first.MemberId;
            var joined = await raw.SendAsync<JoinGroupResponse>(request, 5);
            Assert.Equal(0, joined.ErrorCode);
            var sync = await raw.SendAsync<SyncGroupResponse>(
                new SyncGroupRequest { GroupId = group, GenerationId = joined.GenerationId, MemberId = joined.MemberId }, 3);
            Assert.Equal(0, sync.ErrorCode);
            return sync.Assignment;
        });
        GroupsFixture.PollUntil([survivor], () => join.IsCompleted && survivor.Assignment.Count < 12, "the raw member to get a share");
        Assert.NotEmpty(await join);

        GroupsFixture.PollUntil([survivor], () => survivor.Assignment.Count == 12, "the silent member's partitions to come back");
        survivor.Close();
    }

    [Fact]
    public async Task CooperativeStickyRebalanceKeepsPartitionsOfUnaffectedMembers()
    {
        var topic = GroupsFixture.Unique("coop");
        var group = GroupsFixture.Unique("g");
        await fixture.CreateTopicAsync(topic, 12);
        void Cooperative(ConsumerConfig c) => c.PartitionAssignmentStrategy = PartitionAssignmentStrategy.CooperativeSticky;
        var revoked = new List<TopicPartition>[] { [], [] };
        var members = new List<IConsumer<string, string>>();
        for (var i = 0; i < 2; i++)
        {
            var index = i;
            var config = new ConsumerConfig
            {
                BootstrapServers = fixture.Bootstrap,
                GroupId = group,
                AutoOffsetReset = AutoOffsetReset.Earliest,
                EnableAutoCommit = false,
                SessionTimeoutMs = 6000,
                HeartbeatIntervalMs = 500,
                PartitionAssignmentStrategy = PartitionAssignmentStrategy.CooperativeSticky,
            };
            members.Add(new ConsumerBuilder<string, string>(config)
                .SetPartitionsRevokedHandler((_, parts) => revoked[index].AddRange(parts.Select(p => p.TopicPartition)))
                .Build());
        }
        try
        {
            foreach (var m in members) m.Subscribe(topic);
            GroupsFixture.PollUntil(members, () => GroupsFixture.Covers(members, 12) && members.All(m => m.Assignment.Count == 6), "two members with six each");
            var before = members.Select(m => m.Assignment.ToHashSet()).ToList();
            foreach (var r in revoked) r.Clear();

            var third = fixture.Member(group, Cooperative);
            members.Add(third);
            third.Subscribe(topic);
            GroupsFixture.PollUntil(members, () => GroupsFixture.Covers(members, 12) && members.All(m => m.Assignment.Count == 4), "three members with four each");

            for (var i = 0; i < 2; i++)
            {
                Assert.Subset(before[i], members[i].Assignment.ToHashSet());
                // Only what moved to the new member was revoked; the rest stayed assigned throughout.
                Assert.Equal(2, revoked[i].Count);
                Assert.Empty(revoked[i].Intersect(members[i].Assignment));
            }
        }
        finally
        {
            GroupsFixture.LeaveAndClose(members);
        }
    }

    [Fact]
    public async Task AStaticMemberRestartingWithinItsSessionTimeoutCausesNoRebalance()
    {
        var topic = GroupsFixture.Unique("static");
        var group = GroupsFixture.Unique("g");
        await fixture.CreateTopicAsync(topic, 12);
        var assignedCalls = 0;
        var stayConfig = new ConsumerConfig
        {
            BootstrapServers = fixture.Bootstrap,
            GroupId = group,
            GroupInstanceId = "stay",
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
            SessionTimeoutMs = 30000,
            HeartbeatIntervalMs = 500,
        };
        using var stay = new ConsumerBuilder<string, string>(stayConfig)
            .SetPartitionsAssignedHandler((_, _) => assignedCalls++)
            .Build();
        void Restarting(ConsumerConfig c) { c.GroupInstanceId = "restart"; c.SessionTimeoutMs = 30000; }
        var first = fixture.Member(group, Restarting);
        stay.Subscribe(topic);
        first.Subscribe(topic);
        GroupsFixture.PollUntil([stay, first], () => GroupsFixture.Covers([stay, first], 12) && stay.Assignment.Count == 6, "two static members with six each");
        var stayAssignment = stay.Assignment.ToHashSet();
        var restartAssignment = first.Assignment.ToHashSet();
        var callsBefore = assignedCalls;

        first.Close(); // a static member does not leave the group on close (KIP-345)
        first.Dispose();
        using var second = fixture.Member(group, Restarting);
        second.Subscribe(topic);
        GroupsFixture.PollUntil([stay, second], () => second.Assignment.Count == 6, "the restarted member to get its partitions back");

        Assert.Equal(restartAssignment, second.Assignment.ToHashSet());
        Assert.Equal(stayAssignment, stay.Assignment.ToHashSet());
        Assert.Equal(callsBefore, assignedCalls);
        second.Close();
        stay.Close();
    }

    [Fact]
    public async Task AnAssignOnlyConsumerCommitsAndReadsBackItsOffsets()
    {
        var topic = GroupsFixture.Unique("standalone");
        var group = GroupsFixture.Unique("g");
        await fixture.CreateTopicAsync(topic, 3);
        using var consumer = fixture.Member(group);
        var partitions = Enumerable.Range(0, 3).Select(p => new TopicPartition(topic, p)).ToList();
        consumer.Assign(partitions.Select(p => new TopicPartitionOffset(p, Offset.Beginning)));
        consumer.Commit([new TopicPartitionOffset(topic, 0, 42), new TopicPartitionOffset(topic, 2, new Offset(7), 3)]);
        var committed = consumer.Committed(partitions, TimeSpan.FromSeconds(10));
        Assert.Equal(42, committed.Single(c => c.Partition == 0).Offset.Value);
        Assert.Equal(Offset.Unset, committed.Single(c => c.Partition == 1).Offset);
        var p2 = committed.Single(c => c.Partition == 2);
        Assert.Equal(7, p2.Offset.Value);
        Assert.Equal(3, p2.LeaderEpoch);
    }

    [Fact]
    public async Task CommittedOffsetsResumeAGroupAfterItsMembersLeave()
    {
        var topic = GroupsFixture.Unique("resume");
        var group = GroupsFixture.Unique("g");
        await fixture.CreateTopicAsync(topic, 4);
        fixture.Produce(topic, 4, 100);
        var seen = new HashSet<string>();
        using (var first = fixture.Member(group))
        {
            first.Subscribe(topic);
            GroupsFixture.PollUntil([first], () => seen.Count >= 60, "60 records", (_, r) =>
            {
                if (seen.Count < 60) { seen.Add(r.Message.Key); first.Commit(r); }
            });
            first.Close();
        }
        using var second = fixture.Member(group);
        second.Subscribe(topic);
        var rest = new List<string>();
        GroupsFixture.PollUntil([second], () => seen.Count + rest.Count >= 100, "the other 40", (_, r) => rest.Add(r.Message.Key));
        Assert.Empty(rest.Intersect(seen));
        Assert.Equal(100, seen.Union(rest).Count());
        second.Close();
    }
}
