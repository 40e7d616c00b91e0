using Tributary.Broker.Groups;
using Tributary.Broker.Metadata;
using Tributary.Coordination;
using Tributary.Protocol.Messages;
using Tributary.Storage;

namespace Tributary.Broker.Tests;

/// <summary>
/// KIP-848 regex subscriptions, driven through the coordinator with a manual clock: as Kafka 4 does, the broker assigns
/// a member's named topics at once and resolves its regex off the heartbeat, so the regex's partitions arrive in a later
/// heartbeat; a topic created later that matches is picked up by a refresh at a heartbeat more than 10 s after the last
/// one; and the resolution is a ConsumerGroupRegularExpression record that a coordinator reload reads back.
/// </summary>
public sealed class GroupsConsumerRegexTests : IAsyncLifetime
{
    private const string Regex = "orders-.*";
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "tributary-regex-" + Guid.NewGuid().ToString("N"));
    private readonly FakeTimeProvider _clock = FakeTime.Create();
    private readonly MemoryCoordinatorLog _offsets = new();
    private LogManager _logs = null!;
    private TopicCatalog _topics = null!;
    private GroupCoordinator _coordinator = null!;
    private static readonly ClientInfo Client = new("test", "/127.0.0.1");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        var settings = new BrokerSettings(new Dictionary<string, string> { ["offsets.topic.num.partitions"] = "1" });
        _logs = new LogManager(_dir, TimeProvider.System);
        _topics = LocalCatalog.Open(_dir, _logs, settings);
        _topics.Create("named", 2, new Dictionary<string, string>());
        _topics.Create("orders-eu", 2, new Dictionary<string, string>());
        _topics.Create("orders-us", 1, new Dictionary<string, string>());
        _topics.Create("other", 1, new Dictionary<string, string>());
        _coordinator = new GroupCoordinator(_topics, GroupSettings.From(settings), _clock, new BrokerLog(LogLevel.None), _ => _offsets);
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

    /// <summary>A member as a client keeps it: id, epoch and the partitions it owns (topic name → partitions).</summary>
    private sealed class Member(string id)
    {
        public string Id { get; } = id;
        public int Epoch { get; set; }
        public SortedDictionary<string, SortedSet<int>> Owned { get; set; } = new(StringComparer.Ordinal);
        public override string ToString() => string.Join(" ", Owned.Select(kv => $"{kv.Key}:{string.Join(",", kv.Value)}"));
    }

    /// <summary>One heartbeat (the first one subscribes to "named" and <see cref="Regex"/>); the member adopts what it is given.</summary>
    private async Task<ConsumerGroupHeartbeatResponse> Beat(Member m)
    {
        var joining = m.Epoch == 0;
        var owned = m.Owned.ToDictionary(kv => _topics.Get(kv.Key)!.Id, kv => (IReadOnlyList<int>)[.. kv.Value]);
        var response = await _coordinator.ConsumerHeartbeatAsync(new ConsumerHeartbeat("g", m.Id, m.Epoch, null, null,
            joining ? 30_000 : -1, joining ? ["named"] : null, joining ? Regex : null, null, joining ? null : owned, Client));
        Assert.Equal(0, response.ErrorCode);
        m.Epoch = response.MemberEpoch;
        if (response.Assignment is { } assignment)
            m.Owned = new(assignment.TopicPartitions.ToDictionary(t => _topics.Get(t.TopicId)!.Name, t => new SortedSet<int>(t.Partitions)), StringComparer.Ordinal);
        return response;
    }

    private async Task<int> GroupEpoch() => (await _coordinator.DescribeConsumerGroupAsync("g")).GroupEpoch;

    /// <summary>Waits for the refresh running off the loop to bump the group epoch past <paramref name="epoch"/>.</summary>
    private Task<int> GroupEpochAfter(int epoch) =>
        Eventually.ValueAsync(() => GroupEpoch(), e => e > epoch, TimeSpan.FromSeconds(10), $"the regex resolution to bump group epoch {epoch}");

    private async Task Advance(int ms)
    {
        await _coordinator.ListAsync();
        _clock.Advance(ms);
        await _coordinator.ListAsync();
    }

    /// <summary>The member joins, the regex resolves, and a second heartbeat brings its topics.</summary>
    private async Task<Member> JoinAndResolve()
    {
        var m = new Member("m1");
        await Beat(m);
        await GroupEpochAfter(m.Epoch);
        await Beat(m);
        Assert.Equal("named:0,1 orders-eu:0,1 orders-us:0", m.ToString());
        return m;
    }

    [Fact]
    public async Task TheFirstHeartbeatAssignsTheNamedTopicAndALaterOneAddsTheRegexMatches()
    {
        var m = new Member("m1");

        var first = await Beat(m);
        Assert.NotNull(first.Assignment);
        Assert.Equal("named:0,1", m.ToString());
        var joinedAt = m.Epoch;

        // The resolution lands off the heartbeat path, bumping the group epoch; the member learns of it by heartbeating.
        var resolvedAt = await GroupEpochAfter(joinedAt);
        var second = await Beat(m);
        Assert.Equal(resolvedAt, second.MemberEpoch);
        Assert.Equal("named:0,1 orders-eu:0,1 orders-us:0", m.ToString());
        var described = await _coordinator.DescribeConsumerGroupAsync("g");
        Assert.Equal("Stable", described.GroupState);
        Assert.Equal(Regex, described.Members.Single().SubscribedTopicRegex);
    }

    [Fact]
    public async Task ATopicCreatedLaterThatMatchesIsAddedByARefreshAtALaterHeartbeat()
    {
        var m = await JoinAndResolve();
        var epoch = await GroupEpoch();

        // Within 10 s of the last refresh a heartbeat does not resolve again: the new topic is not in the subscription.
        _topics.Create("orders-apac", 3, new Dictionary<string, string>());
        await Advance(5_000);
        await Beat(m);
        Assert.Equal("named:0,1 orders-eu:0,1 orders-us:0", m.ToString());

        // Past the batch interval, a heartbeat starts the refresh (a topic was created since the last one); its result
        // reaches the member at the heartbeat after.
        await Advance(GroupShard.RegexRefreshMinIntervalMs);
        await Beat(m);
        Assert.Equal("named:0,1 orders-eu:0,1 orders-us:0", m.ToString());
        var refreshedAt = await GroupEpochAfter(epoch);
        var after = await Beat(m);
        Assert.Equal(refreshedAt, after.MemberEpoch);
        Assert.Equal("named:0,1 orders-apac:0,1,2 orders-eu:0,1 orders-us:0", m.ToString());
    }

    [Fact]
    public async Task TheResolvedRegexIsARecordThatACoordinatorReloadReadsBack()
    {
        var m = await JoinAndResolve();
        var epoch = await GroupEpoch();
        var stored = _offsets.Records.Where(r => OffsetsTopicRecords.ReadKey(r.Key) is OffsetsTopicRecords.ConsumerKey { Type: ConsumerGroupRecords.RegularExpression })
            .Select(r => (Key: (OffsetsTopicRecords.ConsumerKey)OffsetsTopicRecords.ReadKey(r.Key)!, r.Value)).Last();
        Assert.Equal(new OffsetsTopicRecords.ConsumerKey("g", 16, Regex), stored.Key);
        Assert.Equal(new[] { "orders-eu", "orders-us" }, ConsumerGroupRecords.ReadRegularExpressionValue(stored.Value!).Topics);

        await _coordinator.Runtime.UnloadAsync(0);
        Assert.Equal(ShardStatus.Loaded, await _coordinator.Runtime.Load(0));

        // Read back with the group: the member's next heartbeat keeps every partition, at the same group epoch.
        var response = await Beat(m);
        Assert.Equal(epoch, response.MemberEpoch);
        Assert.Equal(epoch, await GroupEpoch());
        Assert.Equal("named:0,1 orders-eu:0,1 orders-us:0", m.ToString());
        var described = (await _coordinator.DescribeConsumerGroupAsync("g")).Members.Single();
        Assert.Equal(5, described.TargetAssignment.TopicPartitions.Sum(t => t.Partitions.Count));
    }

    [Fact]
    public async Task ARegexNoMemberSubscribesToAnyMoreIsTombstoned()
    {
        var m = await JoinAndResolve();
        Assert.Equal(0, (await _coordinator.ConsumerHeartbeatAsync(new ConsumerHeartbeat("g", m.Id, -1, null, null, -1, null, null, null, null, Client))).ErrorCode);

        var last = _offsets.Records.Last(r => OffsetsTopicRecords.ReadKey(r.Key) is OffsetsTopicRecords.ConsumerKey { Type: ConsumerGroupRecords.RegularExpression });
        Assert.Null(last.Value);
    }
}
