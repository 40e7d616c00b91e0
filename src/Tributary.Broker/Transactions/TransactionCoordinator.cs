using System.Collections.Concurrent;
using Tributary.Broker.Groups;
using Tributary.Broker.Metadata;
using Tributary.Coordination;
using Tributary.Protocol.Messages;
using Tributary.Storage;

namespace Tributary.Broker.Transactions;

/// <summary>
/// A transactional id as DescribeTransactions, ListTransactions and the CLI report it. <paramref name="Error"/> is set
/// (and the rest left empty) when the id's coordinator shard could not answer: COORDINATOR_LOAD_IN_PROGRESS while it
/// loads or after its load failed, NOT_COORDINATOR when it is not hosted here.
/// </summary>
public sealed record TransactionDescription(
    string TransactionalId, TransactionState State, long ProducerId, short Epoch, int TimeoutMs, long StartTimeMs,
    IReadOnlyList<(string Topic, int Partition)> Partitions, ErrorCode Error = ErrorCode.None);

/// <summary>
/// The transaction coordinator: every transactional id of this broker, its producer id and epoch, and the state of
/// its current transaction.
///
/// The state machine runs on the coordination runtime (<see cref="CoordinatorRuntime{TShard}"/>), one
/// <see cref="TransactionShard"/> per partition of <c>__transaction_state</c>: an id lives in the shard of the
/// partition its hash names (as in Kafka), and each shard has its own event loop, replays its own partition and can be
/// loaded and unloaded on its own, so ids in different partitions never wait for each other. This facade routes each
/// request to its shard; a shard that cannot answer gives the runtime's error (COORDINATOR_LOAD_IN_PROGRESS while
/// loading, NOT_COORDINATOR when not hosted) in the shape of the request's answer.
///
/// Replay-failure policy (the runtime's): a shard whose partition cannot be read is logged, counted
/// (<c>tributary.coordinator.load.failures</c>) and stays unavailable, answering COORDINATOR_LOAD_IN_PROGRESS, until it
/// is loaded again; it never serves the ids it had read so far (that could hand a zombie a valid epoch). A single record
/// that does not decode is skipped and counted, its id keeping its last good state. This replaces the coordinator's
/// own replay, which failed open with partial state.
///
/// What Produce and TxnOffsetCommit read without going through a loop (each producer id's open transaction) is
/// published here, shared by all shards, because they know a producer id and not the transactional id that would name
/// its shard. Offsets sent to a transaction are not kept here: they are the group coordinator's, pending in
/// <c>__consumer_offsets</c> until this coordinator's marker lands beside them (Kafka's design, which works whichever
/// brokers the two coordinators are on).
/// </summary>
public sealed partial class TransactionCoordinator : IAsyncDisposable
{
    private readonly TopicCatalog _topics;
    private readonly Func<int, ICoordinatorLog>? _logsForTests;
    // Published copy of each producer id's open transaction, read by Produce without a loop (KIP-890 verification).
    private readonly ConcurrentDictionary<long, (short Epoch, bool Ongoing, HashSet<(string, int)> Partitions)> _open = new();
    private CoordinatorRuntime<TransactionShard>? _runtime;
    private int _shardCount;
    private ITimer? _producerExpiry;
    private int _expiring;

    public TransactionCoordinator(TopicCatalog topics, GroupCoordinator groups, TransactionSettings settings, ProducerIdManager ids, TimeProvider time, BrokerLog log)
        : this(topics, groups, settings, ids, time, log, logsForTests: null)
    {
    }

    /// <param name="logsForTests">Replaces the partitions of <c>__transaction_state</c> as the shards' logs (tests of replay failures).</param>
    internal TransactionCoordinator(TopicCatalog topics, GroupCoordinator groups, TransactionSettings settings, ProducerIdManager ids, TimeProvider time, BrokerLog log,
        Func<int, ICoordinatorLog>? logsForTests)
    {
        _topics = topics;
        Groups = groups;
        Settings = settings;
        Ids = ids;
        Time = time;
        Log = log;
        _logsForTests = logsForTests;
    }

    public TransactionSettings Settings { get; }

    internal TopicCatalog Topics => _topics;

    internal GroupCoordinator Groups { get; }

    internal ProducerIdManager Ids { get; }

    internal TimeProvider Time { get; }

    internal BrokerLog Log { get; }

    /// <summary>The runtime the shards run on (created by <see cref="Start"/>); tests load and unload shards through it.</summary>
    internal CoordinatorRuntime<TransactionShard> Runtime => _runtime ?? throw new InvalidOperationException("the transaction coordinator has not started");

    /// <summary>True when every hosted shard is loaded.</summary>
    public bool IsLoaded => _runtime?.AllLoaded ?? false;

    /// <summary>Transactions in progress (a metrics gauge).</summary>
    public int OpenTransactionCount => _open.Values.Count(t => t.Ongoing);

    /// <summary>Test fault: marker writes fail, so decided transactions stay in PrepareCommit/PrepareAbort.</summary>
    internal volatile bool FailMarkersForTests;

