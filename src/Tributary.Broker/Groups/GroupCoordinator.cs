using System.Threading.Channels;
using Tributary.Broker.Metadata;
using Tributary.Protocol.Records;
using Tributary.Storage;

namespace Tributary.Broker.Groups;

/// <summary>
/// The group coordinator: every consumer group of this broker, their membership and their committed offsets.
///
/// One event loop owns all state. Requests, timer expiries and completed log appends are posted to a channel as
/// actions and run one at a time on the loop, so nothing inside needs a lock and the order of events is the order
/// of the channel. Actions never block: a request that must wait (a JoinGroup waiting for the rest of the group, a
/// commit waiting for its append) parks a TaskCompletionSource that a later action completes. Timers come from the
/// injected TimeProvider, so tests can drive session and rebalance timeouts deterministically.
///
/// Durability: offsets and group metadata are records in the compacted internal topic <c>__consumer_offsets</c>, in
/// Kafka's layouts (<see cref="OffsetsTopicRecords"/>), in the partition Kafka would pick for the group. A commit is
/// answered only after its append is acknowledged under the flush policy, and applied to memory only then. Appends
/// are started on the loop, so their order in the log is the order of the decisions. At start the topic is replayed
/// (last record per key wins, a null value deletes) before the coordinator answers; until then group requests get
/// COORDINATOR_LOAD_IN_PROGRESS.
/// </summary>
public sealed partial class GroupCoordinator : IAsyncDisposable
{
    private readonly TopicCatalog _topics;
    private readonly TimeProvider _time;
    private readonly BrokerLog _log;
    private readonly Channel<Action> _actions = Channel.CreateUnbounded<Action>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Dictionary<string, Group> _groups = new(StringComparer.Ordinal);

    /// <summary>Groups known (a metrics gauge: read off the coordinator's loop, so a moment stale at worst).</summary>
    public int GroupCount => _groups.Count;
    private Task? _loop;
    private volatile bool _loaded;

    public GroupCoordinator(TopicCatalog topics, GroupSettings settings, TimeProvider time, BrokerLog log)
    {
        _topics = topics;
        Settings = settings;
        _time = time;
        _log = log;
    }

    public GroupSettings Settings { get; }

    /// <summary>True once the offsets topic has been replayed and the coordinator answers.</summary>
    public bool IsLoaded => _loaded;

    /// <summary>Starts the loop and the replay of <c>__consumer_offsets</c>; returns at once.</summary>
    public void Start()
    {
        _loop = Task.Run(RunLoopAsync);
        _ = Task.Run(() =>
        {
            try
            {
                var loaded = Replay();
                Post(() =>
                {
                    foreach (var group in loaded) Install(group);
                    _loaded = true;
                    ScheduleOffsetExpiry();
                });
            }
            catch (Exception e)
            {
                _log.Error($"group coordinator: replay of {GroupSettings.OffsetsTopic} failed: {e.Message}");
            }
        });
    }

