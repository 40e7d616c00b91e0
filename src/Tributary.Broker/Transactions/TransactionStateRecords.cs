using Tributary.Protocol.Wire;

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
///
/// The groups and staged offsets are what this coordinator kept before TxnOffsetCommit moved to the group
/// coordinator (KIP-98's layout: a group's partition of <c>__consumer_offsets</c> is one of the transaction's
/// partitions, and its offsets wait there for the marker). They are written empty now, so an older broker still reads
/// the records, and read for compatibility: each group becomes its partition of <c>__consumer_offsets</c> among the
/// transaction's partitions (when <see cref="ReadValue"/> is told the partition count), so an open transaction that
/// spans the upgrade still gets its marker there; its staged offsets are ignored — they were never written to
/// <c>__consumer_offsets</c>, so only a transaction decided but not finished before the upgrade loses them, and its
/// consumer then reads that transaction's input once more.
/// Readers throw on a malformed record (<see cref="ProtocolException"/> when it ends early); replay skips such a record.
/// </summary>
public static class TransactionStateRecords
{
    public static byte[] Key(string transactionalId)
    {
        using var w = new KafkaWriter(64);
        w.WriteInt16(0);
        w.WriteString(transactionalId, compact: false);
        return w.WrittenSpan.ToArray();
    }

    public static string? ReadKey(ReadOnlyMemory<byte> key)
    {
        var r = new KafkaReader(key);
        return r.ReadInt16() == 0 ? Str(ref r) : null;
    }

    public static byte[] Value(TransactionMetadata m)
    {
        using var w = new KafkaWriter(64);
        w.WriteInt16(0);
        w.WriteInt64(m.ProducerId);
        w.WriteInt64(m.LastProducerId);
        w.WriteInt16(m.Epoch);
        w.WriteInt16(m.LastEpoch);
        w.WriteInt32(m.TimeoutMs);
        w.WriteInt8((sbyte)m.State);
        w.WriteInt64(m.StartTimeMs);
        w.WriteInt64(m.LastUpdateMs);
        w.WriteInt32(m.Partitions.Count);
        foreach (var (topic, partition) in m.Partitions)
        {
            w.WriteString(topic, compact: false);
            w.WriteInt32(partition);
        }
        w.WriteInt32(0); // groups (read for compatibility only)
        w.WriteInt32(0); // staged offsets (read for compatibility only)
        return w.WrittenSpan.ToArray();
    }

    /// <param name="offsetsPartitionFor">The group coordinator's partition of a group: groups of older records join the transaction's partitions.</param>
    public static TransactionMetadata ReadValue(string transactionalId, ReadOnlyMemory<byte> value, Func<string, int>? offsetsPartitionFor = null)
    {
        var r = new KafkaReader(value);
        if (r.ReadInt16() != 0) throw new InvalidDataException("unknown __transaction_state value version");
        var m = new TransactionMetadata(transactionalId)
        {
            ProducerId = r.ReadInt64(),
            LastProducerId = r.ReadInt64(),
            Epoch = r.ReadInt16(),
            LastEpoch = r.ReadInt16(),
            TimeoutMs = r.ReadInt32(),
            State = (TransactionState)(byte)r.ReadInt8(),
            StartTimeMs = r.ReadInt64(),
            LastUpdateMs = r.ReadInt64(),
        };
        for (int i = r.ReadInt32(); i > 0; i--) m.Partitions.Add((Str(ref r)!, r.ReadInt32()));
        for (int i = r.ReadInt32(); i > 0; i--)
        {
            var group = Str(ref r)!;
            if (offsetsPartitionFor is not null && m.State is TransactionState.Ongoing or TransactionState.PrepareCommit or TransactionState.PrepareAbort)
                m.Partitions.Add((Groups.GroupSettings.OffsetsTopic, offsetsPartitionFor(group)));
        }
        for (int i = r.ReadInt32(); i > 0; i--)
        {
            // A staged offset of an older record (group, topic, partition, offset, leader epoch, metadata): ignored.
            _ = (Str(ref r), Str(ref r), r.ReadInt32(), r.ReadInt64(), r.ReadInt32(), Str(ref r));
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

    /// <summary>An int16-length string; any negative length is null, as this codec always read it (KafkaReader itself
    /// rejects lengths below -1, so the length is peeked first).</summary>
    private static string? Str(ref KafkaReader r)
    {
        var peek = r;
        if (peek.ReadInt16() >= 0) return r.ReadNullableString(compact: false);
        r = peek;
        return null;
    }
}
