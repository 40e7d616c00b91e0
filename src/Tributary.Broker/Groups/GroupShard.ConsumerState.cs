namespace Tributary.Broker.Groups;

/// <summary>
/// Durability of KIP-848 consumer groups: their epochs, members, resolved regexes, target and current assignments are
/// records in <c>__consumer_offsets</c> (<see cref="ConsumerGroupRecords"/>), as Kafka keeps them, and are rebuilt at
/// start.
///
/// After every change on the loop the group's records are computed from its state and compared with what was last
/// written (<see cref="ConsumerGroup.Persisted"/>): changed records are appended, records of departed members get
/// tombstones. A heartbeat is answered once its records are appended, so a member never holds an epoch or an
/// assignment the log does not have; after a restart members heartbeat with the epoch they had and carry on, and
/// ownership is rebuilt from the stored assignments and pending revocations.
/// </summary>
internal sealed partial class GroupShard
{
    // Kafka's write order within a change: member metadata, resolved regexes, group epoch, subscription metadata,
    // target assignment, then current assignments; tombstones go in the reverse order.
    private static readonly short[] ConsumerRecordOrder =
    [
        ConsumerGroupRecords.MemberMetadata, ConsumerGroupRecords.RegularExpression, ConsumerGroupRecords.GroupMetadata,
        ConsumerGroupRecords.PartitionMetadata, ConsumerGroupRecords.TargetAssignmentMember, ConsumerGroupRecords.TargetAssignmentMetadata,
        ConsumerGroupRecords.CurrentMemberAssignment,
    ];

    /// <summary>Appends the group's changed records; <paramref name="result"/> completes once they are acknowledged
    /// (with <paramref name="onFailure"/>'s answer if the append failed).</summary>
    private Task<T> PersistConsumerGroup<T>(Group group, T result, Func<T>? onFailure = null)
    {
        if (group.Consumer is null) return Task.FromResult(result);
        var changes = ConsumerGroupChanges(group.Id, group.Consumer);
        if (changes.Count == 0) return Task.FromResult(result);
        var done = NewWaiter<T>();
        _context.Append(changes, error => done.TrySetResult(error is not null && onFailure is not null ? onFailure() : result));
        return done.Task;
    }

    /// <summary>The records that bring the log in line with the group's state; marks them persisted.</summary>
    private List<(byte[] Key, byte[]? Value)> ConsumerGroupChanges(string groupId, ConsumerGroup consumer)
    {
        var current = ConsumerGroupRecordValues(groupId, consumer);
        var changes = new List<(byte[], byte[]?)>();
        foreach (var (id, (key, _)) in consumer.Persisted.OrderByDescending(kv => Array.IndexOf(ConsumerRecordOrder, kv.Key.Type)))
            if (!current.ContainsKey(id)) changes.Add((key, null));
        foreach (var (id, (key, value)) in current.OrderBy(kv => Array.IndexOf(ConsumerRecordOrder, kv.Key.Type)))
            if (!consumer.Persisted.TryGetValue(id, out var old) || !old.Value.AsSpan().SequenceEqual(value)) changes.Add((key, value));
        consumer.Persisted = current;
        return changes;
    }

    /// <summary>Tombstones for every record of the group (it is being deleted).</summary>
    private static IEnumerable<(byte[] Key, byte[]? Value)> ConsumerGroupTombstones(ConsumerGroup consumer) =>
        consumer.Persisted.OrderByDescending(kv => Array.IndexOf(ConsumerRecordOrder, kv.Key.Type)).Select(kv => (kv.Value.Key, (byte[]?)null));

