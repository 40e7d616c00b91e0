using Tributary.Protocol.Messages;

namespace Tributary.Broker.Groups;

/// <summary>A group as DescribeGroups reports it.</summary>
public sealed record GroupDescription(
    string GroupId, string State, string ProtocolType, string Protocol, IReadOnlyList<MemberDescription> Members);

public sealed record MemberDescription(string MemberId, string? InstanceId, string ClientId, string ClientHost, byte[] Metadata, byte[] Assignment);

/// <summary>A group as ListGroups reports it.</summary>
public sealed record GroupListing(string GroupId, string ProtocolType, string State, string Type);

/// <summary>DescribeGroups, ListGroups and DeleteGroups.</summary>
internal sealed partial class GroupShard
{
    /// <summary>Null when the group is unknown (reported as Dead, as Kafka does).</summary>
    internal GroupDescription? Describe(string groupId)
    {
        if (!_groups.TryGetValue(groupId, out var group)) return null;
        var stable = group.State == GroupState.Stable;
        var members = group.Members.Values.Select(m => new MemberDescription(m.MemberId, m.InstanceId, m.ClientId, m.ClientHost,
            stable ? m.MetadataFor(group.ProtocolName) ?? [] : [], stable ? m.Assignment : [])).ToList();
        return new GroupDescription(group.Id, group.StateName, group.ProtocolType ?? (group.Consumer is not null ? "consumer" : ""),
            stable ? group.ProtocolName ?? "" : "", members);
    }

    internal List<GroupListing> List() => _groups.Values
        .Where(g => g.State != GroupState.Dead)
        .Select(g => new GroupListing(g.Id, g.ProtocolType ?? (g.Consumer is not null ? "consumer" : ""), g.StateName, g.TypeName))
        .ToList();

    internal Task<ErrorCode> DeleteGroup(string groupId)
    {
        if (!_groups.TryGetValue(groupId, out var group) || group.State == GroupState.Dead) return Task.FromResult(ErrorCode.GroupIdNotFound);
        if (!group.IsEmpty) return Task.FromResult(ErrorCode.NonEmptyGroup);
        var records = new List<(byte[], byte[]?)>();
        // Pending transactional offsets are tombstoned with the rest (Kafka's deleteAllOffsets), so replay drops them too.
        foreach (var (topic, partition) in group.Offsets.Keys.Union(PendingPartitionsOf(groupId)))
            records.Add((OffsetsTopicRecords.OffsetCommitKey(groupId, topic, partition), null));
        if (group.Consumer is { } consumer) records.AddRange(ConsumerGroupTombstones(consumer));
        records.Add((OffsetsTopicRecords.GroupMetadataKey(groupId), null));
        CancelTimers(group);
        group.State = GroupState.Dead;
        _groups.Remove(groupId);
        var done = NewWaiter<ErrorCode>();
        _context.Append(records, (first, error) =>
        {
            if (error is null) DropPendingWhere(key => key.Group == groupId, before: first);
            done.TrySetResult(error is null ? ErrorCode.None : ErrorCode.CoordinatorNotAvailable);
        });
        return done.Task;
    }
}
