using Tributary.Coordination;
using Tributary.Protocol.Messages;
using Tributary.Storage;

namespace Tributary.Broker.Groups;

/// <summary>A TxnOffsetCommit as the group coordinator takes it (see <see cref="GroupShard"/>'s transactional offsets).</summary>
/// <param name="CheckMember">From v3 (KIP-447): the member and its generation are checked against the group.</param>
public sealed record TransactionalCommit(
    string GroupId, long ProducerId, short ProducerEpoch, int Generation, string MemberId, string? InstanceId, bool CheckMember,
    IReadOnlyList<OffsetToCommit> Offsets);

/// <summary>
/// Transactional offsets, as Kafka's group coordinator keeps them (KIP-98; its <c>OffsetMetadataManager</c>).
///
/// TxnOffsetCommit comes here, to the group's coordinator, whatever broker the transaction's coordinator is on. It is
/// checked (the member and generation from v3, KIP-447; the producer epoch against the newest this shard knows for
/// the producer id, and against the partition's own producer state, which refuses an older epoch as the log does any
/// producer's) and appended to the group's partition of <c>__consumer_offsets</c> as one transactional batch of the
/// producer (its id and epoch, no sequence). Once durable its offsets are pending for that producer id: not what
/// OffsetFetch answers, and the partitions read as unstable (require_stable gets UNSTABLE_OFFSET_COMMIT; they are also
/// unstable while the append is in flight, so a rebalance in between never lets the next owner read the old offset
/// as stable). AddOffsetsToTxn put this partition among the transaction's partitions, so the transaction coordinator
/// writes its commit or abort marker here too; once that marker is durable (TransactionMarkers) the shard is told
/// (<see cref="OnTransactionMarker"/>) and installs (commit) or drops (abort) the producer's pending offsets written
/// before the marker. A committed offset replaces a committed one only if it was written later in the log, so a
/// plain commit made while the transaction was open wins over it, as in Kafka.
///
/// Replay does the same from the log: a transactional offset record is pending until its producer's marker, which
/// commits or aborts it; one with no marker yet stays pending after the load (its transaction is still open, and its
/// marker will be reported live). A tombstone of the partition drops pending offsets written before it.
///
/// The order of events on the loop is not the order of the log in one case: a marker reported while an append of the
/// same producer is still in flight (a transaction aborted on timeout meanwhile). Such markers are kept until those
/// appends are durable and then applied to them by position, so the state is what replay would build.
/// </summary>
internal sealed partial class GroupShard
{
    /// <summary>Offsets a producer's open transaction wrote, by (group, topic, partition), with their log positions.</summary>
    private sealed class PendingTransaction
    {
        public short Epoch { get; set; } = -1;
        public Dictionary<(string Group, string Topic, int Partition), (CommittedOffset Value, long Position)> Offsets { get; } = [];
    }

    /// <summary>TxnOffsetCommit appends of one producer not yet durable, and the markers reported meanwhile.</summary>
    private sealed class AppendsInFlight
    {
        public int Count { get; set; }
        public short Epoch { get; set; } = -1;
        public List<(long Position, TransactionOutcome Outcome)> Markers { get; } = [];
    }

    private readonly Dictionary<long, PendingTransaction> _pendingTransactions = [];
    private readonly Dictionary<long, AppendsInFlight> _transactionalAppends = [];

    // Per (group, topic, partition): pending offsets (one per producer) plus appends in flight; per group, the total.
    private readonly Dictionary<(string Group, string Topic, int Partition), int> _unstable = [];
    private readonly Dictionary<string, int> _unstableByGroup = new(StringComparer.Ordinal);

    /// <summary>True while an undecided transaction holds an offset for the partition (OffsetFetch's require_stable).</summary>
    private bool IsOffsetUnstable(string groupId, string topic, int partition) => _unstable.ContainsKey((groupId, topic, partition));

    /// <summary>True while an undecided transaction holds any offset of the group (offset expiry keeps the group).</summary>
    private bool HasUnstableOffsets(string groupId) => _unstableByGroup.ContainsKey(groupId);

    /// <summary>The member check of a TxnOffsetCommit (KIP-447): the member and the group's current generation.</summary>
    internal ErrorCode CheckTransactionalMember(string groupId, int generation, string memberId, string? instanceId)
    {
        if (!_groups.TryGetValue(groupId, out var group) || group.State == GroupState.Dead) return ErrorCode.UnknownMemberId;
        if (group.Consumer is { Members.Count: > 0 } consumer) return consumer.ValidateCommit(memberId, generation);
        if (IsFenced(group, memberId, instanceId)) return ErrorCode.FencedInstanceId;
        if (!group.Members.ContainsKey(memberId)) return ErrorCode.UnknownMemberId;
        return generation == group.Generation ? ErrorCode.None : ErrorCode.IllegalGeneration;
    }

