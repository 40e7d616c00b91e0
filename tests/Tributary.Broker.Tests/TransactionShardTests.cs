using System.Globalization;
using Tributary.Broker.Groups;
using Tributary.Broker.Metadata;
using Tributary.Broker.Transactions;
using Tributary.Coordination;
using Tributary.Storage;
using ErrorCode = Tributary.Protocol.Messages.ErrorCode;

namespace Tributary.Broker.Tests;

/// <summary>
/// The transaction coordinator on the coordination runtime, driven directly on a fake clock: one shard per partition of
/// __transaction_state, each loaded and unloaded on its own, the replay-failure policy, and the per-shard timeout check.
/// </summary>
public sealed class TransactionShardTests : IAsyncLifetime
{
    private const int StatePartitions = 3;
    private const int CheckIntervalMs = 1_000;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);
    private static readonly BrokerLog Quiet = new(LogLevel.None);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "tributary-txn-shards-" + Guid.NewGuid().ToString("N"));
    private readonly FakeTimeProvider _clock = FakeTime.Create();
    private readonly BrokerSettings _settings = new(new Dictionary<string, string>
    {
        ["transaction.state.log.num.partitions"] = StatePartitions.ToString(CultureInfo.InvariantCulture),
        ["transaction.abort.timed.out.transaction.cleanup.interval.ms"] = CheckIntervalMs.ToString(CultureInfo.InvariantCulture),
    });
    private LogManager _logs = null!;
    private TopicCatalog _topics = null!;
    private TransactionCoordinator? _coordinator;

    public Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        _logs = new LogManager(_dir, TimeProvider.System);
        _topics = LocalCatalog.Open(_dir, _logs, _settings);
        _topics.Create("t", 1, new Dictionary<string, string>());
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        if (_coordinator is not null) await _coordinator.DisposeAsync();
        await _logs.StopAsync();
        _logs.Dispose();
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private async Task<TransactionCoordinator> StartAsync(Func<int, ICoordinatorLog>? logsForTests = null)
    {
        // The group coordinator is never started: these transactions stage no offsets.
        var groups = new GroupCoordinator(_topics, GroupSettings.From(_settings), _clock, Quiet);
        _coordinator = new TransactionCoordinator(_topics, groups, TransactionSettings.From(_settings), new ProducerIdManager(_dir), _clock, Quiet, logsForTests);
        _coordinator.Start();
        await _coordinator.WaitUntilLoadedAsync().WaitAsync(Wait);
        return _coordinator;
    }

    private static int ShardOf(string transactionalId) => TransactionStateRecords.PartitionFor(transactionalId, StatePartitions);

    /// <summary>A transactional id whose shard is not <paramref name="partition"/>.</summary>
    private static string IdOutside(int partition) =>
        Enumerable.Range(0, 100).Select(i => $"txn-elsewhere-{i}").First(id => ShardOf(id) != partition);

    [Fact]
    public async Task Unloading_a_shard_makes_its_ids_answer_not_coordinator_and_loading_it_again_replays_them()
    {
        const string id = "txn-moving";
        var shard = ShardOf(id);
        var coordinator = await StartAsync();
        var (error, producerId, _) = await coordinator.InitProducerIdAsync(id, 60_000, -1, -1);
        Assert.Equal(ErrorCode.None, error);
        var (_, _, epoch) = await coordinator.InitProducerIdAsync(id, 60_000, -1, -1);
        Assert.Equal(1, epoch);
        Assert.Equal(ErrorCode.None, (await coordinator.AddPartitionsAsync(id, producerId, epoch, [("t", 0)])).Error);
        Assert.Equal(1, coordinator.OpenTransactionCount);

        await coordinator.Runtime.UnloadAsync(shard);

        Assert.Equal((ErrorCode.NotCoordinator, -1L, (short)-1), await coordinator.InitProducerIdAsync(id, 60_000, -1, -1));
        Assert.Equal(ErrorCode.NotCoordinator, (await coordinator.EndTxnAsync(id, producerId, epoch, commit: true)).Error);
        Assert.Equal(ErrorCode.NotCoordinator, Assert.Single(await coordinator.DescribeAsync([id])).Error);
        Assert.Equal(0, coordinator.OpenTransactionCount); // the shard's published state left with it
        Assert.Equal(ErrorCode.None, (await coordinator.InitProducerIdAsync(IdOutside(shard), 60_000, -1, -1)).Error);

        Assert.Equal(ShardStatus.Loaded, await coordinator.Runtime.Load(shard));

        var described = Assert.Single(await coordinator.DescribeAsync([id]));
        Assert.Equal((ErrorCode.None, producerId, epoch, TransactionState.Ongoing), (described.Error, described.ProducerId, described.Epoch, described.State));
        Assert.Equal([("t", 0)], described.Partitions);
        Assert.Equal(1, coordinator.OpenTransactionCount);
        Assert.Equal(ErrorCode.InvalidProducerEpoch, coordinator.VerifyTransactionalWrite(producerId, (short)(epoch - 1), "t", 0));
        Assert.Equal(ErrorCode.None, coordinator.VerifyTransactionalWrite(producerId, epoch, "t", 0));
        Assert.Equal(ErrorCode.None, (await coordinator.EndTxnAsync(id, producerId, epoch, commit: true)).Error);
        Assert.Equal(TransactionState.CompleteCommit, Assert.Single(await coordinator.DescribeAsync([id])).State);
    }

    /// <summary>
    /// The replay-failure policy: a shard whose partition cannot be read (here after one good record) is logged and
    /// counted and stays unavailable, answering COORDINATOR_LOAD_IN_PROGRESS for its ids, while the other shards serve.
    /// This replaces the coordinator's old fail-open replay, which logged the error and then served the ids read before
    /// it: a partial state that could answer a fenced producer with a valid epoch.
    /// </summary>
    [Fact]
    public async Task A_shard_whose_replay_fails_answers_load_in_progress_while_the_other_shards_serve()
    {
        const string broken = "txn-unreadable";
        var bad = ShardOf(broken);
        var stored = new MemoryCoordinatorLog();
        var readBeforeFailure = new TransactionMetadata(broken) { ProducerId = 7, Epoch = 3, TimeoutMs = 60_000, State = TransactionState.Empty };
        await stored.AppendAsync([(TransactionStateRecords.Key(broken), TransactionStateRecords.Value(readBeforeFailure))], 0);
        var logs = Enumerable.Range(0, StatePartitions)
            .Select(p => p == bad ? new UnreadableLog(stored) : (ICoordinatorLog)new MemoryCoordinatorLog()).ToArray();

        var coordinator = await StartAsync(p => logs[p]);

        Assert.Equal(ShardStatus.Failed, coordinator.Runtime.StatusOf(bad));
        Assert.Equal(1, coordinator.Runtime.LoadFailureCount);
        Assert.False(coordinator.IsLoaded);
        Assert.Equal((ErrorCode.CoordinatorLoadInProgress, -1L, (short)-1), await coordinator.InitProducerIdAsync(broken, 60_000, 7, 3));
        Assert.Equal(ErrorCode.CoordinatorLoadInProgress, (await coordinator.EndTxnAsync(broken, 7, 3, commit: false)).Error);
        Assert.Equal(ErrorCode.CoordinatorLoadInProgress, Assert.Single(await coordinator.DescribeAsync([broken])).Error);
        Assert.DoesNotContain(await coordinator.DescribeAsync(null), d => d.TransactionalId == broken);

        var good = IdOutside(bad);
        var (error, producerId, epoch) = await coordinator.InitProducerIdAsync(good, 60_000, -1, -1);
        Assert.Equal(ErrorCode.None, error);
        Assert.Equal(ErrorCode.None, (await coordinator.AddPartitionsAsync(good, producerId, epoch, [("t", 0)])).Error);
        Assert.Equal(ErrorCode.None, (await coordinator.EndTxnAsync(good, producerId, epoch, commit: true)).Error);
        Assert.Equal(1, coordinator.Runtime.LoadFailureCount);
    }

    [Fact]
    public async Task Each_shard_aborts_its_timed_out_transactions_on_the_injected_clock()
    {
        const string id = "txn-slow";
        var coordinator = await StartAsync();
        var (_, producerId, epoch) = await coordinator.InitProducerIdAsync(id, 5_000, -1, -1);
        Assert.Equal(ErrorCode.None, (await coordinator.AddPartitionsAsync(id, producerId, epoch, [("t", 0)])).Error);

        _clock.Advance(5_000); // open exactly as long as its timeout: not yet past it
        Assert.Equal(TransactionState.Ongoing, Assert.Single(await coordinator.DescribeAsync([id])).State);
        _clock.Advance(CheckIntervalMs);

        var aborted = await Eventually.ValueAsync(async () => Assert.Single(await coordinator.DescribeAsync([id])),
            d => d.State == TransactionState.CompleteAbort, Wait, "the timed-out transaction to be aborted", d => d.State);
        Assert.Equal(epoch + 1, aborted.Epoch); // fenced: the producer's epoch was bumped
        Assert.Equal(ErrorCode.ProducerFenced, (await coordinator.EndTxnAsync(id, producerId, epoch, commit: true)).Error);
    }

    /// <summary>Yields what it holds, then fails as a disk read error would, part way through the replay.</summary>
    private sealed class UnreadableLog(MemoryCoordinatorLog stored) : ICoordinatorLog
    {
        public IEnumerable<CoordinatorRecord> Read(Action<long, Exception> undecodable)
        {
            foreach (var record in stored.Read(undecodable)) yield return record;
            throw new IOException("disk read error");
        }

        public Task<long> AppendAsync(IReadOnlyList<(byte[] Key, byte[]? Value)> records, long timestampMs, TransactionalProducer? producer) =>
            stored.AppendAsync(records, timestampMs, producer);
    }
}