    /// <summary>
    /// Starts one shard per partition of <c>__transaction_state</c> (as many as the topic has, or
    /// transaction.state.log.num.partitions when it does not exist yet; it is created on the first write).
    /// </summary>
    public void Start()
    {
        if (_runtime is not null) return;
        _shardCount = _topics.Get(TransactionSettings.StateTopic)?.PartitionCount ?? Settings.StatePartitions;
        _shardServing = new int[_shardCount];
        var logFor = _logsForTests ?? (partition => new PartitionCoordinatorLog(
            existing: () => _topics.GetPartition(TransactionSettings.StateTopic, partition),
            create: () => StatePartition(partition),
            replicated: offset => Replication.CommittedWrites.WaitAsync(Replicas, TransactionSettings.StateTopic, partition, offset)));
        _runtime = new CoordinatorRuntime<TransactionShard>("transaction", logFor, context => new TransactionShard(context, this), Time, Log.Coordinator);
        var state = _topics.Get(TransactionSettings.StateTopic);
        for (var p = 0; p < _shardCount; p++)
            if (state is null || state.Partitions[p].Leader == _topics.NodeId) _ = _runtime.Load(p);
        if (_logsForTests is null) Cluster.CoordinatorLeadership.Follow(_topics, TransactionSettings.StateTopic, _runtime, Log);
        var interval = TimeSpan.FromMilliseconds(Settings.AbortCheckIntervalMs);
        _producerExpiry = Time.CreateTimer(_ => ExpireProducers(), null, interval, interval);
    }

    /// <summary>Waits until every shard has finished loading, loaded or failed (for embedding and tests).</summary>
    public Task WaitUntilLoadedAsync() => Runtime.WhenLoadedAsync();

    /// <summary>Unloads the shard of one <c>__transaction_state</c> partition (its log directory went offline).</summary>
    public Task UnloadPartitionAsync(int partition) => Runtime.UnloadAsync(partition);

    public async ValueTask DisposeAsync()
    {
        if (_runtime is null) return;
        _producerExpiry?.Dispose();
        await _runtime.DisposeAsync().ConfigureAwait(false);
        if (InterBroker is { } interBroker) await interBroker.DisposeAsync().ConfigureAwait(false);
        if (VerificationClient is { } verification) await verification.DisposeAsync().ConfigureAwait(false);
    }

    private PartitionLog StatePartition(int partition) =>
        _topics.GetOrCreateInternalPartition(TransactionSettings.StateTopic, _shardCount, new Dictionary<string, string> { ["cleanup.policy"] = "compact" }, partition)
        ?? throw new InvalidOperationException($"{TransactionSettings.StateTopic}-{partition} has no replica on broker {_topics.NodeId}.");

    // ---- requests, routed to the shard of the transactional id ----------------------------------------------------

    /// <summary>Replication, so a write counts once the in-sync replicas hold it (set by the host before Start).</summary>
    public Replication.ReplicaManager? Replicas { get; set; }

    /// <summary>
    /// Reaches the leaders of a transaction's partitions on other brokers (WriteTxnMarkers); set by the host of a
    /// cluster before Start, and owned by this coordinator from then. Without it every marker is appended here.
    /// </summary>
    internal Replication.InterBrokerClient? InterBroker { get; set; }

    private TransactionMarkers? _markers;

    /// <summary>Where the markers of decided transactions are written (the partitions' leaders).</summary>
    internal TransactionMarkers Markers => _markers ??= new TransactionMarkers(_topics, () => Replicas, Groups, InterBroker, Time);

    /// <summary>Creates <c>__transaction_state</c> unless it exists (FindCoordinator, before it names a coordinator).</summary>
    public Task EnsureStateTopicAsync() =>
        _topics.EnsureInternalTopicAsync(TransactionSettings.StateTopic, _shardCount, new Dictionary<string, string> { ["cleanup.policy"] = "compact" });

    /// <summary>The partition of <c>__transaction_state</c> a transactional id lives in, as Kafka picks it.</summary>
    public int PartitionFor(string transactionalId) => ShardOf(transactionalId);

    private int ShardOf(string transactionalId) => TransactionStateRecords.PartitionFor(transactionalId, _shardCount);

    private Task<T> OnShard<T>(string transactionalId, Func<TransactionShard, Task<T>> op, Func<ErrorCode, T> unavailable) =>
        _runtime is { } runtime
            ? runtime.RunExclusiveAsync(ShardOf(transactionalId), op, unavailable)
            : Task.FromResult(unavailable(ErrorCode.CoordinatorNotAvailable));

    /// <summary>
    /// InitProducerId. Without a transactional id: a fresh producer id, epoch 0 (idempotent producers), from no shard.
    /// With one: the id's producer id with its epoch bumped (a new id when the epoch is exhausted), after aborting any
    /// open transaction. KIP-360: a request carrying the producer's current id and epoch is a recovery bump; one carrying
    /// the previous epoch is a retry of the last bump and gets the current epoch again; any other is fenced.
    /// </summary>
    public Task<(ErrorCode Error, long ProducerId, short Epoch)> InitProducerIdAsync(string? transactionalId, int timeoutMs, long producerId, short epoch)
    {
        if (string.IsNullOrEmpty(transactionalId)) return Task.FromResult((ErrorCode.None, Ids.Next(), (short)0));
        if (timeoutMs <= 0 || timeoutMs > Settings.MaxTimeoutMs) return Task.FromResult((ErrorCode.InvalidTransactionTimeout, -1L, (short)-1));
        return OnShard(transactionalId, s => s.InitProducerIdAsync(transactionalId, timeoutMs, producerId, epoch), e => (e, -1L, (short)-1));
    }