    /// <summary>
    /// TxnOffsetCommit: a group-level error, or one error per offset (OFFSET_METADATA_TOO_LARGE for those refused,
    /// the append's outcome for the rest). Commits without a member (assign() users: no member id, generation -1) are
    /// not checked against the group, as in Kafka.
    /// </summary>
    internal Task<(ErrorCode GroupError, List<ErrorCode> PartitionErrors)> CommitTransactionalOffsets(TransactionalCommit commit)
    {
        static Task<(ErrorCode, List<ErrorCode>)> Fail(ErrorCode e) => Task.FromResult((e, new List<ErrorCode>()));
        var (groupId, producerId, epoch) = (commit.GroupId, commit.ProducerId, commit.ProducerEpoch);
        if (groupId.Length == 0) return Fail(ErrorCode.InvalidGroupId);
        if (epoch < NewestEpoch(producerId)) return Fail(ErrorCode.InvalidProducerEpoch);
        if (commit.CheckMember && !(commit.MemberId.Length == 0 && commit.Generation < 0))
        {
            var error = CheckTransactionalMember(groupId, commit.Generation, commit.MemberId, commit.InstanceId);
            if (error != ErrorCode.None) return Fail(error);
        }

        var group = GetOrCreate(groupId);
        var errors = new List<ErrorCode>(commit.Offsets.Count);
        var records = new List<(byte[], byte[]?)>();
        var accepted = new List<((string, string, int) Key, CommittedOffset Value)>();
        var now = NowMs;
        foreach (var o in commit.Offsets)
        {
            if (o.Metadata is { } m && System.Text.Encoding.UTF8.GetByteCount(m) > Settings.MaxMetadataBytes)
            {
                errors.Add(ErrorCode.OffsetMetadataTooLarge);
                continue;
            }
            errors.Add(ErrorCode.None);
            var value = new CommittedOffset(o.Offset, o.LeaderEpoch, o.Metadata ?? "", o.CommitTimestamp >= 0 ? o.CommitTimestamp : now);
            accepted.Add(((groupId, o.Topic, o.Partition), value));
            records.Add((OffsetsTopicRecords.OffsetCommitKey(groupId, o.Topic, o.Partition), OffsetsTopicRecords.OffsetCommitValue(value)));
        }
        if (records.Count == 0) return Task.FromResult((ErrorCode.None, errors));

        foreach (var (key, _) in accepted) MarkUnstable(key, +1);
        if (!_transactionalAppends.TryGetValue(producerId, out var inFlight)) _transactionalAppends[producerId] = inFlight = new AppendsInFlight();
        inFlight.Count++;
        inFlight.Epoch = Math.Max(inFlight.Epoch, epoch);
        group.PendingCommits++;
        var done = NewWaiter<(ErrorCode, List<ErrorCode>)>();
        _context.Append(records, (first, error) =>
        {
            group.PendingCommits--;
            foreach (var (key, _) in accepted) MarkUnstable(key, -1);
            if (error is null)
            {
                for (var i = 0; i < accepted.Count; i++) AddPending(producerId, epoch, accepted[i].Key, accepted[i].Value, first + i);
                foreach (var (position, outcome) in inFlight.Markers) CompleteTransaction(producerId, outcome, position);
            }
            if (--inFlight.Count == 0) _transactionalAppends.Remove(producerId);
            var code = error is null ? ErrorCode.None : AppendError(error);
            for (var i = 0; i < errors.Count; i++)
                if (errors[i] == ErrorCode.None) errors[i] = code;
            done.TrySetResult((ErrorCode.None, errors));
        }, new TransactionalProducer(producerId, epoch));
        return done.Task;
    }

    /// <summary>
    /// A commit or abort marker of <paramref name="producerId"/> is durable at <paramref name="position"/> in this
    /// shard's partition (told by whoever appended it, after it was replicated): the producer's pending offsets written
    /// before it are installed or dropped.
    /// </summary>
    internal void OnTransactionMarker(long producerId, short producerEpoch, TransactionOutcome outcome, long position)
    {
        CompleteTransaction(producerId, outcome, position);
        if (_transactionalAppends.TryGetValue(producerId, out var inFlight)) inFlight.Markers.Add((position, outcome));
    }

    /// <summary>Replay met a marker: as <see cref="OnTransactionMarker"/>, on the state read so far.</summary>
    public void ReplayEndTransaction(long producerId, short producerEpoch, TransactionOutcome outcome, long offset) =>
        CompleteTransaction(producerId, outcome, offset);

