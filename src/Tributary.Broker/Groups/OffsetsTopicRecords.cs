using System.Buffers.Binary;
using System.Text;

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
/// Key versions 3–8 are the records of KIP-848 consumer groups (<see cref="ConsumerGroupRecords"/>).
/// A record with a null value is a tombstone: the offset or group is deleted (compaction removes it for good).
/// </summary>
public static class OffsetsTopicRecords
{
    public abstract record Key(string Group);
    public sealed record OffsetKey(string Group, string Topic, int Partition) : Key(Group);
    public sealed record GroupKey(string Group) : Key(Group);

    /// <summary>A KIP-848 consumer group record (key versions 3–8, <see cref="ConsumerGroupRecords"/>); member id for member records.</summary>
    public sealed record ConsumerKey(string Group, short Type, string? MemberId) : Key(Group);

    public static byte[] OffsetCommitKey(string group, string topic, int partition)
    {
        var w = new Writer();
        w.Int16(1);
        w.String(group);
        w.String(topic);
        w.Int32(partition);
        return w.ToArray();
    }

    public static byte[] OffsetCommitValue(CommittedOffset offset)
    {
        var w = new Writer();
        w.Int16(3);
        w.Int64(offset.Offset);
        w.Int32(offset.LeaderEpoch);
        w.String(offset.Metadata);
        w.Int64(offset.CommitTimestamp);
        return w.ToArray();
    }

    public static byte[] GroupMetadataKey(string group)
    {
        var w = new Writer();
        w.Int16(2);
        w.String(group);
        return w.ToArray();
    }

    public static byte[] GroupMetadataValue(StoredGroup group)
    {
        var w = new Writer();
        w.Int16(3);
        w.String(group.ProtocolType);
        w.Int32(group.Generation);
        w.NullableString(group.Protocol);
        w.NullableString(group.Leader);
        w.Int64(group.StateTimestamp);
        w.Int32(group.Members.Count);
        foreach (var m in group.Members)
        {
            w.String(m.MemberId);
            w.NullableString(m.GroupInstanceId);
            w.String(m.ClientId);
            w.String(m.ClientHost);
            w.Int32(m.RebalanceTimeoutMs);
            w.Int32(m.SessionTimeoutMs);
            w.Bytes(m.Subscription);
            w.Bytes(m.Assignment);
        }
        return w.ToArray();
    }

    /// <summary>Decodes a key; null for key versions this broker does not know (Kafka's other record types), which replay skips.</summary>
    public static Key? ReadKey(ReadOnlySpan<byte> data)
    {
        var r = new Reader(data);
        var version = r.Int16();
        switch (version)
        {
            case 0 or 1:
                var group = r.String();
                var topic = r.String();
                return new OffsetKey(group, topic, r.Int32());
            case 2:
                return new GroupKey(r.String());
            case >= ConsumerGroupRecords.GroupMetadata and <= ConsumerGroupRecords.CurrentMemberAssignment:
                var consumerGroup = r.String();
                return new ConsumerKey(consumerGroup, version, ConsumerGroupRecords.IsMemberRecord(version) ? r.String() : null);
            default:
                return null;
        }
    }

    public static CommittedOffset ReadOffsetValue(ReadOnlySpan<byte> data)
    {
        var r = new Reader(data);
        var version = r.Int16();
        switch (version)
        {
            case 0:
                return new CommittedOffset(r.Int64(), -1, r.String(), r.Int64());
            case 1:
                var offset = r.Int64();
                var metadata = r.String();
                return new CommittedOffset(offset, -1, metadata, r.Int64());
            case 2:
                var o2 = r.Int64();
                var m2 = r.String();
                return new CommittedOffset(o2, -1, m2, r.Int64());
            case 3:
                var o3 = r.Int64();
                var epoch = r.Int32();
                var m3 = r.String();
                return new CommittedOffset(o3, epoch, m3, r.Int64());
            default:
                throw new InvalidDataException($"OffsetCommitValue version {version} is not supported");
        }
    }

    public static StoredGroup ReadGroupValue(ReadOnlySpan<byte> data)
    {
        var r = new Reader(data);
        var version = r.Int16();
        if (version is < 0 or > 3) throw new InvalidDataException($"GroupMetadataValue version {version} is not supported");
        var protocolType = r.String();
        var generation = r.Int32();
        var protocol = r.NullableString();
        var leader = r.NullableString();
        var stateTimestamp = version >= 2 ? r.Int64() : -1;
        var count = r.Int32();
        var members = new List<StoredMember>(Math.Max(0, count));
        for (var i = 0; i < count; i++)
        {
            var memberId = r.String();
            var instanceId = version >= 3 ? r.NullableString() : null;
            var clientId = r.String();
            var clientHost = r.String();
            var rebalanceTimeout = version >= 1 ? r.Int32() : -1;
            var sessionTimeout = r.Int32();
            if (rebalanceTimeout < 0) rebalanceTimeout = sessionTimeout;
            members.Add(new StoredMember(memberId, instanceId, clientId, clientHost, rebalanceTimeout, sessionTimeout, r.Bytes(), r.Bytes()));
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

    private sealed class Writer
    {
        private readonly MemoryStream _stream = new();

        public void Int16(short v) { Span<byte> b = stackalloc byte[2]; BinaryPrimitives.WriteInt16BigEndian(b, v); _stream.Write(b); }
        public void Int32(int v) { Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteInt32BigEndian(b, v); _stream.Write(b); }
        public void Int64(long v) { Span<byte> b = stackalloc byte[8]; BinaryPrimitives.WriteInt64BigEndian(b, v); _stream.Write(b); }

        public void String(string v)
        {
            var bytes = Encoding.UTF8.GetBytes(v);
            Int16(checked((short)bytes.Length));
            _stream.Write(bytes);
        }

        public void NullableString(string? v)
        {
            if (v is null) Int16(-1);
            else String(v);
        }

        public void Bytes(byte[] v)
        {
            Int32(v.Length);
            _stream.Write(v);
        }

        public byte[] ToArray() => _stream.ToArray();
    }

    private ref struct Reader(ReadOnlySpan<byte> data)
    {
        private readonly ReadOnlySpan<byte> _data = data;
        private int _position;

        public short Int16() { var v = BinaryPrimitives.ReadInt16BigEndian(_data[_position..]); _position += 2; return v; }
        public int Int32() { var v = BinaryPrimitives.ReadInt32BigEndian(_data[_position..]); _position += 4; return v; }
        public long Int64() { var v = BinaryPrimitives.ReadInt64BigEndian(_data[_position..]); _position += 8; return v; }

        public string String() => NullableString() ?? "";

        public string? NullableString()
        {
            var length = Int16();
            if (length < 0) return null;
            var s = Encoding.UTF8.GetString(_data.Slice(_position, length));
            _position += length;
            return s;
        }

        public byte[] Bytes()
        {
            var length = Int32();
            if (length < 0) return [];
            var b = _data.Slice(_position, length).ToArray();
            _position += length;
            return b;
        }
    }
}
