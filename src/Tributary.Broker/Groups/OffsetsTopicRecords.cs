using Tributary.Protocol.Wire;

namespace Tributary.Broker.Groups;

/// <summary>A committed offset as Kafka stores it: offset, leader epoch (-1 unknown), metadata string, commit time.</summary>
public sealed record CommittedOffset(long Offset, int LeaderEpoch, string Metadata, long CommitTimestamp);

/// <summary>One member of a classic group as stored in GroupMetadataValue.</summary>
public sealed record StoredMember(
    string MemberId, string? GroupInstanceId, string ClientId, string ClientHost, int RebalanceTimeoutMs, int SessionTimeoutMs,
    byte[] Subscription, byte[] Assignment);

/// <summary>A classic group's metadata as stored in GroupMetadataValue.</summary>
public sealed record StoredGroup(
    string ProtocolType, int Generation, string? Protocol, string? Leader, long StateTimestamp, IReadOnlyList<StoredMember> Members);

/// <summary>
/// Keys and values of <c>__consumer_offsets</c> records in Kafka's own layouts, so the topic reads the same as
/// Kafka's (tools that decode it, a future migration). All integers big-endian; strings are int16 length + UTF-8,
/// nullable strings use length -1; bytes are int32 length + data.
/// <list type="bullet">
/// <item>OffsetCommitKey v1: version=1, group, topic, partition(int32).</item>
/// <item>OffsetCommitValue v3: version=3, offset(int64), leaderEpoch(int32), metadata, commitTimestamp(int64).
///   Read also v0 (offset, metadata, timestamp) and v1 (offset, metadata, commit ts, expire ts).</item>
/// <item>GroupMetadataKey v2: version=2, group.</item>
/// <item>GroupMetadataValue v3: version=3, protocolType, generation(int32), protocol?, leader?, currentStateTimestamp(int64),
///   members[int32 count]: memberId, groupInstanceId?, clientId, clientHost, rebalanceTimeout(int32), sessionTimeout(int32),
///   subscription(bytes), assignment(bytes).</item>
/// </list>
/// Key versions 3–8 and 16 are the records of KIP-848 consumer groups (<see cref="ConsumerGroupRecords"/>).
/// A record with a null value is a tombstone: the offset or group is deleted (compaction removes it for good).
/// Readers throw on a malformed record (<see cref="ProtocolException"/> when it ends early, <see cref="InvalidDataException"/>
/// for an unknown value version); replay skips such a record.
/// </summary>
public static class OffsetsTopicRecords
{
    public abstract record Key(string Group);
    public sealed record OffsetKey(string Group, string Topic, int Partition) : Key(Group);
    public sealed record GroupKey(string Group) : Key(Group);

    /// <summary>
    /// A KIP-848 consumer group record (key versions 3–8 and 16, <see cref="ConsumerGroupRecords"/>); <paramref name="MemberId"/>
    /// is the key's second string: the member id of member records, the regular expression of 16.
    /// </summary>
    public sealed record ConsumerKey(string Group, short Type, string? MemberId) : Key(Group);

    public static byte[] OffsetCommitKey(string group, string topic, int partition)
    {
        using var w = new KafkaWriter(64);
        w.WriteInt16(1);
        w.WriteString(group, compact: false);
        w.WriteString(topic, compact: false);
        w.WriteInt32(partition);
        return w.WrittenSpan.ToArray();
    }

    public static byte[] OffsetCommitValue(CommittedOffset offset)
    {
        using var w = new KafkaWriter(64);
        w.WriteInt16(3);
        w.WriteInt64(offset.Offset);
        w.WriteInt32(offset.LeaderEpoch);
        w.WriteString(offset.Metadata, compact: false);
        w.WriteInt64(offset.CommitTimestamp);
        return w.WrittenSpan.ToArray();
    }

    public static byte[] GroupMetadataKey(string group)
    {
        using var w = new KafkaWriter(64);
        w.WriteInt16(2);
        w.WriteString(group, compact: false);
        return w.WrittenSpan.ToArray();
    }

    public static byte[] GroupMetadataValue(StoredGroup group)
    {
        using var w = new KafkaWriter(64);
        w.WriteInt16(3);
        w.WriteString(group.ProtocolType, compact: false);
        w.WriteInt32(group.Generation);
        w.WriteNullableString(group.Protocol, compact: false);
        w.WriteNullableString(group.Leader, compact: false);
        w.WriteInt64(group.StateTimestamp);
        w.WriteInt32(group.Members.Count);
        foreach (var m in group.Members)
        {
            w.WriteString(m.MemberId, compact: false);
            w.WriteNullableString(m.GroupInstanceId, compact: false);
            w.WriteString(m.ClientId, compact: false);
            w.WriteString(m.ClientHost, compact: false);
            w.WriteInt32(m.RebalanceTimeoutMs);
            w.WriteInt32(m.SessionTimeoutMs);
            w.WriteBytes(m.Subscription, compact: false);
            w.WriteBytes(m.Assignment, compact: false);
        }
        return w.WrittenSpan.ToArray();
    }