    private Dictionary<(short Type, string Member), (byte[] Key, byte[] Value)> ConsumerGroupRecordValues(string groupId, ConsumerGroup consumer)
    {
        var records = new Dictionary<(short, string), (byte[], byte[])>();
        void Add(short type, string member, byte[] value)
        {
            var key = consumer.Persisted.TryGetValue((type, member), out var old)
                ? old.Key
                : ConsumerGroupRecords.Key(type, groupId, member);
            records[(type, member)] = (key, value);
        }

        Add(ConsumerGroupRecords.GroupMetadata, "", ConsumerGroupRecords.EpochValue(consumer.GroupEpoch));
        Add(ConsumerGroupRecords.PartitionMetadata, "", ConsumerGroupRecords.PartitionMetadataValue(consumer.GroupEpoch,
            consumer.TopicPartitionCounts.OrderBy(kv => kv.Key, StringComparer.Ordinal)
                .Select(kv => _topics.Get(kv.Key) is { } topic ? new StoredTopic(topic.Id, kv.Key, kv.Value) : null)
                .OfType<StoredTopic>()));
        Add(ConsumerGroupRecords.TargetAssignmentMetadata, "", ConsumerGroupRecords.EpochValue(consumer.AssignmentEpoch));
        foreach (var (regex, resolved) in consumer.ResolvedRegexes)
            Add(ConsumerGroupRecords.RegularExpression, regex, ConsumerGroupRecords.RegularExpressionValue(new StoredRegularExpression(
                [.. resolved.Topics.Order(StringComparer.Ordinal)], resolved.Version, resolved.TimestampMs)));
        foreach (var m in consumer.Members.Values)
        {
            Add(ConsumerGroupRecords.MemberMetadata, m.MemberId, ConsumerGroupRecords.MemberMetadataValue(new StoredConsumerMember(
                m.InstanceId, m.RackId, m.ClientId, m.ClientHost, m.SubscribedTopicNames, m.SubscribedTopicRegex, m.RebalanceTimeoutMs, m.ServerAssignor)));
            Add(ConsumerGroupRecords.TargetAssignmentMember, m.MemberId, ConsumerGroupRecords.TargetAssignmentMemberValue(m.Target));
            var pending = new Dictionary<Guid, SortedSet<int>>();
            foreach (var ((topicId, partition), owner) in consumer.PendingRelease)
            {
                if (owner != m.MemberId) continue;
                if (!pending.TryGetValue(topicId, out var set)) pending[topicId] = set = [];
                set.Add(partition);
            }
            var state = pending.Count > 0 ? ConsumerGroupRecords.StateUnrevokedPartitions
                : ConsumerGroup.SameAssignment(m.Assigned, m.Target) ? ConsumerGroupRecords.StateStable
                : ConsumerGroupRecords.StateUnreleasedPartitions;
            Add(ConsumerGroupRecords.CurrentMemberAssignment, m.MemberId, ConsumerGroupRecords.CurrentMemberAssignmentValue(
                new StoredMemberAssignment(m.MemberEpoch, m.PreviousEpoch, state, m.Assigned, pending)));
        }
        return records;
    }

    /// <summary>
    /// Rebuilds a consumer group from its replayed records (last value per key, tombstoned keys already removed);
    /// null when the group record itself is gone.
    /// </summary>
    private static ConsumerGroup? RebuildConsumerGroup(Dictionary<(short Type, string Member), ReadOnlyMemory<byte>> records)
    {
        if (!records.TryGetValue((ConsumerGroupRecords.GroupMetadata, ""), out var metadata)) return null;
        var consumer = new ConsumerGroup { GroupEpoch = ConsumerGroupRecords.ReadEpochValue(metadata) };
        if (records.TryGetValue((ConsumerGroupRecords.TargetAssignmentMetadata, ""), out var target))
            consumer.AssignmentEpoch = ConsumerGroupRecords.ReadEpochValue(target);
        if (records.TryGetValue((ConsumerGroupRecords.PartitionMetadata, ""), out var partitions))
            foreach (var topic in ConsumerGroupRecords.ReadPartitionMetadataValue(partitions).Topics)
                consumer.TopicPartitionCounts[topic.Name] = topic.Partitions;
        foreach (var ((type, regex), value) in records)
        {
            if (type != ConsumerGroupRecords.RegularExpression) continue;
            var stored = ConsumerGroupRecords.ReadRegularExpressionValue(value);
            consumer.ResolvedRegexes[regex] = new ResolvedRegex(stored.Topics.ToHashSet(StringComparer.Ordinal), stored.Version, stored.TimestampMs, Replayed: true);
        }

        foreach (var ((type, memberId), value) in records)
        {
            if (type != ConsumerGroupRecords.MemberMetadata) continue;
            var stored = ConsumerGroupRecords.ReadMemberMetadataValue(value);
            var member = new ConsumerMember(memberId)
            {
                InstanceId = stored.InstanceId,
                RackId = stored.RackId,
                ClientId = stored.ClientId,
                ClientHost = stored.ClientHost,
                SubscribedTopicNames = [.. stored.SubscribedTopicNames],
                SubscribedTopicRegex = stored.SubscribedTopicRegex,
                SubscribedTopics = [.. stored.SubscribedTopicNames],
                RebalanceTimeoutMs = stored.RebalanceTimeoutMs,
                ServerAssignor = stored.ServerAssignor,
            };
            if (records.TryGetValue((ConsumerGroupRecords.TargetAssignmentMember, memberId), out var memberTarget))
                member.Target = ConsumerGroupRecords.ReadTargetAssignmentMemberValue(memberTarget);
            if (records.TryGetValue((ConsumerGroupRecords.CurrentMemberAssignment, memberId), out var current))
            {
                var assignment = ConsumerGroupRecords.ReadCurrentMemberAssignmentValue(current);
                member.MemberEpoch = assignment.MemberEpoch;
                member.PreviousEpoch = assignment.PreviousMemberEpoch;
                member.Assigned = assignment.Assigned;
                // A partition is owned by its member until the member reports it released, whether assigned or being revoked.
                foreach (var (topicId, set) in assignment.Assigned)
                    foreach (var p in set) consumer.Owners[(topicId, p)] = memberId;
                foreach (var (topicId, set) in assignment.PendingRevocation)
                    foreach (var p in set)
                    {
                        consumer.Owners[(topicId, p)] = memberId;
                        consumer.PendingRelease[(topicId, p)] = memberId;
                    }
            }
            if (stored.ServerAssignor is { } assignor) consumer.Assignor = assignor;
            consumer.Members[memberId] = member;
        }
        return consumer;
    }
}
