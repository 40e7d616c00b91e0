using Tributary.Protocol.Messages;

namespace Tributary.Broker.Groups;

/// <summary>A partition's offset to commit, from an OffsetCommit request.</summary>
public readonly record struct OffsetToCommit(string Topic, int Partition, long Offset, int LeaderEpoch, string? Metadata, long CommitTimestamp);

/// <summary>
/// Committed offsets: OffsetCommit, OffsetFetch, OffsetDelete. A commit is checked against the group as Kafka does
/// (a member of the current generation, or — for consumers that only assign() — generation -1 with no member id
/// while the group has no members), appended to the group's partition of <c>__consumer_offsets</c>, and applied and
/// answered once the append is acknowledged. Offsets are kept until deleted or expired (GroupCoordinator.Expiry.cs).
/// </summary>
internal sealed partial class GroupShard
{
    /// <summary>Committed offsets of a group: the partitions asked for, or all when <paramref name="partitions"/> is null.
    /// Partitions without a commit come back with offset -1. Unstable: an undecided transaction holds an offset for the
    /// partition (OffsetFetch's require_stable). It is read on the loop together with the offset, where a committed
    /// transaction installs its offsets in the same step that ends their being pending, so an old offset is never
    /// reported stable.</summary>
    internal (ErrorCode Error, List<(string Topic, int Partition, CommittedOffset? Offset, bool Unstable)> Offsets) FetchOffsets(
        string groupId, IReadOnlyList<(string Topic, int Partition)>? partitions)
    {
        var result = new List<(string, int, CommittedOffset?, bool)>();
        _groups.TryGetValue(groupId, out var group);
        if (partitions is null)
        {
            if (group is not null)
                foreach (var ((topic, partition), offset) in group.Offsets.OrderBy(o => o.Key.Topic, StringComparer.Ordinal).ThenBy(o => o.Key.Partition))
                    result.Add((topic, partition, offset, IsOffsetUnstable(groupId, topic, partition)));
        }
        else
        {
            foreach (var (topic, partition) in partitions)
                result.Add((topic, partition, group?.Offsets.GetValueOrDefault((topic, partition)), IsOffsetUnstable(groupId, topic, partition)));
        }
        return (ErrorCode.None, result);
    }

    internal Task<(ErrorCode GroupError, List<ErrorCode> PartitionErrors)> DeleteOffsets(string groupId, IReadOnlyList<(string Topic, int Partition)> partitions)
    {
        if (!_groups.TryGetValue(groupId, out var group) || group.State == GroupState.Dead)
            return Task.FromResult((ErrorCode.GroupIdNotFound, new List<ErrorCode>()));
        var subscribed = group.IsEmpty ? [] : group.SubscribedTopics();
        var errors = new List<ErrorCode>();
        var records = new List<(byte[], byte[]?)>();
        var tombstoned = new List<(string Topic, int Partition)>();
        foreach (var (topic, partition) in partitions)
        {
            if (subscribed.Contains(topic))
            {
                errors.Add(ErrorCode.GroupSubscribedToTopic);
                continue;
            }
            errors.Add(ErrorCode.None);
            // A pending transactional offset goes too, as replay drops it at the tombstone (Kafka deletes both).
            if (group.RemoveOffset((topic, partition)) || IsOffsetUnstable(groupId, topic, partition))
            {
                records.Add((OffsetsTopicRecords.OffsetCommitKey(groupId, topic, partition), null));
                tombstoned.Add((topic, partition));
            }
        }
        var done = NewWaiter<(ErrorCode, List<ErrorCode>)>();
        _context.Append(records, (first, error) =>
        {
            if (error is null)
                foreach (var partition in tombstoned) DropPending(groupId, partition, before: first);
            done.TrySetResult(error is null ? (ErrorCode.None, errors) : (ErrorCode.CoordinatorNotAvailable, errors));
        });
        return done.Task;
    }

    internal Task<(ErrorCode, List<ErrorCode>)> CommitOffsets(string groupId, int generation, string memberId, string? instanceId, IReadOnlyList<OffsetToCommit> offsets)
    {
        static Task<(ErrorCode, List<ErrorCode>)> Fail(ErrorCode e) => Task.FromResult((e, new List<ErrorCode>()));
        if (groupId.Length == 0) return Fail(ErrorCode.InvalidGroupId);
        if (!_groups.TryGetValue(groupId, out var group))
        {
            if (generation >= 0) return Fail(memberId.Length > 0 ? ErrorCode.UnknownMemberId : ErrorCode.IllegalGeneration);
            group = GetOrCreate(groupId);
        }
        if (group.State == GroupState.Dead) return Fail(ErrorCode.CoordinatorNotAvailable);
        if (group.Consumer is { Members.Count: > 0 } consumer)
        {
            var error = consumer.ValidateCommit(memberId, generation);
            if (error != ErrorCode.None) return Fail(error);
        }
        else if (generation < 0 && group.Members.Count == 0)
        {
            // A standalone commit (assign() without membership) to a group with no members.
        }
        else
        {
            if (IsFenced(group, memberId, instanceId)) return Fail(ErrorCode.FencedInstanceId);
            if (group.State == GroupState.CompletingRebalance) return Fail(ErrorCode.RebalanceInProgress);
            if (!group.Members.TryGetValue(memberId, out var member)) return Fail(ErrorCode.UnknownMemberId);
            if (generation != group.Generation) return Fail(ErrorCode.IllegalGeneration);
            ScheduleSessionExpiry(group, member);
        }

        var errors = new List<ErrorCode>(offsets.Count);
        var records = new List<(byte[], byte[]?)>();
        var accepted = new List<(OffsetToCommit Request, CommittedOffset Value)>();
        var now = NowMs;
        foreach (var o in offsets)
        {
            if (o.Metadata is { } m && System.Text.Encoding.UTF8.GetByteCount(m) > Settings.MaxMetadataBytes)
            {
                errors.Add(ErrorCode.OffsetMetadataTooLarge);
                continue;
            }
            errors.Add(ErrorCode.None);
            var value = new CommittedOffset(o.Offset, o.LeaderEpoch, o.Metadata ?? "", o.CommitTimestamp >= 0 ? o.CommitTimestamp : now);
            accepted.Add((o, value));
            records.Add((OffsetsTopicRecords.OffsetCommitKey(groupId, o.Topic, o.Partition), OffsetsTopicRecords.OffsetCommitValue(value)));
        }
        var done = NewWaiter<(ErrorCode, List<ErrorCode>)>();
        group.PendingCommits++;
        _context.Append(records, (first, error) =>
        {
            group.PendingCommits--;
            if (error is not null)
            {
                for (var i = 0; i < errors.Count; i++)
                    if (errors[i] == ErrorCode.None) errors[i] = ErrorCode.CoordinatorNotAvailable;
            }
            else if (_groups.TryGetValue(groupId, out var current))
            {
                for (var i = 0; i < accepted.Count; i++) current.SetOffset((accepted[i].Request.Topic, accepted[i].Request.Partition), accepted[i].Value, first + i);
            }
            done.TrySetResult((ErrorCode.None, errors));
        });
        return done.Task;
    }
}