    /// <summary>Waits until the replay at start has finished (for embedding and tests).</summary>
    public async Task WaitUntilLoadedAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!_loaded)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("the group coordinator did not load in time");
            await Task.Delay(10).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_loop is null) return;
        Post(() =>
        {
            foreach (var group in _groups.Values) CancelTimers(group);
            _expiryTimer?.Dispose();
        });
        _actions.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
        _loop = null;
    }

    private async Task RunLoopAsync()
    {
        var reader = _actions.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (reader.TryRead(out var action))
            {
                try
                {
                    action();
                }
                catch (Exception e)
                {
                    _log.Error($"group coordinator: {e}");
                }
            }
        }
    }

    private void Post(Action action)
    {
        if (!_actions.Writer.TryWrite(action)) _log.Debug("group coordinator: action dropped after stop");
    }

    /// <summary>Runs <paramref name="work"/> on the loop; its task may be completed by a later action.</summary>
    private async Task<T> Run<T>(Func<Task<T>> work)
    {
        var started = new TaskCompletionSource<Task<T>>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_actions.Writer.TryWrite(() =>
        {
            try
            {
                started.SetResult(work());
            }
            catch (Exception e)
            {
                started.SetException(e);
            }
        }))
        {
            throw new ObjectDisposedException(nameof(GroupCoordinator));
        }
        return await (await started.Task.ConfigureAwait(false)).ConfigureAwait(false);
    }

    private Task<T> Run<T>(Func<T> work) => Run(() => Task.FromResult(work()));

    private static TaskCompletionSource<T> NewWaiter<T>() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private Group GetOrCreate(string groupId)
    {
        if (!_groups.TryGetValue(groupId, out var group))
        {
            group = new Group(groupId) { StateTimestamp = NowMs };
            _groups[groupId] = group;
        }
        return group;
    }

    private static void CancelTimers(Group group)
    {
        group.JoinTimer?.Dispose();
        group.JoinTimer = null;
        foreach (var m in group.Members.Values) m.SessionTimer?.Dispose();
        group.Consumer?.CancelTimers();
    }

    // ---- persistence -------------------------------------------------------------------------------------------

    /// <summary>The offsets topic partition of a group, creating the topic on first use.</summary>
    private PartitionLog OffsetsPartition(string groupId)
    {
        var topic = _topics.Get(GroupSettings.OffsetsTopic)
            ?? _topics.Create(GroupSettings.OffsetsTopic, Settings.OffsetsTopicPartitions,
                new Dictionary<string, string> { ["cleanup.policy"] = "compact", ["segment.bytes"] = "104857600" }, isInternal: true)
            ?? _topics.Get(GroupSettings.OffsetsTopic)!;
        var partition = OffsetsTopicRecords.PartitionFor(groupId, topic.PartitionCount);
        return _topics.GetPartition(topic.Name, partition) ?? throw new InvalidOperationException($"{topic.Name}-{partition} has no log");
    }

    /// <summary>
    /// Appends records for one group (called on the loop, so appends keep the loop's order) and posts
    /// <paramref name="completed"/> back to the loop with the outcome: null on success, else the failure.
    /// </summary>
    private void Append(string groupId, IReadOnlyList<(byte[] Key, byte[]? Value)> records, Action<Exception?> completed)
    {
        if (records.Count == 0)
        {
            completed(null);
            return;
        }
        PartitionLog? partition = null;
        Task<AppendResult> append;
        try
        {
            var builder = new RecordBatchBuilder();
            var now = NowMs;
            foreach (var (key, value) in records) builder.Add(now, key, value);
            partition = OffsetsPartition(groupId);
            append = partition.AppendAsync(builder.Build()).AsTask();
        }
        catch (Exception e)
        {
            append = Task.FromException<AppendResult>(e);
        }
        // Appends that share an fsync complete together, each on its own pool thread: post their completions in log
        // order, or a later commit applied before an earlier one would leave the earlier offset in memory.
        var chain = partition ?? (object)this;
        var previous = _completions.GetValueOrDefault(chain, Task.CompletedTask);
        _completions[chain] = PostInOrderAsync(previous, append, groupId, completed);
    }

    /// <summary>The last completion posted (or waiting to be) per offsets partition; touched only on the loop.</summary>
    private readonly Dictionary<object, Task> _completions = [];

    private async Task PostInOrderAsync(Task previous, Task<AppendResult> append, string groupId, Action<Exception?> completed)
    {
        await previous.ConfigureAwait(false);
        Exception? error = null;
        try
        {
            await append.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            error = e;
            _log.Error($"group coordinator: append for group {groupId} failed: {e.Message}");
        }
        Post(() => completed(error));
    }

    private (byte[] Key, byte[]? Value) GroupMetadataRecord(Group group) =>
        (OffsetsTopicRecords.GroupMetadataKey(group.Id), OffsetsTopicRecords.GroupMetadataValue(new StoredGroup(
            group.ProtocolType ?? "", group.Generation, group.ProtocolName, group.Leader, group.StateTimestamp,
            [.. group.Members.Values.Select(m => new StoredMember(m.MemberId, m.InstanceId, m.ClientId, m.ClientHost,
                m.RebalanceTimeoutMs, m.SessionTimeoutMs, m.MetadataFor(group.ProtocolName) ?? [], m.Assignment))])));

    /// <summary>Stores the group's metadata without waiting (used where Kafka would not hold a response for it).</summary>
    private void PersistGroup(Group group) => Append(group.Id, [GroupMetadataRecord(group)], _ => { });

    /// <summary>What replay has read for one group so far: last value per key, tombstoned keys removed.</summary>
    private sealed class ReplayedGroup
    {
        public Dictionary<(string, int), CommittedOffset> Offsets { get; } = [];
        public StoredGroup? Classic { get; set; }
        public Dictionary<(short Type, string Member), ReadOnlyMemory<byte>> ConsumerRecords { get; } = [];
    }

    /// <summary>Reads every partition of the offsets topic into groups (off the loop; nothing else runs yet).</summary>
    private List<Group> Replay()
    {
        var topic = _topics.Get(GroupSettings.OffsetsTopic);
        var groups = new Dictionary<string, ReplayedGroup>(StringComparer.Ordinal);
        if (topic is null) return [];
        for (var p = 0; p < topic.PartitionCount; p++)
        {
            var log = _topics.GetPartition(topic.Name, p);
            if (log is null) continue;
            var partition = p;
            foreach (var record in log.ReplayRecords(undecodable: (offset, e) => ReportUndecodable(partition, offset, e)))
            {
                try
                {
                    ReplayRecord(record);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // One record the coordinator cannot read must not keep every group "loading" for ever: it is
                    // skipped (its key keeps its last good value), as Kafka's loader skips what it cannot decode.
                    ReportUndecodable(partition, record.Offset, e);
                }
            }
        }
        // Throws if the record cannot be decoded; a group entry it created is dropped below when it holds nothing.
        void ReplayRecord(DecodedRecord record)
        {
            if (record.Key is not { } key || OffsetsTopicRecords.ReadKey(key.Span) is not { } parsed) return;
            if (!groups.TryGetValue(parsed.Group, out var g)) groups[parsed.Group] = g = new ReplayedGroup();
            switch (parsed)
            {
                case OffsetsTopicRecords.OffsetKey k when record.Value is { } v:
                    g.Offsets[(k.Topic, k.Partition)] = OffsetsTopicRecords.ReadOffsetValue(v.Span);
                    break;
                case OffsetsTopicRecords.OffsetKey k:
                    g.Offsets.Remove((k.Topic, k.Partition));
                    break;
                case OffsetsTopicRecords.GroupKey when record.Value is { } v:
                    g.Classic = OffsetsTopicRecords.ReadGroupValue(v.Span);
                    break;
                case OffsetsTopicRecords.GroupKey:
                    // Tombstone: the group was deleted; its offsets were tombstoned before it.
                    g.Classic = null;
                    g.Offsets.Clear();
                    break;
                case OffsetsTopicRecords.ConsumerKey k when record.Value is { } v:
                    g.ConsumerRecords[(k.Type, k.MemberId ?? "")] = v;
                    break;
                case OffsetsTopicRecords.ConsumerKey k:
                    g.ConsumerRecords.Remove((k.Type, k.MemberId ?? ""));
                    break;
            }
        }

        var result = new List<Group>();
        foreach (var (id, replayed) in groups)
        {
            ConsumerGroup? consumer = null;
            try
            {
                consumer = RebuildConsumerGroup(replayed.ConsumerRecords);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Its members rejoin as after a session timeout; the group's committed offsets still load.
                _log.Error($"group coordinator: skipped the undecodable consumer-protocol state of group {id}: {e.GetType().Name}: {e.Message}");
            }
            var metadata = replayed.Classic;
            if (replayed.Offsets.Count == 0 && metadata is null && consumer is null) continue;
            var group = new Group(id) { Consumer = consumer };
            foreach (var (key, value) in replayed.Offsets) group.Offsets[key] = value;
            if (metadata is not null)
            {
                group.ProtocolType = metadata.ProtocolType.Length > 0 ? metadata.ProtocolType : null;
                group.Generation = metadata.Generation;
                group.ProtocolName = metadata.Protocol;
                group.Leader = metadata.Leader;
                group.StateTimestamp = metadata.StateTimestamp;
                foreach (var m in metadata.Members)
                {
                    var member = new ClassicMember(m.MemberId, m.GroupInstanceId, m.ClientId, m.ClientHost)
                    {
                        SessionTimeoutMs = m.SessionTimeoutMs,
                        RebalanceTimeoutMs = m.RebalanceTimeoutMs,
                        Protocols = [(metadata.Protocol ?? "", m.Subscription)],
                        Assignment = m.Assignment,
                    };
                    group.Members[m.MemberId] = member;
                    if (m.GroupInstanceId is { } instance) group.StaticMembers[instance] = m.MemberId;
                }
                group.State = group.Members.Count > 0 ? GroupState.Stable : GroupState.Empty;
            }
            result.Add(group);
        }
        return result;
    }

    private void ReportUndecodable(int partition, long offset, Exception e) =>
        _log.Error($"group coordinator: skipped an undecodable record of {GroupSettings.OffsetsTopic}-{partition} at offset {offset}: {e.GetType().Name}: {e.Message}");

    /// <summary>Puts a replayed group in place; its members get a fresh session timeout to come back.</summary>
    private void Install(Group group)
    {
        _groups[group.Id] = group;
        foreach (var member in group.Members.Values) ScheduleSessionExpiry(group, member);
        if (group.Consumer is { } consumer)
        {
            consumer.Persisted = ConsumerGroupRecordValues(group.Id, consumer);
            foreach (var member in consumer.Members.Values) ScheduleConsumerSessionExpiry(group, consumer, member);
        }
    }
}
