using System.Buffers.Binary;

namespace Tributary.Protocol.Records;

/// <summary>
/// A view over the 61-byte header of a Kafka record batch (magic 2). All fields are big-endian.
/// <code>
/// 0  baseOffset int64        8  batchLength int32 (bytes after this field)   12 partitionLeaderEpoch int32
/// 16 magic int8              17 crc uint32 (CRC-32C of bytes 21..end)          21 attributes int16
/// 23 lastOffsetDelta int32   27 baseTimestamp int64   35 maxTimestamp int64   43 producerId int64
/// 51 producerEpoch int16     53 baseSequence int32    57 recordsCount int32   61 records...
/// </code>
/// baseOffset and partitionLeaderEpoch lie outside the CRC, so the broker can assign offsets in place
/// without recomputing it.
/// </summary>
public readonly ref struct RecordBatchHeader
{
    public const int HeaderSize = 61;
    /// <summary>Bytes before the batch length field is counted: baseOffset + batchLength.</summary>
    public const int LogOverhead = 12;
    public const int BaseOffsetOffset = 0;
    public const int BatchLengthOffset = 8;
    public const int PartitionLeaderEpochOffset = 12;
    public const int MagicOffset = 16;
    public const int CrcOffset = 17;
    public const int AttributesOffset = 21;
    public const int LastOffsetDeltaOffset = 23;
    public const int BaseTimestampOffset = 27;
    public const int MaxTimestampOffset = 35;
    public const int ProducerIdOffset = 43;
    public const int ProducerEpochOffset = 51;
    public const int BaseSequenceOffset = 53;
    public const int RecordsCountOffset = 57;

    public const short CompressionCodecMask = 0x07;
    public const short TimestampTypeFlag = 0x08;
    public const short TransactionalFlag = 0x10;
    public const short ControlFlag = 0x20;

    private readonly ReadOnlySpan<byte> _bytes;

    /// <summary>Wraps <paramref name="bytes"/>, which must hold at least <see cref="HeaderSize"/> bytes.</summary>
    public RecordBatchHeader(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < HeaderSize)
        {
            throw new ArgumentException($"A record batch header needs {HeaderSize} bytes, got {bytes.Length}.", nameof(bytes));
        }

        _bytes = bytes;
    }

    public long BaseOffset => BinaryPrimitives.ReadInt64BigEndian(_bytes);
    public int BatchLength => BinaryPrimitives.ReadInt32BigEndian(_bytes[BatchLengthOffset..]);
    /// <summary>Total bytes of the batch including baseOffset and batchLength.</summary>
    public int TotalSize => BatchLength + LogOverhead;
    public int PartitionLeaderEpoch => BinaryPrimitives.ReadInt32BigEndian(_bytes[PartitionLeaderEpochOffset..]);
    public sbyte Magic => (sbyte)_bytes[MagicOffset];
    public uint Crc => BinaryPrimitives.ReadUInt32BigEndian(_bytes[CrcOffset..]);
    public short Attributes => BinaryPrimitives.ReadInt16BigEndian(_bytes[AttributesOffset..]);
    public CompressionCodec Codec => (CompressionCodec)(Attributes & CompressionCodecMask);
    public bool IsLogAppendTime => (Attributes & TimestampTypeFlag) != 0;
    public bool IsTransactional => (Attributes & TransactionalFlag) != 0;
    public bool IsControl => (Attributes & ControlFlag) != 0;
    public int LastOffsetDelta => BinaryPrimitives.ReadInt32BigEndian(_bytes[LastOffsetDeltaOffset..]);
    public long LastOffset => BaseOffset + LastOffsetDelta;
    public long BaseTimestamp => BinaryPrimitives.ReadInt64BigEndian(_bytes[BaseTimestampOffset..]);
    public long MaxTimestamp => BinaryPrimitives.ReadInt64BigEndian(_bytes[MaxTimestampOffset..]);
    public long ProducerId => BinaryPrimitives.ReadInt64BigEndian(_bytes[ProducerIdOffset..]);
    public short ProducerEpoch => BinaryPrimitives.ReadInt16BigEndian(_bytes[ProducerEpochOffset..]);
    public int BaseSequence => BinaryPrimitives.ReadInt32BigEndian(_bytes[BaseSequenceOffset..]);
    public int RecordsCount => BinaryPrimitives.ReadInt32BigEndian(_bytes[RecordsCountOffset..]);

    /// <summary>Reads the total batch size (batchLength + 12) from the first 12 bytes.</summary>
    public static int ReadTotalSize(ReadOnlySpan<byte> batch) =>
        BinaryPrimitives.ReadInt32BigEndian(batch[BatchLengthOffset..]) + LogOverhead;

    /// <summary>Computes the CRC the header should carry: CRC-32C over attributes..end of <paramref name="batch"/>.</summary>
    public static uint ComputeCrc(ReadOnlySpan<byte> batch) => Crc32C.Compute(batch[AttributesOffset..]);

    /// <summary>Writes baseOffset (outside the CRC).</summary>
    public static void SetBaseOffset(Span<byte> batch, long baseOffset) =>
        BinaryPrimitives.WriteInt64BigEndian(batch, baseOffset);

    /// <summary>Writes partitionLeaderEpoch (outside the CRC).</summary>
    public static void SetPartitionLeaderEpoch(Span<byte> batch, int epoch) =>
        BinaryPrimitives.WriteInt32BigEndian(batch[PartitionLeaderEpochOffset..], epoch);

    /// <summary>
    /// Marks the batch as LogAppendTime with <paramref name="timestamp"/> as its max timestamp, then
    /// recomputes the CRC over the whole batch (both fields are inside it). Only for topics configured
    /// with message.timestamp.type=LogAppendTime; <paramref name="batch"/> must be exactly one whole batch.
    /// </summary>
    public static void SetLogAppendTime(Span<byte> batch, long timestamp)
    {
        short attributes = BinaryPrimitives.ReadInt16BigEndian(batch[AttributesOffset..]);
        BinaryPrimitives.WriteInt16BigEndian(batch[AttributesOffset..], (short)(attributes | TimestampTypeFlag));
        BinaryPrimitives.WriteInt64BigEndian(batch[MaxTimestampOffset..], timestamp);
        BinaryPrimitives.WriteUInt32BigEndian(batch[CrcOffset..], ComputeCrc(batch));
    }
}
