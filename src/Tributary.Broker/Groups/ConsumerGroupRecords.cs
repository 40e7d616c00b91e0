using Tributary.Protocol.Wire;

namespace Tributary.Broker.Groups;

/// <summary>The subscribed topics a consumer group's assignment was computed for (ConsumerGroupPartitionMetadataValue).</summary>
internal sealed record StoredTopic(Guid TopicId, string Name, int Partitions);

/// <summary>A KIP-848 member's registration (ConsumerGroupMemberMetadataValue).</summary>
internal sealed record StoredConsumerMember(
    string? InstanceId, string? RackId, string ClientId, string ClientHost, IReadOnlyList<string> SubscribedTopicNames,
    string? SubscribedTopicRegex, int RebalanceTimeoutMs, string? ServerAssignor);

/// <summary>
/// What a group's regular expression resolved to (ConsumerGroupRegularExpressionValue): the matching topics, the
/// topic-catalog version the resolution saw, and when it ran.
/// </summary>
internal sealed record StoredRegularExpression(IReadOnlyList<string> Topics, long Version, long TimestampMs);

/// <summary>A KIP-848 member's current assignment (ConsumerGroupCurrentMemberAssignmentValue).</summary>
internal sealed record StoredMemberAssignment(
    int MemberEpoch, int PreviousMemberEpoch, byte State, Dictionary<Guid, SortedSet<int>> Assigned, Dictionary<Guid, SortedSet<int>> PendingRevocation);

/// <summary>
/// The records of a KIP-848 consumer group in <c>__consumer_offsets</c>, in Kafka's layouts (its group-coordinator
/// message definitions), so the topic reads as Kafka's does. Keys are not flexible: int16 key version (which is the
/// record type), group id and, for member records, member id as int16-length strings. Values are value version 0 of
/// flexible messages: int16 version 0, then the fields with compact strings and arrays (unsigned varint length + 1),
/// 16-byte uuids, and an empty tagged-field section after every struct. Readers skip the tagged fields Kafka added
/// later (MetadataHash, assignment epochs, ...).
/// <list type="bullet">
/// <item>3 ConsumerGroupMetadata (group): Epoch int32 — the group epoch.</item>
/// <item>4 ConsumerGroupPartitionMetadata (group): Epoch int32, Topics [TopicId uuid, TopicName string, NumPartitions int32,
///   PartitionRacks [Partition int32, Racks []string]] — what the last assignment was computed for.</item>
/// <item>5 ConsumerGroupMemberMetadata (group, member): InstanceId string?, RackId string?, ClientId, ClientHost,
///   SubscribedTopicNames []string, SubscribedTopicRegex string?, RebalanceTimeoutMs int32, ServerAssignor string?.</item>
/// <item>6 ConsumerGroupTargetAssignmentMetadata (group): AssignmentEpoch int32.</item>
/// <item>7 ConsumerGroupTargetAssignmentMember (group, member): TopicPartitions [TopicId uuid, Partitions []int32].</item>
/// <item>8 ConsumerGroupCurrentMemberAssignment (group, member): MemberEpoch int32, PreviousMemberEpoch int32, State int8,
///   AssignedPartitions and PartitionsPendingRevocation, both [TopicId uuid, Partitions []int32].</item>
/// <item>16 ConsumerGroupRegularExpression (group, regular expression): Topics []string, Version int64, Timestamp int64 —
///   a subscribed regex's resolution (<see cref="GroupShard"/>'s regex refresh). Kafka's Version is the metadata offset
///   the resolution saw; Tributary's is the catalog's count of topic creations in the process that wrote it, which a
///   reader in a later process cannot compare, so a replayed resolution is refreshed at the first chance.</item>
/// </list>
/// A member that leaves gets tombstones for 8, 7 and 5; a regex no member subscribes to any more gets one for 16; a
/// deleted group also for 6, 4 and 3.
/// </summary>
internal static class ConsumerGroupRecords
{
    public const short GroupMetadata = 3;
    public const short PartitionMetadata = 4;
    public const short MemberMetadata = 5;
    public const short TargetAssignmentMetadata = 6;
    public const short TargetAssignmentMember = 7;
    public const short CurrentMemberAssignment = 8;
    public const short RegularExpression = 16;

    /// <summary>Kafka's MemberState values, stored in the current assignment record.</summary>
    public const byte StateStable = 1, StateUnrevokedPartitions = 2, StateUnreleasedPartitions = 3;

