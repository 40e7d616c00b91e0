using Tributary.Broker.Groups;
using Tributary.Broker.Metadata;
using Tributary.Protocol.Messages;
using Tributary.Storage;

namespace Tributary.Broker.Tests;

/// <summary>
/// KIP-848 static membership and the rebalance timeout, driven through the coordinator with a manual clock (the
/// timing a client cannot be made to produce on demand): a static member's temporary leave (epoch -2) keeps its
/// partitions until its session expires, a rejoin with the same group.instance.id takes them over without a new
/// group epoch, UNRELEASED_INSTANCE_ID and FENCED_INSTANCE_ID as Kafka answers them, and a member that does not
/// release revoked partitions within its rebalance timeout is fenced.
/// </summary>
public sealed class GroupsConsumerStaticTests : IAsyncLifetime
{
    private const int SessionTimeout = 45_000;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "tributary-static-" + Guid.NewGuid().ToString("N"));
    private readonly FakeTimeProvider _clock = FakeTime.Create();
    private LogManager _logs = null!;
    private TopicCatalog _topics = null!;
    private GroupCoordinator _coordinator = null!;
    private Guid _topicId;
    private static readonly ClientInfo Client = new("test", "/127.0.0.1");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        var settings = new BrokerSettings(new Dictionary<string, string> { ["offsets.topic.num.partitions"] = "1" });
        _logs = new LogManager(_dir, TimeProvider.System);
        _topics = LocalCatalog.Open(_dir, _logs, settings);
        _topicId = _topics.Create("t", 4, new Dictionary<string, string>())!.Id;
        _coordinator = new GroupCoordinator(_topics, GroupSettings.From(settings), _clock, new BrokerLog(LogLevel.None));
        _coordinator.Start();
        await _coordinator.WaitUntilLoadedAsync(TimeSpan.FromSeconds(30));
    }

    public async Task DisposeAsync()
    {
        await _coordinator.DisposeAsync();
        await _logs.StopAsync();
        _logs.Dispose();
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private async Task Advance(int ms)
    {
        await _coordinator.ListAsync();
        _clock.Advance(ms);
        await _coordinator.ListAsync();
    }

    /// <summary>A member as a client keeps it: id, epoch and the partitions it owns.</summary>
    private sealed class Member(string id, string? instance, int rebalanceTimeoutMs = 30_000)
    {
        public string Id { get; } = id;
        public string? Instance { get; } = instance;
        public int RebalanceTimeoutMs { get; } = rebalanceTimeoutMs;
        public int Epoch { get; set; }
        public SortedSet<int> Owned { get; set; } = [];
    }

    /// <summary>One heartbeat; the member adopts what it is given (releasing revoked partitions) unless told to hold on.</summary>
    private async Task<ConsumerGroupHeartbeatResponse> Beat(Member m, bool adopt = true)
    {
        var joining = m.Epoch == 0;
        var response = await _coordinator.ConsumerHeartbeatAsync(new ConsumerHeartbeat("g", m.Id, m.Epoch, m.Instance, null,
            joining ? m.RebalanceTimeoutMs : -1, joining ? ["t"] : null, null, null,
            joining ? null : new Dictionary<Guid, IReadOnlyList<int>> { [_topicId] = [.. m.Owned] }, Client));
        if (response.ErrorCode != 0 || !adopt) return response;
        m.Epoch = response.MemberEpoch;
        if (response.Assignment is { } assignment)
            m.Owned = [.. assignment.TopicPartitions.Where(t => t.TopicId == _topicId).SelectMany(t => t.Partitions)];
        return response;
    }

    /// <summary>Heartbeats every member in turn until the group is Stable.</summary>
    private async Task<ConsumerGroupDescribeResponse.DescribedGroup> Converge(params Member[] members)
    {
        for (var round = 0; round < 20; round++)
        {
            foreach (var m in members) Assert.Equal(0, (await Beat(m)).ErrorCode);
            var described = await _coordinator.DescribeConsumerGroupAsync("g");
            if (described.GroupState == "Stable") return described;
        }
        Assert.Fail("the group did not converge");
        return null!;
    }

    private async Task<Dictionary<string, (int Epoch, string Partitions)>> Members()
    {
        var described = await _coordinator.DescribeConsumerGroupAsync("g");
        return described.Members.ToDictionary(m => m.MemberId,
            m => (m.MemberEpoch, string.Join(",", m.Assignment.TopicPartitions.SelectMany(t => t.Partitions).Order())));
    }

    [Fact]
    public async Task AStaticMemberRejoiningAfterATemporaryLeaveTakesOverItsPartitionsWithoutARebalance()
    {
        var a = new Member("a1", "instance-a");
        var b = new Member("b1", "instance-b");
        await Beat(a);
        await Beat(b);
        var stable = await Converge(a, b);
        Assert.Equal(2, a.Owned.Count);
        Assert.Equal(2, b.Owned.Count);
        var epoch = stable.GroupEpoch;
        var partitionsOfA = string.Join(",", a.Owned);

        // Temporary leave: a stays in the group with epoch -2 and its partitions; b is not asked to change anything.
        var left = await _coordinator.ConsumerHeartbeatAsync(new ConsumerHeartbeat("g", a.Id, -2, a.Instance, null, -1, null, null, null, null, Client));
        Assert.Equal((0, -2), (left.ErrorCode, left.MemberEpoch));
        var owned = b.Owned.ToList();
        await Beat(b);
        Assert.Equal(owned, b.Owned);
        var during = await _coordinator.DescribeConsumerGroupAsync("g");
        Assert.Equal(epoch, during.GroupEpoch);
        Assert.Equal((-2, partitionsOfA), (await Members())[a.Id]);

        // Another member cannot take b's instance id while b is in the group.
        var thief = await Beat(new Member("b2", "instance-b"));
        Assert.Equal((short)ErrorCode.UnreleasedInstanceId, thief.ErrorCode);

        // The new incarnation of a (new member id, same instance id) gets a's partitions at the same group epoch.
        var a2 = new Member("a2", "instance-a");
        var rejoined = await Beat(a2);
        Assert.Equal(0, rejoined.ErrorCode);
        Assert.Equal(partitionsOfA, string.Join(",", a2.Owned));
        var after = await Converge(a2, b);
        Assert.Equal(epoch, after.GroupEpoch);
        Assert.Equal(owned, b.Owned);
        var members = await Members();
        Assert.False(members.ContainsKey(a.Id));
        Assert.Equal((epoch, partitionsOfA), members[a2.Id]);

        // The replaced incarnation is fenced by its instance id.
        var zombie = await _coordinator.ConsumerHeartbeatAsync(new ConsumerHeartbeat("g", a.Id, a.Epoch, a.Instance, null, -1, null, null, null, null, Client));
        Assert.Equal((short)ErrorCode.FencedInstanceId, zombie.ErrorCode);
        // Epoch -2 is for static members only.
        var anonymous = await _coordinator.ConsumerHeartbeatAsync(new ConsumerHeartbeat("g", b.Id, -2, null, null, -1, null, null, null, null, Client));
        Assert.Equal((short)ErrorCode.InvalidRequest, anonymous.ErrorCode);
    }

    [Fact]
    public async Task ATemporarilyLeftStaticMemberIsRemovedWhenItsSessionExpires()
    {
        var a = new Member("a1", "instance-a");
        var b = new Member("b1", "instance-b");
        await Beat(a);
        await Beat(b);
        var epoch = (await Converge(a, b)).GroupEpoch;
        await _coordinator.ConsumerHeartbeatAsync(new ConsumerHeartbeat("g", a.Id, -2, a.Instance, null, -1, null, null, null, null, Client));
        // b heartbeats on; a's session runs out.
        for (var elapsed = 0; elapsed <= SessionTimeout; elapsed += 5_000)
        {
            await Advance(5_000);
            Assert.Equal(0, (await Beat(b)).ErrorCode);
        }
        var members = await Members();
        Assert.Equal(new[] { b.Id }, members.Keys);
        var after = await Converge(b);
        Assert.True(after.GroupEpoch > epoch);
        Assert.Equal([0, 1, 2, 3], b.Owned);
        // The instance id is free again: a new member with it joins as a new member.
        Assert.Equal(0, (await Beat(new Member("a3", "instance-a"))).ErrorCode);
    }

    [Fact]
    public async Task AMemberThatDoesNotRevokeWithinItsRebalanceTimeoutIsFenced()
    {
        var a = new Member("a1", null, rebalanceTimeoutMs: 10_000);
        await Beat(a);
        await Converge(a);
        Assert.Equal([0, 1, 2, 3], a.Owned);
        var b = new Member("b1", null);
        await Beat(b);
        Assert.Empty(b.Owned); // a still owns everything

        // a is told to revoke two partitions but keeps heartbeating as if it still owned them.
        var told = await Beat(a, adopt: false);
        Assert.Equal(2, told.Assignment!.TopicPartitions.Single().Partitions.Count);
        for (var elapsed = 0; elapsed < 9_000; elapsed += 3_000)
        {
            await Advance(3_000);
            Assert.Equal(0, (await Beat(a, adopt: false)).ErrorCode);
            Assert.Equal(0, (await Beat(b)).ErrorCode);
        }
        Assert.Empty(b.Owned);
        await Advance(2_000);

        // Fenced: a is out, and b gets every partition.
        Assert.Equal((short)ErrorCode.UnknownMemberId, (await Beat(a, adopt: false)).ErrorCode);
        await Converge(b);
        Assert.Equal([0, 1, 2, 3], b.Owned);
    }

    [Fact]
    public async Task AMemberThatRevokesInTimeIsNotFenced()
    {
        var a = new Member("a1", null, rebalanceTimeoutMs: 10_000);
        await Beat(a);
        await Converge(a);
        var b = new Member("b1", null);
        await Beat(b);
        await Converge(a, b);
        await Advance(20_000);
        Assert.Equal(0, (await Beat(a)).ErrorCode);
        Assert.Equal(2, a.Owned.Count);
        Assert.Equal(2, b.Owned.Count);
    }

    [Fact]
    public async Task MembersInTheMiddleOfAReassignmentAreAskedToHeartbeatSooner()
    {
        const int interval = 5000; // group.consumer.heartbeat.interval.ms default
        var a = new Member("a1", null);
        await Beat(a);
        await Converge(a);
        Assert.Equal(interval, (await Beat(a)).HeartbeatIntervalMs);

        // b waits for partitions a still owns, and a must revoke them: both come back after a twentieth of the interval.
        var b = new Member("b1", null);
        Assert.Equal(interval / 20, (await Beat(b)).HeartbeatIntervalMs);
        Assert.Equal(interval / 20, (await Beat(a)).HeartbeatIntervalMs);
        await Converge(a, b);
        Assert.Equal(interval, (await Beat(a)).HeartbeatIntervalMs);
        Assert.Equal(interval, (await Beat(b)).HeartbeatIntervalMs);
    }
}
