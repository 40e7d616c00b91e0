using System.Buffers.Binary;
using System.Text;

namespace Tributary.Broker.Transactions;

/// <summary>
/// Records of <c>__transaction_state</c>, one per change of a transactional id (the topic is compacted: the last
/// record per key is the state; a null value removes the id).
///
/// Key: int16 version 0, string transactional id (Kafka's TransactionLogKey layout). Value (Tributary's own layout,
/// version 0; Kafka tools never read this topic): int64 producer id, int64 last producer id, int16 epoch, int16 last
/// epoch, int32 timeout ms, int8 state, int64 start time, int64 last update, then int32 count + (string topic, int32
/// partition) for the partitions, int32 count + string for the groups, and int32 count + (string group, string
/// topic, int32 partition, int64 offset, int32 leader epoch, nullable string metadata) for staged offsets. Strings
/// are int16 length + UTF-8 (-1 for null).
/// </summary>
public static class TransactionStateRecords
{
    public static byte[] Key(string transactionalId)
    {
        var w = new Writer();
        w.I16(0);
        w.Str(transactionalId);
        return w.ToArray();
    }

    public static string? ReadKey(ReadOnlySpan<byte> key)
    {
        var r = new Reader(key.ToArray());
        return r.I16() == 0 ? r.Str() : null;
    }

    public static byte[] Value(TransactionMetadata m)
    {
        var w = new Writer();
        w.I16(0);
        w.I64(m.ProducerId);
        w.I64(m.LastProducerId);
        w.I16(m.Epoch);
        w.I16(m.LastEpoch);
        w.I32(m.TimeoutMs);
        w.I8((byte)m.State);
        w.I64(m.StartTimeMs);
        w.I64(m.LastUpdateMs);
        w.I32(m.Partitions.Count);
        foreach (var (topic, partition) in m.Partitions)
        {
            w.Str(topic);
            w.I32(partition);
        }
        w.I32(m.Groups.Count);
        foreach (var g in m.Groups) w.Str(g);
        w.I32(m.PendingOffsets.Count);
        foreach (var o in m.PendingOffsets.Values)
        {
            w.Str(o.Group);
            w.Str(o.Topic);
            w.I32(o.Partition);
            w.I64(o.Offset);
            w.I32(o.LeaderEpoch);
            w.Str(o.Metadata);
        }
        return w.ToArray();
    }

    public static TransactionMetadata ReadValue(string transactionalId, ReadOnlySpan<byte> value)
    {
        var r = new Reader(value.ToArray());
        if (r.I16() != 0) throw new InvalidDataException("unknown __transaction_state value version");
        var m = new TransactionMetadata(transactionalId)
        {
            ProducerId = r.I64(),
            LastProducerId = r.I64(),
            Epoch = r.I16(),
            LastEpoch = r.I16(),
            TimeoutMs = r.I32(),
            State = (TransactionState)r.I8(),
            StartTimeMs = r.I64(),
            LastUpdateMs = r.I64(),
        };
        for (int i = r.I32(); i > 0; i--) m.Partitions.Add((r.Str()!, r.I32()));
        for (int i = r.I32(); i > 0; i--) m.Groups.Add(r.Str()!);
        for (int i = r.I32(); i > 0; i--)
        {
            var o = new PendingTxnOffset(r.Str()!, r.Str()!, r.I32(), r.I64(), r.I32(), r.Str());
            m.PendingOffsets[(o.Group, o.Topic, o.Partition)] = o;
        }
        return m;
    }

    /// <summary>Kafka's choice of partition: Java's String.hashCode, made non-negative, modulo the partition count.</summary>
    public static int PartitionFor(string transactionalId, int partitions)
    {
        int hash = 0;
        foreach (var c in transactionalId) hash = unchecked(31 * hash + c);
        return (hash & 0x7fffffff) % partitions;
    }

    private sealed class Writer
    {
        private readonly MemoryStream _s = new();
        private readonly byte[] _b = new byte[8];
        public void I8(byte v) => _s.WriteByte(v);
        public void I16(short v) { BinaryPrimitives.WriteInt16BigEndian(_b, v); _s.Write(_b, 0, 2); }
        public void I32(int v) { BinaryPrimitives.WriteInt32BigEndian(_b, v); _s.Write(_b, 0, 4); }
        public void I64(long v) { BinaryPrimitives.WriteInt64BigEndian(_b, v); _s.Write(_b, 0, 8); }
        public void Str(string? v)
        {
            if (v is null) { I16(-1); return; }
            var bytes = Encoding.UTF8.GetBytes(v);
            I16((short)bytes.Length);
            _s.Write(bytes);
        }
        public byte[] ToArray() => _s.ToArray();
    }

    private sealed class Reader(byte[] data)
    {
        private int _p;
        public byte I8() => data[_p++];
        public short I16() { var v = BinaryPrimitives.ReadInt16BigEndian(data.AsSpan(_p)); _p += 2; return v; }
        public int I32() { var v = BinaryPrimitives.ReadInt32BigEndian(data.AsSpan(_p)); _p += 4; return v; }
        public long I64() { var v = BinaryPrimitives.ReadInt64BigEndian(data.AsSpan(_p)); _p += 8; return v; }
        public string? Str()
        {
            var n = I16();
            if (n < 0) return null;
            var s = Encoding.UTF8.GetString(data, _p, n);
            _p += n;
            return s;
        }
    }
}