    public static byte[] Key(short type, string group, string? memberId = null)
    {
        using var w = new KafkaWriter(64);
        w.WriteInt16(type);
        w.WriteString(group, compact: false);
        if (HasSecondKey(type)) w.WriteString(memberId ?? "", compact: false);
        return w.WrittenSpan.ToArray();
    }

    /// <summary>Records keyed by group and member (the others by group only).</summary>
    public static bool IsMemberRecord(short type) => type is MemberMetadata or TargetAssignmentMember or CurrentMemberAssignment;

    /// <summary>Records whose key has a second string after the group id: the member id, or the regular expression (16).</summary>
    public static bool HasSecondKey(short type) => IsMemberRecord(type) || type == RegularExpression;

    public static bool IsConsumerRecord(short type) => type is >= GroupMetadata and <= CurrentMemberAssignment or RegularExpression;

    public static byte[] EpochValue(int epoch)
    {
        using var w = Value();
        w.WriteInt32(epoch);
        return Done(w);
    }

    /// <summary>Reads ConsumerGroupMetadataValue and ConsumerGroupTargetAssignmentMetadataValue (both start with their epoch).</summary>
    public static int ReadEpochValue(ReadOnlyMemory<byte> data)
    {
        var r = ValueReader(data);
        return r.ReadInt32();
    }

    public static byte[] PartitionMetadataValue(int epoch, IEnumerable<StoredTopic> topics)
    {
        using var w = Value();
        w.WriteInt32(epoch);
        var list = topics.ToList();
        w.WriteArrayLength(list.Count, compact: true);
        foreach (var t in list)
        {
            w.WriteUuid(t.TopicId);
            w.WriteString(t.Name, compact: true);
            w.WriteInt32(t.Partitions);
            w.WriteArrayLength(0, compact: true); // no rack information
            w.WriteUnsignedVarInt(0);
        }
        return Done(w);
    }

    public static (int Epoch, List<StoredTopic> Topics) ReadPartitionMetadataValue(ReadOnlyMemory<byte> data)
    {
        var r = ValueReader(data);
        var epoch = r.ReadInt32();
        var count = r.ReadArrayLength(compact: true);
        var topics = new List<StoredTopic>(Math.Max(0, count));
        for (var i = 0; i < count; i++)
        {
            var id = r.ReadUuid();
            var name = r.ReadString(compact: true);
            var partitions = r.ReadInt32();
            var racks = r.ReadArrayLength(compact: true);
            for (var j = 0; j < racks; j++)
            {
                r.ReadInt32();
                var n = r.ReadArrayLength(compact: true);
                for (var k = 0; k < n; k++) r.ReadString(compact: true);
                SkipTags(ref r);
            }
            SkipTags(ref r);
            topics.Add(new StoredTopic(id, name, partitions));
        }
        return (epoch, topics);
    }

    public static byte[] MemberMetadataValue(StoredConsumerMember m)
    {
        using var w = Value();
        w.WriteNullableString(m.InstanceId, compact: true);
        w.WriteNullableString(m.RackId, compact: true);
        w.WriteString(m.ClientId, compact: true);
        w.WriteString(m.ClientHost, compact: true);
        w.WriteArrayLength(m.SubscribedTopicNames.Count, compact: true);
        foreach (var t in m.SubscribedTopicNames) w.WriteString(t, compact: true);
        w.WriteNullableString(m.SubscribedTopicRegex, compact: true);
        w.WriteInt32(m.RebalanceTimeoutMs);
        w.WriteNullableString(m.ServerAssignor, compact: true);
        return Done(w);
    }

    public static StoredConsumerMember ReadMemberMetadataValue(ReadOnlyMemory<byte> data)
    {
        var r = ValueReader(data);
        var instance = r.ReadNullableString(compact: true);
        var rack = r.ReadNullableString(compact: true);
        var clientId = r.ReadString(compact: true);
        var clientHost = r.ReadString(compact: true);
        var count = r.ReadArrayLength(compact: true);
        var topics = new List<string>(Math.Max(0, count));
        for (var i = 0; i < count; i++) topics.Add(r.ReadString(compact: true));
        var regex = r.ReadNullableString(compact: true);
        var rebalanceTimeout = r.ReadInt32();
        var assignor = r.ReadNullableString(compact: true);
        return new StoredConsumerMember(instance, rack, clientId, clientHost, topics, regex, rebalanceTimeout, assignor);
    }