    /// <summary>Decodes a key; null for key versions this broker does not know (Kafka's other record types), which replay skips.</summary>
    public static Key? ReadKey(ReadOnlyMemory<byte> data)
    {
        var r = new KafkaReader(data);
        var version = r.ReadInt16();
        switch (version)
        {
            case 0 or 1:
                var group = String(ref r);
                var topic = String(ref r);
                return new OffsetKey(group, topic, r.ReadInt32());
            case 2:
                return new GroupKey(String(ref r));
            case >= ConsumerGroupRecords.GroupMetadata and <= ConsumerGroupRecords.CurrentMemberAssignment or ConsumerGroupRecords.RegularExpression:
                var consumerGroup = String(ref r);
                return new ConsumerKey(consumerGroup, version, ConsumerGroupRecords.HasSecondKey(version) ? String(ref r) : null);
            default:
                return null;
        }
    }

    public static CommittedOffset ReadOffsetValue(ReadOnlyMemory<byte> data)
    {
        var r = new KafkaReader(data);
        var version = r.ReadInt16();
        switch (version)
        {
            case 0:
                return new CommittedOffset(r.ReadInt64(), -1, String(ref r), r.ReadInt64());
            case 1:
                var offset = r.ReadInt64();
                var metadata = String(ref r);
                return new CommittedOffset(offset, -1, metadata, r.ReadInt64());
            case 2:
                var o2 = r.ReadInt64();
                var m2 = String(ref r);
                return new CommittedOffset(o2, -1, m2, r.ReadInt64());
            case 3:
                var o3 = r.ReadInt64();
                var epoch = r.ReadInt32();
                var m3 = String(ref r);
                return new CommittedOffset(o3, epoch, m3, r.ReadInt64());
            default:
                throw new InvalidDataException($"OffsetCommitValue version {version} is not supported");
        }
    }

    public static StoredGroup ReadGroupValue(ReadOnlyMemory<byte> data)
    {
        var r = new KafkaReader(data);
        var version = r.ReadInt16();
        if (version is < 0 or > 3) throw new InvalidDataException($"GroupMetadataValue version {version} is not supported");
        var protocolType = String(ref r);
        var generation = r.ReadInt32();
        var protocol = NullableString(ref r);
        var leader = NullableString(ref r);
        var stateTimestamp = version >= 2 ? r.ReadInt64() : -1;
        var count = r.ReadInt32();
        // A member takes several bytes: a count beyond the bytes left is forged, and must not size the list (it fails below).
        var members = new List<StoredMember>(Math.Clamp(count, 0, r.Remaining));
        for (var i = 0; i < count; i++)
        {
            var memberId = String(ref r);
            var instanceId = version >= 3 ? NullableString(ref r) : null;
            var clientId = String(ref r);
            var clientHost = String(ref r);
            var rebalanceTimeout = version >= 1 ? r.ReadInt32() : -1;
            var sessionTimeout = r.ReadInt32();
            if (rebalanceTimeout < 0) rebalanceTimeout = sessionTimeout;
            members.Add(new StoredMember(memberId, instanceId, clientId, clientHost, rebalanceTimeout, sessionTimeout, Bytes(ref r), Bytes(ref r)));
        }
        return new StoredGroup(protocolType, generation, protocol, leader, stateTimestamp, members);
    }

    /// <summary>Kafka's partition for a group: abs(Java String.hashCode) mod partition count, so a group lands where Kafka puts it.</summary>
    public static int PartitionFor(string group, int partitions)
    {
        var h = 0;
        foreach (var c in group) h = unchecked((31 * h) + c);
        return (h & 0x7fffffff) % partitions;
    }

    // Kafka's classic (int16-length) strings and int32-length bytes, read as this codec always has: any negative string
    // length is null ("" where the field is not nullable), any negative bytes length an empty array. KafkaReader
    // itself rejects lengths below -1, so the length is peeked first.

    private static string String(ref KafkaReader r) => NullableString(ref r) ?? "";

    private static string? NullableString(ref KafkaReader r)
    {
        var peek = r;
        if (peek.ReadInt16() >= 0) return r.ReadNullableString(compact: false);
        r = peek;
        return null;
    }

    private static byte[] Bytes(ref KafkaReader r)
    {
        var peek = r;
        if (peek.ReadInt32() >= 0) return r.ReadBytes(compact: false);
        r = peek;
        return [];
    }
}
