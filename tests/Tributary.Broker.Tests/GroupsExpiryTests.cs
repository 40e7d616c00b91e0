using Tributary.Broker.Groups;
using Tributary.Broker.Metadata;
using Tributary.Protocol.Messages;
using Tributary.Storage;

namespace Tributary.Broker.Tests;

/// <summary>
/// offsets.retention.minutes with a manual clock (retention 1 minute, checked every second): standalone commits expire
/// by commit time, a classic group's offsets by the time it became Empty (and, while Stable, those of topics it does
/// not subscribe to by commit time), a KIP-848 group's by commit time for unsubscribed topics; a group left with no
/// members and no offsets is removed. A restart on the same log shows the tombstones were written.
/// </summary>
public sealed class GroupsExpiryTests : IAsyncLifetime
{
    private const int Retention = 60_000;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "tributary-expiry-" + Guid.NewGuid().ToString("N"));
    private readonly FakeTimeProvider _clock = FakeTime.Create();
    private LogManager _logs = null!;
    private GroupCoordinator _coordinator = null!;
    private static readonly ClientInfo Client = new("test", "/127.0.0.1");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        await StartAsync();
    }

    private async Task StartAsync()
    {
        var settings = new BrokerSettings(new Dictionary<string, string>
        {
            ["group.initial.rebalance.delay.ms"] = "0",
            ["group.consumer.session.timeout.ms"] = "600000",
            ["offsets.retention.minutes"] = "1",
            ["offsets.retention.check.interval.ms"] = "1000",
            // One partition: appends of all groups are ordered, so an acknowledged commit means earlier tombstones are written.
            ["offsets.topic.num.partitions"] = "1",
        });
        _logs = new LogManager(_dir, TimeProvider.System);
        _coordinator = new GroupCoordinator(LocalCatalog.Open(_dir, _logs, settings), GroupSettings.From(settings), _clock, new BrokerLog(LogLevel.None));
        _coordinator.Start();
        await _coordinator.WaitUntilLoadedAsync(TimeSpan.FromSeconds(30));
    }

    private async Task StopAsync()
    {
        await _coordinator.DisposeAsync();
        await _logs.StopAsync();
        _logs.Dispose();
    }

    /// <summary>Stops and starts the coordinator on the same log, after a commit that orders behind every earlier append.</summary>
    private async Task RestartAsync()
    {
        Assert.Equal(ErrorCode.None, (await _coordinator.CommitOffsetsAsync("barrier", -1, "", null, [new("t", 0, 1, -1, null, -1)])).PartitionErrors.Single());
        await StopAsync();
        await StartAsync();
    }

    public async Task DisposeAsync()
    {
        await StopAsync();
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private async Task Advance(int ms)
    {
        await _coordinator.ListAsync();
        _clock.Advance(ms);
        await _coordinator.ListAsync(); // the expiry posted by the timer has run
    }

    private async Task<List<string>> Committed(string group) =>
        [.. (await _coordinator.FetchOffsetsAsync(group, null)).Offsets.Select(o => $"{o.Topic}-{o.Partition}")];

    private async Task<bool> Listed(string group) => (await _coordinator.ListAsync()).Any(g => g.GroupId == group);

    [Fact]
    public async Task StandaloneCommitsExpireByCommitTimeAndTheGroupGoesWithTheLast()
    {
        await _coordinator.CommitOffsetsAsync("solo", -1, "", null, [new("t", 0, 5, -1, null, -1)]);
        await Advance(30_000);
        await _coordinator.CommitOffsetsAsync("solo", -1, "", null, [new("t", 1, 7, -1, null, -1)]);
        await Advance(29_000);
        Assert.Equal(["t-0", "t-1"], await Committed("solo"));
        await Advance(2_000);
        Assert.Equal(["t-1"], await Committed("solo"));
        Assert.True(await Listed("solo"));
        await Advance(30_000);
        Assert.Empty(await Committed("solo"));
        Assert.False(await Listed("solo"));

        await RestartAsync();
        Assert.Empty(await Committed("solo"));
        Assert.False(await Listed("solo"));
    }

    [Fact]
    public async Task AClassicGroupsOffsetsExpireRetentionAfterItBecameEmpty()
    {
        var joined = await _coordinator.JoinGroupAsync(new JoinGroupRequest
        {
            GroupId = "g",
            MemberId = "",
            SessionTimeoutMs = 300_000,
            RebalanceTimeoutMs = 300_000,
            ProtocolType = "consumer",
            Protocols = [new JoinGroupRequest.JoinGroupRequestProtocol { Name = "range", Metadata = GroupsFixture.Subscription("t") }],
        }, 3, Client);
        Assert.Equal(0, joined.ErrorCode);
        Assert.Equal(0, (await _coordinator.SyncGroupAsync(new SyncGroupRequest
        {
            GroupId = "g",
            GenerationId = joined.GenerationId,
            MemberId = joined.MemberId,
            Assignments = [new SyncGroupRequest.SyncGroupRequestAssignment { MemberId = joined.MemberId, Assignment = [1] }],
        })).ErrorCode);
        var (error, _) = await _coordinator.CommitOffsetsAsync("g", joined.GenerationId, joined.MemberId, null, [new("t", 0, 5, -1, null, -1), new("u", 0, 9, -1, null, -1)]);
        Assert.Equal(ErrorCode.None, error);

        // Stable: the topic no member subscribes to expires by commit time; the subscribed one stays however old.
        await Advance(Retention + 1_000);
        Assert.Equal(["t-0"], await Committed("g"));

        // Empty from now on: its offsets expire one retention later, not one retention after their commit.
        Assert.Equal(ErrorCode.None, (await _coordinator.LeaveGroupAsync("g", [(joined.MemberId, null)])).GroupError);
        Assert.Equal("Empty", (await _coordinator.DescribeAsync("g")).Group!.State);
        await Advance(Retention - 1_000);
        Assert.Equal(["t-0"], await Committed("g"));
        await Advance(2_000);
        Assert.Empty(await Committed("g"));
        Assert.False(await Listed("g"));

        await RestartAsync();
        Assert.False(await Listed("g"));
        Assert.Empty(await Committed("g"));
    }

    [Fact]
    public async Task AConsumerProtocolGroupsOffsetsExpireByCommitTimeAndTheGroupGoesWhenEmpty()
    {
        var joined = await _coordinator.ConsumerHeartbeatAsync(new ConsumerHeartbeat("k", "m1", 0, null, null, 30_000, ["t"], null, null, null, Client));
        Assert.Equal(0, joined.ErrorCode);
        var (error, _) = await _coordinator.CommitOffsetsAsync("k", joined.MemberEpoch, "m1", null, [new("t", 0, 5, -1, null, -1), new("u", 0, 9, -1, null, -1)]);
        Assert.Equal(ErrorCode.None, error);
        await Advance(Retention + 1_000);
        Assert.Equal(["t-0"], await Committed("k"));

        // With no members nothing is subscribed: the offset, committed over a retention ago, goes, and the group with it.
        await _coordinator.ConsumerHeartbeatAsync(new ConsumerHeartbeat("k", "m1", -1, null, null, -1, null, null, null, null, Client));
        Assert.True(await Listed("k"));
        await Advance(1_000);
        Assert.Empty(await Committed("k"));
        Assert.False(await Listed("k"));

        await RestartAsync();
        Assert.False(await Listed("k"));
        Assert.Equal((short)ErrorCode.GroupIdNotFound, (await _coordinator.DescribeConsumerGroupAsync("k")).ErrorCode);
    }

    [Fact]
    public void RetentionSettingsHaveKafkasDefaults()
    {
        var settings = GroupSettings.From(new BrokerSettings(new Dictionary<string, string>()));
        Assert.Equal(10080L * 60_000, settings.OffsetsRetentionMs);
        Assert.Equal(600_000L, settings.OffsetsRetentionCheckIntervalMs);
    }
}
