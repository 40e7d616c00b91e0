using System.Collections.Concurrent;
using Tributary.Broker.Metadata;
using Tributary.Coordination;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Groups;

/// <summary>
/// The group coordinator: every consumer group of this broker, their membership and their committed offsets.
///
/// Groups live in the partition of <c>__consumer_offsets</c> Kafka would pick for them, and each partition is a shard
/// (<see cref="GroupShard"/>) on the coordination runtime: its own event loop, its state rebuilt by replaying the
/// partition, loadable and unloadable as this broker gains or loses the partition. This class routes each request to
/// its group's shard and answers for a shard that is not here (NOT_COORDINATOR) or not ready
/// (COORDINATOR_LOAD_IN_PROGRESS, also while a failed load keeps it unavailable). Offsets and group metadata are
/// records in Kafka's layouts (<see cref="OffsetsTopicRecords"/>); a commit is answered only after its append is
/// acknowledged under the flush policy, and applied to memory only then.
/// </summary>
public sealed class GroupCoordinator : IAsyncDisposable
{
    private readonly TopicCatalog _topics;
    private readonly TimeProvider _time;
    private readonly BrokerLog _log;
    private readonly Func<int, ICoordinatorLog>? _logsForTests;
    private readonly ConcurrentDictionary<int, GroupShard> _shards = new();
    private CoordinatorRuntime<GroupShard>? _runtime;
    private int _partitionCount;

    public GroupCoordinator(TopicCatalog topics, GroupSettings settings, TimeProvider time, BrokerLog log)
        : this(topics, settings, time, log, null)
    {
    }

    /// <param name="logsForTests">Replaces the partitions of <c>__consumer_offsets</c> (fault tests).</param>
    internal GroupCoordinator(TopicCatalog topics, GroupSettings settings, TimeProvider time, BrokerLog log, Func<int, ICoordinatorLog>? logsForTests)
    {
        _topics = topics;
        Settings = settings;
        _time = time;
        _log = log;
        _logsForTests = logsForTests;
        // Known before Start: the transaction coordinator names a group's partition (AddOffsetsToTxn) from its first replay on.
        _partitionCount = _topics.Get(GroupSettings.OffsetsTopic)?.PartitionCount ?? Settings.OffsetsTopicPartitions;
    }

    public GroupSettings Settings { get; }

    /// <summary>The runtime the shards run on (tests load and unload shards through it).</summary>
    internal CoordinatorRuntime<GroupShard> Runtime => _runtime ?? throw new InvalidOperationException("the group coordinator is not started");

    /// <summary>Groups known (a metrics gauge: read off the loops, so a moment stale at worst).</summary>
    public int GroupCount => _shards.Values.Sum(s => s.GroupCount);

    /// <summary>True once every partition hosted here has been replayed and answers.</summary>
    public bool IsLoaded => _runtime?.AllLoaded ?? false;

    /// <summary>The partition (shard) of a group, as Kafka picks it.</summary>
    public int PartitionFor(string groupId) => OffsetsTopicRecords.PartitionFor(groupId, _partitionCount);

    /// <summary>Starts a shard for every partition of <c>__consumer_offsets</c>; each replays its partition. Returns at once.</summary>
    public void Start()
    {
        _partitionCount = _topics.Get(GroupSettings.OffsetsTopic)?.PartitionCount ?? Settings.OffsetsTopicPartitions;
        _runtime = new CoordinatorRuntime<GroupShard>("group", _logsForTests ?? OffsetsLog, NewShard, _time, _log.Coordinator);
        var offsets = _topics.Get(GroupSettings.OffsetsTopic);
        for (var p = 0; p < _partitionCount; p++)
            if (offsets is null || offsets.Partitions[p].Leader == _topics.NodeId) _runtime.Load(p);
        if (_logsForTests is null) Cluster.CoordinatorLeadership.Follow(_topics, GroupSettings.OffsetsTopic, _runtime, _log);
    }

    private GroupShard NewShard(CoordinatorContext context)
    {
        var shard = new GroupShard(this, context, _topics, _log);
        _shards[context.Partition] = shard;
        return shard;
    }

    /// <summary>Creates <c>__consumer_offsets</c> unless it exists (FindCoordinator, before it names a coordinator).</summary>
    public Task EnsureOffsetsTopicAsync() => _topics.EnsureInternalTopicAsync(GroupSettings.OffsetsTopic, _partitionCount, OffsetsTopicConfigs);

