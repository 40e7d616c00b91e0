using System.Globalization;
using Tributary.Broker.Groups;
using Tributary.Broker.Metadata;
using Tributary.Broker.Transactions;
using Tributary.Coordination;
using Tributary.Protocol.Messages;
using Tributary.Storage;

namespace Tributary.Broker.Tests;

/// <summary>
/// TxnOffsetCommit on the group coordinator (KIP-98): offsets written as a producer's transactional batch to
/// <c>__consumer_offsets</c> stay pending until that producer's marker lands there, live and when a shard is rebuilt by
/// replaying the partition, with the real log underneath (transactional appends and markers in the same partition).
/// </summary>
public sealed class GroupsTransactionalOffsetsTests : IAsyncLifetime
{
    private const int Partitions = 3;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "tributary-txn-offsets-" + Guid.NewGuid().ToString("N"));
    private readonly FakeTimeProvider _clock = FakeTime.Create();
    private LogManager _logs = null!;
    private TopicCatalog _topics = null!;
    private GroupSettings _settings = null!;
    private GroupCoordinator? _coordinator;

    public Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        var settings = new BrokerSettings(new Dictionary<string, string> { ["offsets.topic.num.partitions"] = Partitions.ToString(CultureInfo.InvariantCulture) });
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

    private static readonly string Group = Enumerable.Range(0, 1000).Select(i => $"txn{i}").First(id => OffsetsTopicRecords.PartitionFor(id, Partitions) == 1);

    private static Task<(ErrorCode GroupError, List<ErrorCode> PartitionErrors)> TxnCommit(GroupCoordinator c, long producerId, short epoch, int partition, long offset,
        string member = "", int generation = -1) =>
        c.CommitTransactionalOffsetsAsync(new TransactionalCommit(Group, producerId, epoch, generation, member, null, CheckMember: true,
            [new OffsetToCommit("t", partition, offset, -1, "", -1)]));

    /// <summary>The marker the transaction coordinator would write, appended to the group's partition; the shard is told only when <paramref name="tell"/>.</summary>
    private async Task Marker(long producerId, short epoch, bool commit, bool tell = true) =>
        Assert.Equal(ErrorCode.None, await TransactionMarkers.AppendAsync(_topics, null, tell ? _coordinator : null, GroupSettings.OffsetsTopic, 1, producerId, epoch,
            commit, 0, _clock.GetUtcNow().ToUnixTimeMilliseconds()));

    /// <summary>(offset or null, unstable) of t-0 … t-(n-1), read on the shard's loop as OffsetFetch does.</summary>
    private static async Task<List<(long? Offset, bool Unstable)>> Read(GroupCoordinator c, int partitions)
    {
        var (error, offsets) = await c.FetchOffsetsAsync(Group, [.. Enumerable.Range(0, partitions).Select(p => ("t", p))]);
        Assert.Equal(ErrorCode.None, error);
        return [.. offsets.Select(o => (o.Offset?.Offset, o.Unstable))];
    }

    private async Task ReloadAsync(GroupCoordinator c)
    {
        await c.Runtime.UnloadAsync(1);
        Assert.Equal(ShardStatus.Loaded, await c.Runtime.Load(1));
    }

    /// <summary>
    /// Replay of a pending, a committed and an aborted transactional offset, and of one committed after a plain commit
    /// written while it was open: the committed one applies, the aborted one drops, the open one stays pending (hidden and
    /// unstable) and commits when its marker comes live, and the plain commit written later in the log wins.
    /// </summary>
    [Fact]
    public async Task ReplayKeepsATransactionalOffsetPendingUntilItsMarkerCommitsOrAbortsIt()
    {
        var c = await StartAsync();
        Assert.Equal(ErrorCode.None, (await TxnCommit(c, 1000, 0, partition: 0, offset: 10)).PartitionErrors.Single()); // to commit
        Assert.Equal(ErrorCode.None, (await TxnCommit(c, 2000, 0, partition: 1, offset: 20)).PartitionErrors.Single()); // to abort
        Assert.Equal(ErrorCode.None, (await TxnCommit(c, 3000, 0, partition: 2, offset: 30)).PartitionErrors.Single()); // left open
        Assert.Equal(ErrorCode.None, (await TxnCommit(c, 4000, 0, partition: 3, offset: 40)).PartitionErrors.Single()); // overtaken
        Assert.Equal(ErrorCode.None, (await c.CommitOffsetsAsync(Group, -1, "", null, [new OffsetToCommit("t", 3, 44, -1, "", -1)])).PartitionErrors.Single());
        Assert.Equal([(null, true), (null, true), (null, true), (44L, true)], await Read(c, 4));

        // The markers land in the log but this shard never hears of them (its broker failed right after them).
        await Marker(1000, 0, commit: true, tell: false);
        await Marker(2000, 0, commit: false, tell: false);
        await Marker(4000, 0, commit: true, tell: false);
        Assert.Equal([(null, true), (null, true), (null, true), (44L, true)], await Read(c, 4));

        await ReloadAsync(c);
        Assert.Equal([(10L, false), (null, false), (null, true), (44L, false)], await Read(c, 4));

        // The open transaction commits now, live: its offset appears with the marker's arrival.
        await Marker(3000, 0, commit: true);
        Assert.Equal([(10L, false), (null, false), (30L, false), (44L, false)], await Read(c, 4));

        await ReloadAsync(c);
        Assert.Equal([(10L, false), (null, false), (30L, false), (44L, false)], await Read(c, 4));
    }

    /// <summary>
    /// Live: pending offsets are hidden and unstable from the append on; an abort drops them, a commit installs them,
    /// a plain commit written while the transaction was open is not undone by it; a producer epoch older than the
    /// partition has seen is refused, as is a member of no generation (KIP-447).
    /// </summary>
    [Fact]
    public async Task MarkersCommitOrDropPendingOffsetsAndOldEpochsAreRefused()
    {
        var c = await StartAsync();
        Assert.Equal(ErrorCode.None, (await c.CommitOffsetsAsync(Group, -1, "", null, [new OffsetToCommit("t", 0, 5, -1, "", -1)])).PartitionErrors.Single());
        Assert.Equal(ErrorCode.UnknownMemberId, (await TxnCommit(c, 1000, 1, 0, 99, member: "zombie", generation: 3)).GroupError);
        Assert.Equal([(5L, false)], await Read(c, 1)); // a refused commit marks nothing

        Assert.Equal(ErrorCode.None, (await TxnCommit(c, 1000, 1, 0, 6)).PartitionErrors.Single());
        Assert.Equal([(5L, true)], await Read(c, 1));
        Assert.Equal(ErrorCode.InvalidProducerEpoch, (await TxnCommit(c, 1000, 0, 0, 7)).GroupError); // older than the pending one's
        await Marker(1000, 1, commit: false);
        Assert.Equal([(5L, false)], await Read(c, 1));

        // Fenced by the partition's own producer state, with nothing pending in the shard any more.
        Assert.Equal(ErrorCode.InvalidProducerEpoch, (await TxnCommit(c, 1000, 0, 0, 7)).PartitionErrors.Single());

        Assert.Equal(ErrorCode.None, (await TxnCommit(c, 1000, 2, 0, 8)).PartitionErrors.Single());
        await Marker(1000, 2, commit: true);
        Assert.Equal([(8L, false)], await Read(c, 1));

        Assert.Equal(ErrorCode.None, (await TxnCommit(c, 1000, 2, 0, 9)).PartitionErrors.Single());
        Assert.Equal(ErrorCode.None, (await c.CommitOffsetsAsync(Group, -1, "", null, [new OffsetToCommit("t", 0, 12, -1, "", -1)])).PartitionErrors.Single());
        await Marker(1000, 2, commit: true);
        Assert.Equal([(12L, false)], await Read(c, 1)); // the plain commit came later in the log
    }

    /// <summary>
    /// A marker can reach the shard before the durable answer of an append it follows in the log (a transaction aborted
    /// on timeout while a TxnOffsetCommit of it was being written). The append's offsets must still be dropped, as
    /// replay would drop them, not stay pending for ever.
    /// </summary>
    [Fact]
    public async Task AMarkerThatOvertakesAnAppendsAnswerStillDecidesIt()
    {
        var logs = Enumerable.Range(0, Partitions).Select(_ => new GatedLog()).ToArray();
        var c = await StartAsync(p => logs[p]);
        logs[1].Hold = true;
        var commit = TxnCommit(c, 1000, 0, 0, 6);
        await logs[1].Held.Task; // appended (position 0), not yet durable
        Assert.Equal([(null, true)], await Read(c, 1));

        var marker = logs[1].Inner.AppendMarker(1000, 1, TransactionOutcome.Abort);
        await c.CompleteTransactionAsync(1, 1000, 1, commit: false, marker);
        logs[1].Release.TrySetResult();
        Assert.Equal(ErrorCode.None, (await commit).PartitionErrors.Single());
        Assert.Equal([(null, false)], await Read(c, 1));

        await ReloadAsync(c);
        Assert.Equal([(null, false)], await Read(c, 1));
    }

    /// <summary>A memory partition whose next append, once <see cref="Hold"/> is set, is written at once but answered only on <see cref="Release"/>.</summary>
    private sealed class GatedLog : ICoordinatorLog
    {
        public MemoryCoordinatorLog Inner { get; } = new();
        public volatile bool Hold;
        public TaskCompletionSource Held { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public IEnumerable<CoordinatorRecord> Read(Action<long, Exception> undecodable) => Inner.Read(undecodable);

        public async Task<long> AppendAsync(IReadOnlyList<(byte[] Key, byte[]? Value)> records, long timestampMs, TransactionalProducer? producer = null)
        {
            var offset = await Inner.AppendAsync(records, timestampMs, producer);
            if (Hold)
            {
                Hold = false;
                Held.TrySetResult();
                await Release.Task;
            }
            return offset;
        }
    }
}
