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

    public bool IsOffsetUnstable(string groupId, string topic, int partition) => PendingTransactionalOffset?.Invoke(groupId, topic, partition) ?? false;

    /// <summary>
    /// KIP-447 check of a TxnOffsetCommit v3+: a producer committing for a group member must name the member and the
    /// group's current generation (member epoch for consumer-protocol groups), so a zombie consumer's producer cannot
    /// commit after a rebalance. Commits without a member (assign() users, generation -1) are not checked.
    /// </summary>
    public Task<ErrorCode> ValidateTransactionalCommitAsync(string groupId, int generation, string memberId, string? instanceId)
    {
        if (!_loaded) return Task.FromResult(ErrorCode.CoordinatorLoadInProgress);
        if (memberId.Length == 0 && generation < 0) return Task.FromResult(ErrorCode.None);
        return Run(() =>
        {
            if (!_groups.TryGetValue(groupId, out var group) || group.State == GroupState.Dead) return ErrorCode.UnknownMemberId;
            if (group.Consumer is { Members.Count: > 0 } consumer) return consumer.ValidateCommit(memberId, generation);
            if (IsFenced(group, memberId, instanceId)) return ErrorCode.FencedInstanceId;
            if (!group.Members.ContainsKey(memberId)) return ErrorCode.UnknownMemberId;
            return generation == group.Generation ? ErrorCode.None : ErrorCode.IllegalGeneration;
        });
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