    private static readonly Dictionary<string, string> OffsetsTopicConfigs = new() { ["cleanup.policy"] = "compact", ["segment.bytes"] = "104857600" };

    /// <summary>A partition of the offsets topic; the topic is created on the first append, as Kafka creates it on first use.</summary>
    private PartitionCoordinatorLog OffsetsLog(int partition) => new(
        () => _topics.GetPartition(GroupSettings.OffsetsTopic, partition),
        () => _topics.GetOrCreateInternalPartition(GroupSettings.OffsetsTopic, _partitionCount, OffsetsTopicConfigs, partition)
            ?? throw new InvalidOperationException($"{GroupSettings.OffsetsTopic}-{partition} has no replica on broker {_topics.NodeId}."),
        offset => Replication.CommittedWrites.WaitAsync(Replicas, GroupSettings.OffsetsTopic, partition, offset));

    /// <summary>Replication, so a write counts once the in-sync replicas hold it (set by the host before Start).</summary>
    public Replication.ReplicaManager? Replicas { get; set; }

    /// <summary>Waits until every shard has finished loading (for embedding and tests).</summary>
    public async Task WaitUntilLoadedAsync(TimeSpan timeout)
    {
        try
        {
            await Runtime.WhenLoadedAsync().WaitAsync(timeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException("the group coordinator did not load in time");
        }
    }

    /// <summary>
    /// Unloads the shard of one <c>__consumer_offsets</c> partition (its log directory went offline): its groups answer
    /// NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE instead of failing on the log.
    /// </summary>
    public Task UnloadPartitionAsync(int partition) => Runtime.UnloadAsync(partition);

    /// <summary>Unloads every shard: parked requests are answered, timers cancelled, loops ended.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_runtime is { } runtime) await runtime.DisposeAsync().ConfigureAwait(false);
    }

    private Task<T> Run<T>(string groupId, Func<GroupShard, Task<T>> op, Func<ErrorCode, T> unavailable) =>
        Runtime.RunAsync(PartitionFor(groupId), op, unavailable);

    private Task<T> Run<T>(string groupId, Func<GroupShard, T> op, Func<ErrorCode, T> unavailable) =>
        Runtime.RunAsync(PartitionFor(groupId), op, unavailable);

    // ---- classic groups ------------------------------------------------------------------------------------------

    public Task<JoinGroupResponse> JoinGroupAsync(JoinGroupRequest request, short version, ClientInfo client) =>
        Run(request.GroupId, s => s.JoinGroup(request, version, client), e => GroupShard.JoinError(e, request.MemberId));

    public Task<SyncGroupResponse> SyncGroupAsync(SyncGroupRequest request) =>
        Run(request.GroupId, s => s.SyncGroup(request), e => new SyncGroupResponse { ErrorCode = (short)e });

    public Task<ErrorCode> HeartbeatAsync(string groupId, string memberId, string? instanceId, int generation) =>
        Run(groupId, s => s.Heartbeat(groupId, memberId, instanceId, generation), e => e);

    /// <summary>Removes members; one error per member (UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID) or a group-level error.</summary>
    public Task<(ErrorCode GroupError, List<ErrorCode> MemberErrors)> LeaveGroupAsync(string groupId, IReadOnlyList<(string MemberId, string? InstanceId)> members) =>
        Run(groupId, s => s.LeaveGroup(groupId, members), e => (e, new List<ErrorCode>()));

    // ---- consumer groups (KIP-848) -------------------------------------------------------------------------------

    public Task<ConsumerGroupHeartbeatResponse> ConsumerHeartbeatAsync(ConsumerHeartbeat heartbeat) =>
        Run(heartbeat.GroupId, s => s.ConsumerHeartbeat(heartbeat), e => new ConsumerGroupHeartbeatResponse { ErrorCode = (short)e });

    /// <summary>ConsumerGroupDescribe: GROUP_ID_NOT_FOUND when the group does not exist or is not a consumer-protocol group.</summary>
    public Task<ConsumerGroupDescribeResponse.DescribedGroup> DescribeConsumerGroupAsync(string groupId) =>
        Run(groupId, s => s.DescribeConsumerGroup(groupId), e => new ConsumerGroupDescribeResponse.DescribedGroup { GroupId = groupId, ErrorCode = (short)e });

