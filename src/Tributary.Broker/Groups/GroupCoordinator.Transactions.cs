using Tributary.Protocol.Messages;

namespace Tributary.Broker.Groups;

/// <summary>
/// Transactional offsets (owned by the transactions work; see Transactions/TransactionCoordinator). The transaction
/// coordinator stages a transaction's TxnOffsetCommit offsets in its own state (<c>__transaction_state</c>) and, when
/// the transaction commits, hands them here: they are written to <c>__consumer_offsets</c> and applied like an
/// OffsetCommit, but without membership checks (the producer, not a member, commits them; the generation was checked
/// when the offsets were staged). An abort never reaches the group coordinator. Re-applying the same offsets after a
/// restart (the commit was decided but not finished) is harmless.
/// </summary>
public sealed partial class GroupCoordinator
{
    /// <summary>
    /// Set by the broker to the transaction coordinator's view: true while an undecided transaction holds an offset
    /// for (group, topic, partition). OffsetFetch with require_stable answers such partitions UNSTABLE_OFFSET_COMMIT.
    /// </summary>
    public Func<string, string, int, bool>? PendingTransactionalOffset { get; set; }

    /// <summary>
    /// True while a transaction holds an offset for the partition or a TxnOffsetCommit that passed its checks is being
    /// staged: OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT.
    /// </summary>
    public bool IsOffsetUnstable(string groupId, string topic, int partition) =>
        _offsetsBeingStaged.ContainsKey((groupId, topic, partition)) || (PendingTransactionalOffset?.Invoke(groupId, topic, partition) ?? false);

    /// <summary>TxnOffsetCommits between their check here and their staging on the transaction coordinator (any thread).</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string Group, string Topic, int Partition), int> _offsetsBeingStaged = new();

    /// <summary>
    /// The group side of a TxnOffsetCommit. From v3 (<paramref name="checkMember"/>), KIP-447: a producer committing
    /// for a group member must name the member and the group's current generation (member epoch for consumer-protocol
    /// groups), so a zombie consumer's producer cannot commit after a rebalance; commits without a member (assign()
    /// users, generation -1) are not checked. On success the partitions count as unstable until
    /// <see cref="EndTransactionalCommit"/>: the check passes on this loop and the staging happens on the transaction
    /// coordinator's, and a rebalance in between must not let the new owner read the old offsets as stable, as Kafka,
    /// which checks and stages in one step, never does.
    /// </summary>
    public Task<ErrorCode> BeginTransactionalCommitAsync(string groupId, int generation, string memberId, string? instanceId,
        IReadOnlyList<(string Topic, int Partition)> partitions, bool checkMember)
    {
        if (!_loaded) return Task.FromResult(ErrorCode.CoordinatorLoadInProgress);
        if (!checkMember || (memberId.Length == 0 && generation < 0))
        {
            MarkBeingStaged(groupId, partitions);
            return Task.FromResult(ErrorCode.None);
        }
        return Run(() =>
        {
            ErrorCode error;
            if (!_groups.TryGetValue(groupId, out var group) || group.State == GroupState.Dead) error = ErrorCode.UnknownMemberId;
            else if (group.Consumer is { Members.Count: > 0 } consumer) error = consumer.ValidateCommit(memberId, generation);
            else if (IsFenced(group, memberId, instanceId)) error = ErrorCode.FencedInstanceId;
            else if (!group.Members.ContainsKey(memberId)) error = ErrorCode.UnknownMemberId;
            else error = generation == group.Generation ? ErrorCode.None : ErrorCode.IllegalGeneration;
            if (error == ErrorCode.None) MarkBeingStaged(groupId, partitions);
            return error;
        });
    }

    /// <summary>Ends what a successful <see cref="BeginTransactionalCommitAsync"/> started, once the staging succeeded or failed.</summary>
    public void EndTransactionalCommit(string groupId, IReadOnlyList<(string Topic, int Partition)> partitions)
    {
        foreach (var (topic, partition) in partitions)
        {
            var key = (groupId, topic, partition);
            if (_offsetsBeingStaged.AddOrUpdate(key, 0, (_, count) => count - 1) <= 0)
                _offsetsBeingStaged.TryRemove(new KeyValuePair<(string, string, int), int>(key, 0));
        }
    }

    private void MarkBeingStaged(string groupId, IReadOnlyList<(string Topic, int Partition)> partitions)
    {
        foreach (var (topic, partition) in partitions) _offsetsBeingStaged.AddOrUpdate((groupId, topic, partition), 1, (_, count) => count + 1);
    }

    public Task<ErrorCode> CommitTransactionalOffsetsAsync(string groupId, IReadOnlyList<OffsetToCommit> offsets)
    {
        if (!_loaded) return Task.FromResult(ErrorCode.CoordinatorLoadInProgress);
        if (offsets.Count == 0) return Task.FromResult(ErrorCode.None);
        return Run(() =>
        {
            var group = GetOrCreate(groupId);
            var now = NowMs;
            var values = offsets.Select(o => (o, Value: new CommittedOffset(o.Offset, o.LeaderEpoch, o.Metadata ?? "", o.CommitTimestamp >= 0 ? o.CommitTimestamp : now))).ToList();
            var records = values.Select(v => (OffsetsTopicRecords.OffsetCommitKey(groupId, v.o.Topic, v.o.Partition), (byte[]?)OffsetsTopicRecords.OffsetCommitValue(v.Value))).ToList();
            var done = NewWaiter<ErrorCode>();
            group.PendingCommits++;
            Append(groupId, records, error =>
            {
                group.PendingCommits--;
                if (error is null && _groups.TryGetValue(groupId, out var current))
                    foreach (var (o, value) in values) current.Offsets[(o.Topic, o.Partition)] = value;
                done.TrySetResult(error is null ? ErrorCode.None : ErrorCode.CoordinatorNotAvailable);
            });
            return done.Task;
        });
    }
}
