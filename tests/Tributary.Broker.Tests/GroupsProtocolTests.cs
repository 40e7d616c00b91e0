using Tributary.Protocol.Messages;

namespace Tributary.Broker.Tests;

/// <summary>Group APIs at the wire, including the old versions librdkafka relies on, through a raw client.</summary>
public sealed class GroupsProtocolTests(GroupsFixture fixture) : IClassFixture<GroupsFixture>
{
    private static OffsetCommitRequest Commit(string group, string topic, int partition, long offset, string? metadata, int epoch = -1,
        int generation = -1, string member = "") => new()
        {
            GroupId = group,
            GenerationIdOrMemberEpoch = generation,
            MemberId = member,
            Topics = [new OffsetCommitRequest.OffsetCommitRequestTopic
        {
            Name = topic,
            Partitions = [new OffsetCommitRequest.OffsetCommitRequestPartition
            {
                PartitionIndex = partition, CommittedOffset = offset, CommittedLeaderEpoch = epoch, CommittedMetadata = metadata,
            }],
        }],
        };

    /// <summary>A range-assignor consumer's JoinGroup for topic "t".</summary>
    private static JoinGroupRequest Join(string group, int sessionTimeoutMs, int rebalanceTimeoutMs) => new()
    {
        GroupId = group,
        SessionTimeoutMs = sessionTimeoutMs,
        RebalanceTimeoutMs = rebalanceTimeoutMs,
        ProtocolType = "consumer",
        Protocols = [new JoinGroupRequest.JoinGroupRequestProtocol { Name = "range", Metadata = GroupsFixture.Subscription("t") }],
    };

