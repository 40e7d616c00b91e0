using Tributary.Broker.Groups;
using Tributary.Broker.Metadata;
using Tributary.Protocol.Messages;
using Tributary.Storage;

namespace Tributary.Broker.Tests;

/// <summary>
/// The classic group state machine driven directly, with a manual clock: session timeouts, rebalance timeouts,
/// the initial rebalance delay and static membership, deterministically (no real time passes).
/// </summary>
public sealed class GroupsCoordinatorTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "tributary-coordinator-" + Guid.NewGuid().ToString("N"));
    private readonly FakeTimeProvider _clock = FakeTime.Create();
    private LogManager _logs = null!;
    private GroupCoordinator _coordinator = null!;
    private static readonly ClientInfo Client = new("test", "/127.0.0.1");

    public Task InitializeAsync() => StartAsync(0);

    private async Task StartAsync(int initialDelayMs)
    {
        if (_coordinator is not null) await DisposeAsync();
        Directory.CreateDirectory(_dir);
        var settings = new BrokerSettings(new Dictionary<string, string>
        {
            ["group.initial.rebalance.delay.ms"] = initialDelayMs.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["offsets.topic.num.partitions"] = "3",
        });
        _logs = new LogManager(_dir, TimeProvider.System);
        _coordinator = new GroupCoordinator(LocalCatalog.Open(_dir, _logs, settings), GroupSettings.From(settings), _clock, new BrokerLog(LogLevel.None));
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

    private Task<JoinGroupResponse> Join(string member, int session = 6000, int rebalance = 10000, string? instance = null, byte[]? metadata = null) =>
        _coordinator.JoinGroupAsync(new JoinGroupRequest
        {
            GroupId = "g",
            MemberId = member,
            GroupInstanceId = instance,
            SessionTimeoutMs = session,
            RebalanceTimeoutMs = rebalance,
            ProtocolType = "consumer",
            Protocols = [new JoinGroupRequest.JoinGroupRequestProtocol { Name = "range", Metadata = metadata ?? [1] }],
        }, instance is null ? (short)3 : (short)5, Client);

    private Task<SyncGroupResponse> Sync(JoinGroupResponse joined, params (string Member, byte[] Assignment)[] assignments) =>
        _coordinator.SyncGroupAsync(new SyncGroupRequest
        {
            GroupId = "g",
            GenerationId = joined.GenerationId,
            MemberId = joined.MemberId,
            Assignments = [.. assignments.Select(a => new SyncGroupRequest.SyncGroupRequestAssignment { MemberId = a.Member, Assignment = a.Assignment })],
        });

    /// <summary>Waits until the loop has run everything posted so far (requests and fired timers) before the clock moves on.</summary>
    private Task Settle() => _coordinator.ListAsync();

    private async Task Advance(int ms)
    {
        await Settle();
        _clock.Advance(ms);
        await Settle();
    }

    private Task<ErrorCode> Heartbeat(JoinGroupResponse joined, int? generation = null) =>
        _coordinator.HeartbeatAsync("g", joined.MemberId, null, generation ?? joined.GenerationId);

    /// <summary>Two members, A (leader) and B, in a Stable group at generation 2; A owns [1], B owns [2].</summary>
    private async Task<(JoinGroupResponse A, JoinGroupResponse B)> TwoStableMembersAsync(string? instanceA = null, int sessionB = 6000, int rebalance = 10000)
    {
        var a1 = await Join("", instance: instanceA, rebalance: rebalance);
        Assert.Equal(0, a1.ErrorCode);
        await Sync(a1, (a1.MemberId, [1]));
        var b = Join("", session: sessionB, rebalance: rebalance);
        Assert.Equal(ErrorCode.RebalanceInProgress, await Heartbeat(a1));
        var a2 = await Join(a1.MemberId, instance: instanceA, rebalance: rebalance);
        var b2 = await b;
        Assert.Equal((2, 2), (a2.GenerationId, b2.GenerationId));
        Assert.Equal(a2.MemberId, a2.Leader);
        var syncB = Sync(b2);
        Assert.Equal([1], (await Sync(a2, (a2.MemberId, [1]), (b2.MemberId, [2]))).Assignment);
        Assert.Equal([2], (await syncB).Assignment);
        return (a2, b2);
    }

    [Fact]
    public async Task AMemberWithoutHeartbeatsExpiresAfterItsSessionTimeoutAndTheGroupRebalances()
    {
        var (a, b) = await TwoStableMembersAsync();
        await Advance(5000);
        Assert.Equal(ErrorCode.None, await Heartbeat(a));
        await Advance(999);
        Assert.Equal(ErrorCode.None, await Heartbeat(a)); // B has 1 ms left
        await Advance(1);
        Assert.Equal(ErrorCode.RebalanceInProgress, await Heartbeat(a));
        Assert.Equal(ErrorCode.UnknownMemberId, await Heartbeat(b));
        var rejoined = await Join(a.MemberId);
        Assert.Equal(3, rejoined.GenerationId);
        Assert.Single(rejoined.Members);
    }

    [Fact]
    public async Task MembersThatDoNotRejoinWithinTheRebalanceTimeoutAreRemoved()
    {
        var (a, b) = await TwoStableMembersAsync(sessionB: 60000);
        var c = Join("", session: 60000);
        Assert.Equal(ErrorCode.RebalanceInProgress, await Heartbeat(a));
        var a3 = Join(a.MemberId);
        await Advance(9999);
        Assert.False(a3.IsCompleted);
        await Advance(1);
        var joined = await a3;
        Assert.Equal(3, joined.GenerationId);
        Assert.Equal(2, joined.Members.Count);
        Assert.DoesNotContain(joined.Members, m => m.MemberId == b.MemberId);
        Assert.Equal(3, (await c).GenerationId);
        Assert.Equal(ErrorCode.UnknownMemberId, await Heartbeat(b, 3));
    }

    [Fact]
    public async Task TheInitialDelayGathersArrivingMembersIntoOneGeneration()
    {
        await StartAsync(initialDelayMs: 3000);
        var a = Join("");
        await Advance(1000);
        var b = Join("");
        await Advance(2000); // first delay over, but B arrived during it: wait one more delay
        await Advance(2999);
        Assert.False(a.IsCompleted || b.IsCompleted);
        await Advance(1);
        var (ja, jb) = (await a, await b);
        Assert.Equal((1, 1), (ja.GenerationId, jb.GenerationId));
        Assert.Equal(2, (ja.Leader == ja.MemberId ? ja : jb).Members.Count);
    }

    [Fact]
    public async Task AStaticMemberRejoiningAStableGroupKeepsTheGenerationAndItsAssignment()
    {
        var (a, b) = await TwoStableMembersAsync(instanceA: "instance-a");
        var again = await Join("", instance: "instance-a");
        Assert.Equal(0, again.ErrorCode);
        Assert.Equal(2, again.GenerationId);
        Assert.NotEqual(a.MemberId, again.MemberId);
        Assert.Equal([1], (await Sync(again)).Assignment);
        Assert.Equal(ErrorCode.None, await Heartbeat(b));
        Assert.Equal(ErrorCode.FencedInstanceId, await _coordinator.HeartbeatAsync("g", a.MemberId, "instance-a", 2));
    }

    [Fact]
    public async Task CommitsAreCheckedAgainstTheGenerationAndStandaloneCommitsNeedAnEmptyGroup()
    {
        var (a, _) = await TwoStableMembersAsync();
        OffsetToCommit[] offsets = [new("t", 0, 5, 1, "m", -1)];
        Assert.Equal(ErrorCode.None, (await _coordinator.CommitOffsetsAsync("g", 2, a.MemberId, null, offsets)).PartitionErrors.Single());
        Assert.Equal(ErrorCode.IllegalGeneration, (await _coordinator.CommitOffsetsAsync("g", 1, a.MemberId, null, offsets)).GroupError);
        Assert.Equal(ErrorCode.UnknownMemberId, (await _coordinator.CommitOffsetsAsync("g", -1, "", null, offsets)).GroupError);
        Assert.Equal(ErrorCode.None, (await _coordinator.CommitOffsetsAsync("standalone", -1, "", null, offsets)).PartitionErrors.Single());
        var fetched = await _coordinator.FetchOffsetsAsync("g", [("t", 0), ("t", 1)]);
        Assert.Equal(new CommittedOffset(5, 1, "m", fetched.Offsets[0].Offset!.CommitTimestamp), fetched.Offsets[0].Offset);
        Assert.Null(fetched.Offsets[1].Offset);
    }

    /// <summary>
    /// Commits sent back to back (commitAsync, auto-commit) are appended in order and often share one fsync; their
    /// completions must be applied in that order too, or memory keeps the older offset while the log holds the newer.
    /// </summary>
    [Fact]
    public async Task CommitsThatShareAnFsyncAreAppliedInTheOrderTheyWereAppended()
    {
        var regressions = new List<long>();
        for (var i = 0; i < 500; i++)
        {
            var first = _coordinator.CommitOffsetsAsync("pipelined", -1, "", null, [new OffsetToCommit("t", 0, 2 * i + 1, -1, null, -1)]);
            var second = _coordinator.CommitOffsetsAsync("pipelined", -1, "", null, [new OffsetToCommit("t", 0, 2 * i + 2, -1, null, -1)]);
            await Task.WhenAll(first, second);
            var offset = (await _coordinator.FetchOffsetsAsync("pipelined", [("t", 0)])).Offsets.Single().Offset!.Offset;
            if (offset != 2 * i + 2) regressions.Add(offset);
        }
        Assert.Empty(regressions);
    }

    [Fact]
    public async Task AnEmptyConsumerProtocolGroupBecomesClassicWhenAClassicMemberJoins()
    {
        var joined = await _coordinator.ConsumerHeartbeatAsync(new ConsumerHeartbeat("g", "m1", 0, null, null, 30000, ["t"], null, null, null, Client));
        Assert.Equal(0, joined.ErrorCode);
        Assert.Equal(1, joined.MemberEpoch);
        Assert.Equal((short)ErrorCode.InconsistentGroupProtocol, (await Join("")).ErrorCode);
        await _coordinator.ConsumerHeartbeatAsync(new ConsumerHeartbeat("g", "m1", -1, null, null, -1, null, null, null, null, Client));
        Assert.Equal(0, (await Join("")).ErrorCode);
        var listed = (await _coordinator.ListAsync()).Single(g => g.GroupId == "g");
        Assert.Equal(("classic", "CompletingRebalance"), (listed.Type, listed.State));
    }
}