    // ---- offsets -------------------------------------------------------------------------------------------------

    public Task<(ErrorCode GroupError, List<ErrorCode> PartitionErrors)> CommitOffsetsAsync(
        string groupId, int generationOrEpoch, string memberId, string? instanceId, IReadOnlyList<OffsetToCommit> offsets) =>
        Run(groupId, s => s.CommitOffsets(groupId, generationOrEpoch, memberId, instanceId, offsets), e => (e, new List<ErrorCode>()));

    /// <summary>Committed offsets of a group: the partitions asked for, or all when <paramref name="partitions"/> is null
    /// (see <see cref="GroupShard.FetchOffsets"/>).</summary>
    public Task<(ErrorCode Error, List<(string Topic, int Partition, CommittedOffset? Offset, bool Unstable)> Offsets)> FetchOffsetsAsync(
        string groupId, IReadOnlyList<(string Topic, int Partition)>? partitions) =>
        Run(groupId, s => s.FetchOffsets(groupId, partitions), e => (e, new List<(string, int, CommittedOffset?, bool)>()));

    public Task<(ErrorCode GroupError, List<ErrorCode> PartitionErrors)> DeleteOffsetsAsync(string groupId, IReadOnlyList<(string Topic, int Partition)> partitions) =>
        Run(groupId, s => s.DeleteOffsets(groupId, partitions), e => (e, new List<ErrorCode>()));

    /// <summary>Runs one expiry pass on every shard now; returns the number of offsets expired (for tests and tools).</summary>
    public async Task<int> ExpireOffsetsNowAsync() => (await Runtime.RunOnAllAsync(s => s.ExpireOffsets()).ConfigureAwait(false)).Sum();

    // ---- admin ---------------------------------------------------------------------------------------------------

    /// <summary>A group's description; null when the group is unknown (reported as Dead, as Kafka does).</summary>
    public Task<(ErrorCode Error, GroupDescription? Group)> DescribeAsync(string groupId) =>
        Run(groupId, s => (ErrorCode.None, s.Describe(groupId)), e => (e, (GroupDescription?)null));

    /// <summary>The groups of every loaded shard, by id.</summary>
    public async Task<List<GroupListing>> ListAsync() =>
        [.. (await Runtime.RunOnAllAsync(s => s.List()).ConfigureAwait(false)).SelectMany(g => g).OrderBy(g => g.GroupId, StringComparer.Ordinal)];

    public Task<ErrorCode> DeleteGroupAsync(string groupId) => Run(groupId, s => s.DeleteGroup(groupId), e => e);

    // ---- transactional offsets -----------------------------------------------------------------------------------

    /// <summary>
    /// TxnOffsetCommit (see <see cref="GroupShard"/>'s transactional offsets): checked, appended to the group's
    /// partition as the producer's transactional batch, and pending until the transaction's marker lands there.
    /// </summary>
    public Task<(ErrorCode GroupError, List<ErrorCode> PartitionErrors)> CommitTransactionalOffsetsAsync(TransactionalCommit commit) =>
        Run(commit.GroupId, s => s.CommitTransactionalOffsets(commit), e => (e, new List<ErrorCode>()));

    /// <summary>
    /// A transaction marker is durable at <paramref name="position"/> in <c>__consumer_offsets</c>-<paramref name="partition"/>
    /// (appended by this broker, its leader): the shard installs or drops that producer's pending offsets, as Kafka's
    /// <c>scheduleHandleTxnCompletion</c>. A shard still loading gets it once loaded (its replay may have read the log
    /// before the marker); one not hosted here does not need it, as whoever loads it replays the marker. Completes when
    /// the shard has applied it, so the marker's writer answers only once the offsets are visible.
    /// </summary>
    public async Task CompleteTransactionAsync(int partition, long producerId, short producerEpoch, bool commit, long position)
    {
        if (_runtime is not { } runtime) return;
        var outcome = commit ? TransactionOutcome.Commit : TransactionOutcome.Abort;
        try
        {
            await runtime.RunWhenLoadedAsync(partition, s => s.OnTransactionMarker(producerId, producerEpoch, outcome, position)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The marker is durable whatever happens here; the next load of the partition replays it.
            _log.Error($"group coordinator, partition {partition}: applying the {outcome} marker of producer {producerId} failed: {e.Message}");
        }
    }
}