    /// <summary>The newest epoch this shard knows for the producer id (-1: none); an older one is a zombie's.</summary>
    private short NewestEpoch(long producerId) => Math.Max(
        _pendingTransactions.TryGetValue(producerId, out var pending) ? pending.Epoch : (short)-1,
        _transactionalAppends.TryGetValue(producerId, out var inFlight) ? inFlight.Epoch : (short)-1);

    private static ErrorCode AppendError(Exception error) => error switch
    {
        StorageException { Error: StorageError.InvalidProducerEpoch } => ErrorCode.InvalidProducerEpoch,
        StorageException { Error: StorageError.InvalidTxnState } => ErrorCode.InvalidTxnState,
        _ => ErrorCode.CoordinatorNotAvailable,
    };

    // ---- pending offsets, live and in replay ------------------------------------------------------------------------

    private void AddPending(long producerId, short epoch, (string Group, string Topic, int Partition) key, CommittedOffset value, long position)
    {
        if (!_pendingTransactions.TryGetValue(producerId, out var pending)) _pendingTransactions[producerId] = pending = new PendingTransaction();
        pending.Epoch = Math.Max(pending.Epoch, epoch);
        if (!pending.Offsets.ContainsKey(key)) MarkUnstable(key, +1);
        pending.Offsets[key] = (value, position);
    }

    /// <summary>The producer's transaction ended at <paramref name="position"/>: what it wrote before is installed (commit) or dropped.</summary>
    private void CompleteTransaction(long producerId, TransactionOutcome outcome, long position)
    {
        if (!_pendingTransactions.TryGetValue(producerId, out var pending)) return;
        foreach (var (key, (value, written)) in pending.Offsets.Where(o => o.Value.Position < position).ToList())
        {
            pending.Offsets.Remove(key);
            MarkUnstable(key, -1);
            if (outcome == TransactionOutcome.Commit) Install(key, value, written);
        }
        if (pending.Offsets.Count == 0) _pendingTransactions.Remove(producerId);
    }

    /// <summary>Drops pending offsets of one partition written before <paramref name="before"/> (a tombstone for it).</summary>
    private void DropPending(string groupId, (string Topic, int Partition) partition, long before) =>
        DropPendingWhere(key => key.Group == groupId && key.Topic == partition.Topic && key.Partition == partition.Partition, before);

    private void DropPendingWhere(Func<(string Group, string Topic, int Partition), bool> match, long before)
    {
        foreach (var (producerId, pending) in _pendingTransactions.ToList())
        {
            foreach (var (key, _) in pending.Offsets.Where(o => match(o.Key) && o.Value.Position < before).ToList())
            {
                pending.Offsets.Remove(key);
                MarkUnstable(key, -1);
            }
            if (pending.Offsets.Count == 0) _pendingTransactions.Remove(producerId);
        }
    }

    /// <summary>The partitions of a group that have pending offsets (its deletion tombstones them too).</summary>
    private IEnumerable<(string Topic, int Partition)> PendingPartitionsOf(string groupId) =>
        _unstable.Keys.Where(k => k.Group == groupId).Select(k => (k.Topic, k.Partition));

    /// <summary>A committed transactional offset becomes the group's, into the replayed state while loading.</summary>
    private void Install((string Group, string Topic, int Partition) key, CommittedOffset value, long position)
    {
        if (_replayed is { } replayed)
        {
            if (!replayed.TryGetValue(key.Group, out var g)) replayed[key.Group] = g = new ReplayedGroup();
            var partition = (key.Topic, key.Partition);
            if (g.Offsets.ContainsKey(partition) && g.Positions.TryGetValue(partition, out var current) && current > position) return;
            g.Offsets[partition] = value;
            g.Positions[partition] = position;
            return;
        }
        GetOrCreate(key.Group).SetOffset((key.Topic, key.Partition), value, position);
    }

    private void MarkUnstable((string Group, string Topic, int Partition) key, int delta)
    {
        var count = _unstable.GetValueOrDefault(key) + delta;
        if (count > 0) _unstable[key] = count;
        else _unstable.Remove(key);
        var groupCount = _unstableByGroup.GetValueOrDefault(key.Group) + delta;
        if (groupCount > 0) _unstableByGroup[key.Group] = groupCount;
        else _unstableByGroup.Remove(key.Group);
    }

    private void ForgetTransactions()
    {
        _pendingTransactions.Clear();
        _transactionalAppends.Clear();
        _unstable.Clear();
        _unstableByGroup.Clear();
    }
}
