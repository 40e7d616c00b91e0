using System.Globalization;
using Tributary.Broker.Groups;
using Tributary.Broker.Metadata;
using Tributary.Coordination;
using Tributary.Protocol.Messages;
using Tributary.Storage;

namespace Tributary.Broker.Tests;

/// <summary>
/// The group coordinator's shards on the coordination runtime: a partition of <c>__consumer_offsets</c> can be unloaded
/// and loaded at run time (as a broker loses and gains its leadership), and a partition whose replay fails stays
/// unavailable (COORDINATOR_LOAD_IN_PROGRESS) while the others serve, instead of serving partial state.
/// </summary>
public sealed class GroupsShardTests : IAsyncLifetime
{
    private const int Partitions = 3;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "tributary-group-shards-" + Guid.NewGuid().ToString("N"));
    private readonly FakeTimeProvider _clock = FakeTime.Create();
    private LogManager _logs = null!;
    private TopicCatalog _topics = null!;
    private GroupSettings _settings = null!;
    private GroupCoordinator? _coordinator;
    private static readonly ClientInfo Client = new("test", "/127.0.0.1");

    public Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        var settings = new BrokerSettings(new Dictionary<string, string>
        {
            ["group.initial.rebalance.delay.ms"] = "3000",
            ["offsets.topic.num.partitions"] = Partitions.ToString(CultureInfo.InvariantCulture),
        });
        _settings = GroupSettings.From(settings);
        _logs = new LogManager(_dir, TimeProvider.System);
        _topics = LocalCatalog.Open(_dir, _logs, settings);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        if (_coordinator is not null) await _coordinator.DisposeAsync();
        await _logs.StopAsync();
        _logs.Dispose();
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private async Task<GroupCoordinator> StartAsync(Func<int, ICoordinatorLog>? logs = null)
    {
        _coordinator = new GroupCoordinator(_topics, _settings, _clock, new BrokerLog(LogLevel.None), logs);
        _coordinator.Start();
        await _coordinator.WaitUntilLoadedAsync(TimeSpan.FromSeconds(30));
        return _coordinator;
    }

    /// <summary>A group id whose partition is <paramref name="partition"/>.</summary>
    private static string GroupIn(int partition, string prefix = "g") =>
        Enumerable.Range(0, 1000).Select(i => $"{prefix}{i}").First(id => OffsetsTopicRecords.PartitionFor(id, Partitions) == partition);

    private static Task<(ErrorCode GroupError, List<ErrorCode> PartitionErrors)> Commit(GroupCoordinator c, string group, long offset) =>
        c.CommitOffsetsAsync(group, -1, "", null, [new OffsetToCommit("t", 0, offset, -1, "m", -1)]);

    private static async Task<(ErrorCode Error, long? Offset)> Fetch(GroupCoordinator c, string group)
    {
        var (error, offsets) = await c.FetchOffsetsAsync(group, [("t", 0)]);
        return (error, error == ErrorCode.None ? offsets.Single().Offset?.Offset : null);
    }

    private static Task<JoinGroupResponse> Join(GroupCoordinator c, string group) =>
        c.JoinGroupAsync(new JoinGroupRequest
        {
            GroupId = group,
            MemberId = "",
            SessionTimeoutMs = 10_000,
            RebalanceTimeoutMs = 10_000,
            ProtocolType = "consumer",
            Protocols = [new JoinGroupRequest.JoinGroupRequestProtocol { Name = "range", Metadata = [1] }],
        }, 3, Client);

    [Fact]
    public async Task An_unloaded_partition_answers_not_coordinator_and_its_groups_come_back_when_it_loads_again()
    {
        var coordinator = await StartAsync();
        var moving = GroupIn(1);
        var staying = GroupIn(2);
        Assert.Equal(ErrorCode.None, (await Commit(coordinator, moving, 42)).PartitionErrors.Single());
        Assert.Equal(ErrorCode.None, (await Commit(coordinator, staying, 7)).PartitionErrors.Single());
        // The first member of a new group waits out group.initial.rebalance.delay.ms: parked on the shard.
        var parkedJoin = Join(coordinator, moving);

        await coordinator.Runtime.UnloadAsync(1);

        Assert.Equal(ErrorCode.NotCoordinator, (ErrorCode)(await parkedJoin).ErrorCode);
        Assert.Equal(ErrorCode.NotCoordinator, (await Fetch(coordinator, moving)).Error);
        Assert.Equal(ErrorCode.NotCoordinator, (await Commit(coordinator, moving, 43)).GroupError);
        Assert.Equal((ErrorCode.None, 7L), await Fetch(coordinator, staying));
        Assert.DoesNotContain(await coordinator.ListAsync(), g => g.GroupId == moving);
        Assert.Equal(ShardStatus.NotLoaded, coordinator.Runtime.StatusOf(1));

        Assert.Equal(ShardStatus.Loaded, await coordinator.Runtime.Load(1));

        Assert.Equal((ErrorCode.None, 42L), await Fetch(coordinator, moving));
    }

    [Fact]
    public async Task A_partition_whose_replay_fails_stays_unavailable_while_the_others_serve()
    {
        var memory = Enumerable.Range(0, Partitions).Select(_ => new MemoryCoordinatorLog()).ToArray();
        var healthy = await StartAsync(p => memory[p]);
        var broken = GroupIn(0);
        var fine = GroupIn(1);
        Assert.Equal(ErrorCode.None, (await Commit(healthy, broken, 5)).PartitionErrors.Single());
        Assert.Equal(ErrorCode.None, (await Commit(healthy, fine, 6)).PartitionErrors.Single());
        await healthy.DisposeAsync();

        // Restart with partition 0 unreadable.
        var coordinator = await StartAsync(p => p == 0 ? new UnreadableLog() : memory[p]);

        Assert.Equal(ErrorCode.CoordinatorLoadInProgress, (await Fetch(coordinator, broken)).Error);
        Assert.Equal(ErrorCode.CoordinatorLoadInProgress, (await Commit(coordinator, broken, 9)).GroupError);
        Assert.Equal(ErrorCode.CoordinatorLoadInProgress, (ErrorCode)(await Join(coordinator, broken)).ErrorCode);
        Assert.Equal((ErrorCode.None, 6L), await Fetch(coordinator, fine));
        Assert.Equal(1, coordinator.Runtime.LoadFailureCount);
        Assert.Equal(ShardStatus.Failed, coordinator.Runtime.StatusOf(0));
        Assert.False(coordinator.IsLoaded);
    }

    private sealed class UnreadableLog : ICoordinatorLog
    {
        public IEnumerable<CoordinatorRecord> Read(Action<long, Exception> undecodable) => throw new IOException("Input/output error");

        public Task<long> AppendAsync(IReadOnlyList<(byte[] Key, byte[]? Value)> records, long timestampMs, TransactionalProducer? producer) =>
            throw new IOException("Input/output error");
    }
}