    public static byte[] TargetAssignmentMemberValue(Dictionary<Guid, SortedSet<int>> target)
    {
        using var w = Value();
        WritePartitions(w, target);
        return Done(w);
    }

    public static Dictionary<Guid, SortedSet<int>> ReadTargetAssignmentMemberValue(ReadOnlyMemory<byte> data)
    {
        var r = ValueReader(data);
        return ReadPartitions(ref r);
    }

    public static byte[] CurrentMemberAssignmentValue(StoredMemberAssignment a)
    {
        using var w = Value();
        w.WriteInt32(a.MemberEpoch);
        w.WriteInt32(a.PreviousMemberEpoch);
        w.WriteInt8((sbyte)a.State);
        WritePartitions(w, a.Assigned);
        WritePartitions(w, a.PendingRevocation);
        return Done(w);
    }

    public static StoredMemberAssignment ReadCurrentMemberAssignmentValue(ReadOnlyMemory<byte> data)
    {
        var r = ValueReader(data);
        var epoch = r.ReadInt32();
        var previous = r.ReadInt32();
        var state = (byte)r.ReadInt8();
        var assigned = ReadPartitions(ref r);
        var pending = ReadPartitions(ref r);
        return new StoredMemberAssignment(epoch, previous, state, assigned, pending);
    }

    public static byte[] RegularExpressionValue(StoredRegularExpression resolved)
    {
        using var w = Value();
        w.WriteArrayLength(resolved.Topics.Count, compact: true);
        foreach (var t in resolved.Topics) w.WriteString(t, compact: true);
        w.WriteInt64(resolved.Version);
        w.WriteInt64(resolved.TimestampMs);
        return Done(w);
    }

    public static StoredRegularExpression ReadRegularExpressionValue(ReadOnlyMemory<byte> data)
    {
        var r = ValueReader(data);
        var count = r.ReadArrayLength(compact: true);
        // A topic name takes at least a byte: a count beyond the bytes left is forged and must not size the list.
        var topics = new List<string>(Math.Clamp(count, 0, r.Remaining));
        for (var i = 0; i < count; i++) topics.Add(r.ReadString(compact: true));
        var version = r.ReadInt64();
        var timestamp = r.ReadInt64();
        return new StoredRegularExpression(topics, version, timestamp);
    }

    private static void WritePartitions(KafkaWriter w, Dictionary<Guid, SortedSet<int>> partitions)
    {
        var topics = partitions.Where(kv => kv.Value.Count > 0).OrderBy(kv => kv.Key).ToList();
        w.WriteArrayLength(topics.Count, compact: true);
        foreach (var (topicId, set) in topics)
        {
            w.WriteUuid(topicId);
            w.WriteArrayLength(set.Count, compact: true);
            foreach (var p in set) w.WriteInt32(p);
            w.WriteUnsignedVarInt(0);
        }
    }

    private static Dictionary<Guid, SortedSet<int>> ReadPartitions(ref KafkaReader r)
    {
        var result = new Dictionary<Guid, SortedSet<int>>();
        var count = r.ReadArrayLength(compact: true);
        for (var i = 0; i < count; i++)
        {
            var topicId = r.ReadUuid();
            var n = r.ReadArrayLength(compact: true);
            var set = new SortedSet<int>();
            for (var j = 0; j < n; j++) set.Add(r.ReadInt32());
            SkipTags(ref r);
            result[topicId] = set;
        }
        return result;
    }

    private static KafkaWriter Value()
    {
        var w = new KafkaWriter(128);
        w.WriteInt16(0);
        return w;
    }

    private static byte[] Done(KafkaWriter w)
    {
        w.WriteUnsignedVarInt(0); // no tagged fields
        return w.WrittenSpan.ToArray();
    }

    private static KafkaReader ValueReader(ReadOnlyMemory<byte> data)
    {
        var r = new KafkaReader(data);
        var version = r.ReadInt16();
        if (version != 0) throw new InvalidDataException($"consumer group record value version {version} is not supported");
        return r;
    }

    private static void SkipTags(ref KafkaReader r)
    {
        var count = r.ReadUnsignedVarInt();
        for (var i = 0; i < count; i++)
        {
            r.ReadUnsignedVarInt();
            r.SkipTaggedField();
        }
    }
}
