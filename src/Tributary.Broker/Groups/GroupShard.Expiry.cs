namespace Tributary.Broker.Groups;

/// <summary>
/// Offset expiry (offsets.retention.minutes, checked every offsets.retention.check.interval.ms), with Kafka's rules
/// (KIP-211, and its KIP-848 coordinator for consumer groups). An offset expires once retention has passed since
/// its base time:
/// <list type="bullet">
/// <item>a classic group that is Empty: the time it became empty (all its offsets at once);</item>
/// <item>a classic group that is Stable with the consumer protocol: the commit time, for topics no member subscribes to;</item>
/// <item>a consumer-protocol (KIP-848) group: the commit time, for topics no member subscribes to (all, once it has no members);</item>
/// <item>a group that never had members (assign() and commit): the commit time.</item>
/// </list>
/// Other classic states expire nothing; partitions with an undecided transactional offset are kept, and so is a group
/// that has any. Expired offsets
/// get tombstones in <c>__consumer_offsets</c>; a group left with no members and no offsets is removed, with
/// tombstones for its metadata, as Kafka's cleanup does.
/// </summary>
internal sealed partial class GroupShard
{
    /// <summary>Arms the periodic expiry check (on the loop, once loaded).</summary>
    private void ScheduleOffsetExpiry()
    {
        var interval = TimeSpan.FromMilliseconds(Settings.OffsetsRetentionCheckIntervalMs);
        _context.Schedule(interval, () => ExpireOffsets(), period: interval);
    }

    /// <summary>One expiry pass; returns the number of offsets expired.</summary>
    internal int ExpireOffsets()
    {
        var now = NowMs;
        var expiredCount = 0;
        foreach (var group in _groups.Values.ToList())
        {
            if (group.State == GroupState.Dead || ExpiryBase(group) is not { } expiry) continue;
            var (baseTime, subscribed) = expiry;
            var records = new List<(byte[] Key, byte[]? Value)>();
            foreach (var ((topic, partition), offset) in group.Offsets.ToList())
            {
                if (subscribed.Contains(topic) || IsOffsetUnstable(group.Id, topic, partition)) continue;
                if (now - baseTime(offset) < Settings.OffsetsRetentionMs) continue;
                group.RemoveOffset((topic, partition));
                records.Add((OffsetsTopicRecords.OffsetCommitKey(group.Id, topic, partition), null));
            }
            expiredCount += records.Count;
            if (records.Count > 0) _log.Debug($"group {group.Id}: {records.Count} committed offset(s) expired");
            var empty = group.Consumer is not null ? group.IsEmpty : group.IsEmpty && group.State == GroupState.Empty;
            if (empty && group.Offsets.Count == 0 && group.PendingCommits == 0 && !HasUnstableOffsets(group.Id))
            {
                if (group.Consumer is { } consumer) records.AddRange(ConsumerGroupTombstones(consumer));
                if (group.ProtocolType is not null) records.Add((OffsetsTopicRecords.GroupMetadataKey(group.Id), null));
                CancelTimers(group);
                group.State = GroupState.Dead;
                _groups.Remove(group.Id);
                _log.Debug($"group {group.Id}: removed (no members, no offsets)");
            }
            _context.Append(records, _ => { });
        }
        return expiredCount;
    }

    /// <summary>Where a group's offsets may expire: the base time of an offset and the topics that are exempt; null for none.</summary>
    private static (Func<CommittedOffset, long> Base, HashSet<string> Exempt)? ExpiryBase(Group group)
    {
        static long CommitTime(CommittedOffset o) => o.CommitTimestamp;
        if (group.Consumer is { } consumer && group.Members.Count == 0)
            return (CommitTime, consumer.Members.Values.SelectMany(m => m.SubscribedTopics).ToHashSet(StringComparer.Ordinal));
        if (group.ProtocolType is null) return (CommitTime, []);
        if (group.State == GroupState.Empty)
        {
            var since = group.StateTimestamp;
            return (o => since > 0 ? since : o.CommitTimestamp, []);
        }
        if (group.ProtocolType == "consumer" && group.State == GroupState.Stable) return (CommitTime, group.SubscribedTopics());
        return null;
    }
}