    [Fact]
    public async Task FindCoordinatorAnswersThisBrokerForGroupsAndTransactionsInEveryVersion()
    {
        await using var raw = await RawKafkaClient.ConnectAsync(fixture.Bootstrap);
        for (short v = 0; v <= 3; v++)
        {
            var r = await raw.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { Key = "g", KeyType = (sbyte)(v == 0 ? 0 : 1) }, v);
            Assert.Equal(0, r.ErrorCode);
            Assert.Equal(fixture.Server.Port, r.Port);
        }
        var batched = await raw.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { KeyType = 0, CoordinatorKeys = ["a", "b"] }, 4);
        Assert.Equal(["a", "b"], batched.Coordinators.Select(c => c.Key));
        Assert.All(batched.Coordinators, c => Assert.Equal(fixture.Server.Port, c.Port));
    }

    [Fact]
    public async Task JoinGroupV4RequiresAMemberIdAndV0JoinsDirectly()
    {
        await using var raw = await RawKafkaClient.ConnectAsync(fixture.Bootstrap);
        var group = GroupsFixture.Unique("g");
        var request = Join(group, sessionTimeoutMs: 10000, rebalanceTimeoutMs: 10000);
        var first = await raw.SendAsync<JoinGroupResponse>(request, 4);
        Assert.Equal((short)ErrorCode.MemberIdRequired, first.ErrorCode);
        Assert.NotEmpty(first.MemberId);
        request.MemberId = first.MemberId;
        var joined = await raw.SendAsync<JoinGroupResponse>(request, 4);
        Assert.Equal(0, joined.ErrorCode);
        Assert.Equal(1, joined.GenerationId);
        Assert.Equal(joined.MemberId, joined.Leader);
        Assert.Single(joined.Members);
        var sync = await raw.SendAsync<SyncGroupResponse>(new SyncGroupRequest
        {
            GroupId = group,
            GenerationId = 1,
            MemberId = joined.MemberId,
            Assignments = [new SyncGroupRequest.SyncGroupRequestAssignment { MemberId = joined.MemberId, Assignment = [1, 2, 3] }],
        }, 0);
        Assert.Equal([1, 2, 3], sync.Assignment);
        Assert.Equal(0, (await raw.SendAsync<HeartbeatResponse>(new HeartbeatRequest { GroupId = group, GenerationId = 1, MemberId = joined.MemberId }, 0)).ErrorCode);
        Assert.Equal((short)ErrorCode.IllegalGeneration,
            (await raw.SendAsync<HeartbeatResponse>(new HeartbeatRequest { GroupId = group, GenerationId = 7, MemberId = joined.MemberId }, 4)).ErrorCode);

        var described = await raw.SendAsync<DescribeGroupsResponse>(new DescribeGroupsRequest { Groups = [group, "no-such-group"] }, 5);
        Assert.Equal("Stable", described.Groups[0].GroupState);
        Assert.Equal("range", described.Groups[0].ProtocolData);
        Assert.Equal([1, 2, 3], described.Groups[0].Members.Single().MemberAssignment);
        Assert.Equal("Dead", described.Groups[1].GroupState);

        Assert.Equal((short)ErrorCode.NonEmptyGroup,
            (await raw.SendAsync<DeleteGroupsResponse>(new DeleteGroupsRequest { GroupsNames = [group] }, 2)).Results[0].ErrorCode);
        Assert.Equal(0, (await raw.SendAsync<LeaveGroupResponse>(new LeaveGroupRequest { GroupId = group, MemberId = joined.MemberId }, 0)).ErrorCode);
        var listed = await raw.SendAsync<ListGroupsResponse>(new ListGroupsRequest { StatesFilter = ["empty"] }, 4);
        Assert.Contains(listed.Groups, g => g.GroupId == group && g.GroupState == "Empty");
        var stable = await raw.SendAsync<ListGroupsResponse>(new ListGroupsRequest { StatesFilter = ["Stable"] }, 4);
        Assert.DoesNotContain(stable.Groups, g => g.GroupId == group);
        var deleted = await raw.SendAsync<DeleteGroupsResponse>(new DeleteGroupsRequest { GroupsNames = [group, group + "-unknown"] }, 0);
        Assert.Equal([(short)ErrorCode.None, (short)ErrorCode.GroupIdNotFound], deleted.Results.Select(r => r.ErrorCode));

        // v0: no MEMBER_ID_REQUIRED round trip.
        request.MemberId = "";
        var v0 = await raw.SendAsync<JoinGroupResponse>(request, 0);
        Assert.Equal(0, v0.ErrorCode);
        Assert.NotEmpty(v0.MemberId);
    }

    [Fact]
    public async Task ALoneMemberRejoiningCompletesTheRebalanceAtOnceAndTheLastLeaveEmptiesTheGroup()
    {
        // Kafka completes a join as soon as every member is waiting in it, not when the rebalance timeout expires.
        await using var raw = await RawKafkaClient.ConnectAsync(fixture.Bootstrap);
        var group = GroupsFixture.Unique("g");
        var request = Join(group, sessionTimeoutMs: 30000, rebalanceTimeoutMs: 120000);
        var joined = await raw.SendAsync<JoinGroupResponse>(request, 0);
        Assert.Equal(0, joined.ErrorCode);
        var sync = new SyncGroupRequest
        {
            GroupId = group,
            GenerationId = joined.GenerationId,
            MemberId = joined.MemberId,
            Assignments = [new SyncGroupRequest.SyncGroupRequestAssignment { MemberId = joined.MemberId, Assignment = [7] }],
        };
        Assert.Equal(0, (await raw.SendAsync<SyncGroupResponse>(sync, 0)).ErrorCode);

        // The stable group's only member joins again (as after a subscription change): the answer comes at once,
        // well inside the raw client's 10 s timeout, with the next generation.
        request.MemberId = joined.MemberId;
        var rejoined = await raw.SendAsync<JoinGroupResponse>(request, 0);
        Assert.Equal(0, rejoined.ErrorCode);
        Assert.Equal(joined.GenerationId + 1, rejoined.GenerationId);
        sync.GenerationId = rejoined.GenerationId;
        Assert.Equal(0, (await raw.SendAsync<SyncGroupResponse>(sync, 0)).ErrorCode);

        // When the last member leaves, the group is Empty by the time the leave is answered.
        Assert.Equal(0, (await raw.SendAsync<LeaveGroupResponse>(new LeaveGroupRequest { GroupId = group, MemberId = joined.MemberId }, 0)).ErrorCode);
        var described = await raw.SendAsync<DescribeGroupsResponse>(new DescribeGroupsRequest { Groups = [group] }, 5);
        Assert.Equal("Empty", described.Groups[0].GroupState);
        Assert.Empty(described.Groups[0].Members);
    }

    [Fact]
    public async Task OffsetsCommitAndFetchInOldAndNewVersions()
    {
        // Commits name existing partitions: Kafka refuses the others (UNKNOWN_TOPIC_OR_PARTITION).
        if (fixture.Server.State.Topics.Get("t") is null) fixture.Server.State.Topics.Create("t", 3, new Dictionary<string, string>());
        await using var raw = await RawKafkaClient.ConnectAsync(fixture.Bootstrap);
        var g1 = GroupsFixture.Unique("g");
        var g2 = GroupsFixture.Unique("g");
        var commitV2 = await raw.SendAsync<OffsetCommitResponse>(Commit(g1, "t", 0, 10, "m-v2"), 2);
        Assert.Equal(0, commitV2.Topics[0].Partitions[0].ErrorCode);
        var commitV8 = await raw.SendAsync<OffsetCommitResponse>(Commit(g2, "t", 1, 20, "m-v8", epoch: 5), 8);
        Assert.Equal(0, commitV8.Topics[0].Partitions[0].ErrorCode);
        var tooLarge = await raw.SendAsync<OffsetCommitResponse>(Commit(g2, "t", 2, 1, new string('x', 5000)), 8);
        Assert.Equal((short)ErrorCode.OffsetMetadataTooLarge, tooLarge.Topics[0].Partitions[0].ErrorCode);

        var v1 = await raw.SendAsync<OffsetFetchResponse>(new OffsetFetchRequest
        {
            GroupId = g1,
            Topics = [new OffsetFetchRequest.OffsetFetchRequestTopic { Name = "t", PartitionIndexes = [0, 1] }],
        }, 1);
        Assert.Equal([10L, -1L], v1.Topics[0].Partitions.Select(p => p.CommittedOffset));
        Assert.Equal("m-v2", v1.Topics[0].Partitions[0].Metadata);

        var v8 = await raw.SendAsync<OffsetFetchResponse>(new OffsetFetchRequest
        {
            Groups = [new OffsetFetchRequest.OffsetFetchRequestGroup { GroupId = g1, Topics = null }, new OffsetFetchRequest.OffsetFetchRequestGroup { GroupId = g2, Topics = null }],
        }, 8);
        Assert.Equal(10, v8.Groups[0].Topics.Single().Partitions.Single().CommittedOffset);
        var p = v8.Groups[1].Topics.Single().Partitions.Single();
        Assert.Equal((20L, 5, "m-v8"), (p.CommittedOffset, p.CommittedLeaderEpoch, p.Metadata));

        // A commit claiming a generation of a group that does not exist is refused.
        var stale = await raw.SendAsync<OffsetCommitResponse>(Commit(GroupsFixture.Unique("g"), "t", 0, 1, null, generation: 3, member: "m"), 7);
        Assert.Equal((short)ErrorCode.UnknownMemberId, stale.Topics[0].Partitions[0].ErrorCode);

        var deleted = await raw.SendAsync<OffsetDeleteResponse>(new OffsetDeleteRequest
        {
            GroupId = g2,
            Topics = [new OffsetDeleteRequest.OffsetDeleteRequestTopic { Name = "t", Partitions = [new OffsetDeleteRequest.OffsetDeleteRequestPartition { PartitionIndex = 1 }] }],
        }, 0);
        Assert.Equal(0, deleted.ErrorCode);
        var after = await raw.SendAsync<OffsetFetchResponse>(new OffsetFetchRequest { GroupId = g2, Topics = null }, 7);
        Assert.Empty(after.Topics);
    }
}