    /// <summary>
    /// AddPartitionsToTxn: partitions join the open transaction (opening one when none is). With
    /// <paramref name="verifyOnly"/> (KIP-890) nothing changes and partitions not in the transaction get
    /// TRANSACTION_ABORTABLE... reported as INVALID_TXN_STATE for them.
    /// </summary>
    public Task<(ErrorCode Error, Dictionary<(string Topic, int Partition), ErrorCode> Partitions)> AddPartitionsAsync(
        string transactionalId, long producerId, short epoch, IReadOnlyList<(string Topic, int Partition)> partitions, bool verifyOnly = false) =>
        OnShard(transactionalId, s => s.AddPartitionsAsync(transactionalId, producerId, epoch, partitions, verifyOnly),
            e => (e, partitions.Distinct().ToDictionary(p => p, _ => e)));

    /// <summary>AddOffsetsToTxn: the group's partition of <c>__consumer_offsets</c> joins the transaction (its offsets commit or abort with it).</summary>
    public Task<ErrorCode> AddOffsetsAsync(string transactionalId, long producerId, short epoch, string groupId) =>
        OnShard(transactionalId, s => s.AddOffsetsAsync(transactionalId, producerId, epoch, groupId), e => e);

    /// <summary>
    /// EndTxn: commits or aborts the open transaction; a retry of the finished end is answered as success. With
    /// <paramref name="bumpEpoch"/> (transaction version 2) the end bumps the epoch; the identity to go on with comes back.
    /// </summary>
    public Task<(ErrorCode Error, long ProducerId, short Epoch)> EndTxnAsync(string transactionalId, long producerId, short epoch, bool commit, bool bumpEpoch = false) =>
        OnShard(transactionalId, s => s.EndTxnAsync(transactionalId, producerId, epoch, commit, bumpEpoch), e => (e, -1L, (short)-1));

    /// <summary>
    /// The named ids, once each (unknown ones left out; one whose shard cannot answer comes back with that error), or,
    /// for null, every id of every loaded shard ordered by id (ListTransactions; a shard loading or failed is left out).
    /// </summary>
    public async Task<List<TransactionDescription>> DescribeAsync(IReadOnlyList<string>? transactionalIds)
    {
        if (_runtime is not { } runtime) return [];
        if (transactionalIds is null)
        {
            var all = await runtime.RunOnAllAsync(s => s.DescribeAll()).ConfigureAwait(false);
            return [.. all.SelectMany(d => d).OrderBy(d => d.TransactionalId, StringComparer.Ordinal)];
        }
        var answers = await Task.WhenAll(transactionalIds.Distinct(StringComparer.Ordinal).Select(id =>
            runtime.RunAsync<TransactionDescription?>(ShardOf(id), s => s.Describe(id),
                e => new TransactionDescription(id, TransactionState.Empty, -1, -1, 0, -1, [], e)))).ConfigureAwait(false);
        return [.. answers.OfType<TransactionDescription>()];
    }

    // ---- published state, read from any thread ------------------------------------------------------------------

    /// <summary>
    /// Publishes a shard's change of one id: <paramref name="next"/> replaces <paramref name="previous"/> (either may
    /// be null). Produce and TxnOffsetCommit read this map from other threads: the new state goes in before the old one
    /// is retired, so they see one or the other and never a gap where the transaction does not exist.
    /// </summary>
    internal void Publish(TransactionMetadata? next, TransactionMetadata? previous)
    {
        if (next is not null) _open[next.ProducerId] = (next.Epoch, next.State == TransactionState.Ongoing, [.. next.Partitions]);
        if (previous is not null && (next is null || next.ProducerId != previous.ProducerId)) _open.TryRemove(previous.ProducerId, out _);
    }

    /// <summary>
    /// Lets every partition forget producers idle past producer.id.expiration.ms, every
    /// transaction.abort.timed.out.transaction.cleanup.interval.ms. Broker-wide, so here and not in a shard.
    /// </summary>
    private void ExpireProducers()
    {
        if (Interlocked.Exchange(ref _expiring, 1) == 1) return;
        try
        {
            foreach (var topic in _topics.Topics)
            {
                for (var p = 0; p < topic.PartitionCount; p++)
                {
                    if (_topics.GetPartition(topic.Name, p) is not { } log) continue;
                    log.ProducerIdExpirationMs = Settings.ProducerIdExpirationMs;
                    log.ExpireProducers();
                }
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // On a timer thread: an exception escaping here would end the process.
            Log.Error($"transaction coordinator: expiring producers failed: {e.Message}");
        }
        finally
        {
            Volatile.Write(ref _expiring, 0);
        }
    }
}
