using Tributary.Broker.Metadata;
using Tributary.Coordination;
using Tributary.Protocol.Messages;

namespace Tributary.Broker.Groups;

/// <summary>
/// The groups of one partition of <c>__consumer_offsets</c>: their membership and committed offsets, as a state machine
/// on the coordination runtime. Every member runs on the shard's loop, so nothing inside needs a lock and the order of
/// events is the order of the loop. Operations never block: a request that must wait (a JoinGroup waiting for the rest
/// of its group, a commit waiting for its append) parks a completion that a later event completes. Timers run on the
/// injected clock. A change is appended first and applied when the append is durable; replay (last record per key
/// wins, a null value deletes) rebuilds the same state after a restart or when this broker takes the partition over.
/// Offsets written by TxnOffsetCommit are the exception: they wait, pending, for their transaction's marker
/// (GroupShard.Transactions.cs).
/// </summary>
internal sealed partial class GroupShard : ICoordinatorShard
{
    private readonly GroupCoordinator _coordinator;
    private readonly CoordinatorContext _context;
    private readonly TopicCatalog _topics;
    private readonly BrokerLog _log;
    private readonly Dictionary<string, Group> _groups = new(StringComparer.Ordinal);
    private Dictionary<string, ReplayedGroup>? _replayed = new(StringComparer.Ordinal);

    public GroupShard(GroupCoordinator coordinator, CoordinatorContext context, TopicCatalog topics, BrokerLog log)
    {
        _coordinator = coordinator;
        _context = context;
        _topics = topics;
        _log = log;
    }

    private GroupSettings Settings => _coordinator.Settings;

    /// <summary>Groups in this shard (a metrics gauge: read off the loop, so a moment stale at worst).</summary>
    public int GroupCount => _groups.Count;

    private long NowMs => _context.NowMs;

    private static TaskCompletionSource<T> NewWaiter<T>() => new(TaskCreationOptions.RunContinuationsAsynchronously);

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

    // ---- load and unload -----------------------------------------------------------------------------------------

    /// <summary>Reads one record of the partition into <see cref="_replayed"/>; throws if it cannot be decoded.</summary>
    public void Replay(CoordinatorRecord record)
    {
        var groups = _replayed!;
        if (record.Key is not { } key || OffsetsTopicRecords.ReadKey(key) is not { } parsed) return;
        if (!groups.TryGetValue(parsed.Group, out var g)) groups[parsed.Group] = g = new ReplayedGroup();
        switch (parsed)
        {
            case OffsetsTopicRecords.OffsetKey k when record.Value is { } v && record.ProducerId >= 0:
                // TxnOffsetCommit: pending until the producer's marker further on (GroupShard.Transactions.cs).
                AddPending(record.ProducerId, record.ProducerEpoch, (k.Group, k.Topic, k.Partition), OffsetsTopicRecords.ReadOffsetValue(v), record.Offset);
                break;
            case OffsetsTopicRecords.OffsetKey k when record.Value is { } v:
                g.Offsets[(k.Topic, k.Partition)] = OffsetsTopicRecords.ReadOffsetValue(v);
                g.Positions[(k.Topic, k.Partition)] = record.Offset;
                break;
            case OffsetsTopicRecords.OffsetKey k:
                g.Offsets.Remove((k.Topic, k.Partition));
                DropPending(k.Group, (k.Topic, k.Partition), before: record.Offset);
                break;
            case OffsetsTopicRecords.GroupKey when record.Value is { } v:
                g.Classic = OffsetsTopicRecords.ReadGroupValue(v);
                break;
            case OffsetsTopicRecords.GroupKey:
                // Tombstone: the group was deleted; its offsets were tombstoned before it.
                g.Classic = null;
                g.Offsets.Clear();
                g.Positions.Clear();
                break;
            case OffsetsTopicRecords.ConsumerKey k when record.Value is { } v:
                g.ConsumerRecords[(k.Type, k.MemberId ?? "")] = v;
                break;
            case OffsetsTopicRecords.ConsumerKey k:
                g.ConsumerRecords.Remove((k.Type, k.MemberId ?? ""));
                break;
        }
    }

    /// <summary>Builds the groups replay read and puts them in place; members get a fresh session timeout to come back.</summary>
    public void OnLoaded()
    {
        var groups = _replayed!;
        _replayed = null;
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
                _log.Error($"group coordinator, partition {_context.Partition}: skipped the undecodable consumer-protocol state of group {id}: {e.GetType().Name}: {e.Message}");
            }
            var metadata = replayed.Classic;
            if (replayed.Offsets.Count == 0 && metadata is null && consumer is null) continue;
            var group = new Group(id) { Consumer = consumer };
            foreach (var (key, value) in replayed.Offsets) group.SetOffset(key, value, replayed.Positions.GetValueOrDefault(key, -1));
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
            Install(group);
        }
        ScheduleOffsetExpiry();
    }

    /// <summary>The partition moved away or the broker stops: members parked in a rebalance are told to find the coordinator again.</summary>
    public void OnUnloaded()
    {
        foreach (var group in _groups.Values)
        {
            foreach (var member in group.Members.Values)
            {
                member.JoinWaiter?.TrySetResult(JoinError(ErrorCode.NotCoordinator, member.MemberId));
                member.SyncWaiter?.TrySetResult(new SyncGroupResponse { ErrorCode = (short)ErrorCode.NotCoordinator });
            }
            CancelTimers(group);
        }
        _groups.Clear();
        ForgetTransactions();
    }

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

    // ---- persistence -------------------------------------------------------------------------------------------

    private (byte[] Key, byte[]? Value) GroupMetadataRecord(Group group) =>
        (OffsetsTopicRecords.GroupMetadataKey(group.Id), OffsetsTopicRecords.GroupMetadataValue(new StoredGroup(
            group.ProtocolType ?? "", group.Generation, group.ProtocolName, group.Leader, group.StateTimestamp,
            [.. group.Members.Values.Select(m => new StoredMember(m.MemberId, m.InstanceId, m.ClientId, m.ClientHost,
                m.RebalanceTimeoutMs, m.SessionTimeoutMs, m.MetadataFor(group.ProtocolName) ?? [], m.Assignment))])));

    /// <summary>Stores the group's metadata without waiting (used where Kafka would not hold a response for it).</summary>
    private void PersistGroup(Group group) => _context.Append([GroupMetadataRecord(group)], _ => { });

    /// <summary>What replay has read for one group so far: last value per key, tombstoned keys removed.</summary>
    private sealed class ReplayedGroup
    {
        public Dictionary<(string, int), CommittedOffset> Offsets { get; } = [];

        /// <summary>Where each of <see cref="Offsets"/> was written (see <see cref="Group.OffsetPositions"/>).</summary>
        public Dictionary<(string, int), long> Positions { get; } = [];
        public StoredGroup? Classic { get; set; }
        public Dictionary<(short Type, string Member), ReadOnlyMemory<byte>> ConsumerRecords { get; } = [];
    }
}
