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
internal sealed partial class GroupShard
{
    /// <summary>The member check of a TxnOffsetCommit (KIP-447): the member and the group's current generation.</summary>
    internal ErrorCode CheckTransactionalMember(string groupId, int generation, string memberId, string? instanceId)
    {
        if (!_groups.TryGetValue(groupId, out var group) || group.State == GroupState.Dead) return ErrorCode.UnknownMemberId;
        if (group.Consumer is { Members.Count: > 0 } consumer) return consumer.ValidateCommit(memberId, generation);
        if (IsFenced(group, memberId, instanceId)) return ErrorCode.FencedInstanceId;
        if (!group.Members.ContainsKey(memberId)) return ErrorCode.UnknownMemberId;
        return generation == group.Generation ? ErrorCode.None : ErrorCode.IllegalGeneration;
    }

    internal Task<ErrorCode> CommitTransactionalOffsets(string groupId, IReadOnlyList<OffsetToCommit> offsets)
    {
        var group = GetOrCreate(groupId);
        var now = NowMs;
        var values = offsets.Select(o => (o, Value: new CommittedOffset(o.Offset, o.LeaderEpoch, o.Metadata ?? "", o.CommitTimestamp >= 0 ? o.CommitTimestamp : now))).ToList();
        var records = values.Select(v => (OffsetsTopicRecords.OffsetCommitKey(groupId, v.o.Topic, v.o.Partition), (byte[]?)OffsetsTopicRecords.OffsetCommitValue(v.Value))).ToList();
        var done = NewWaiter<ErrorCode>();
        group.PendingCommits++;
        _context.Append(records, error =>
        {
            group.PendingCommits--;
            if (error is null && _groups.TryGetValue(groupId, out var current))
                foreach (var (o, value) in values) current.Offsets[(o.Topic, o.Partition)] = value;
            done.TrySetResult(error is null ? ErrorCode.None : ErrorCode.CoordinatorNotAvailable);
        });
        return done.Task;
    }
}
