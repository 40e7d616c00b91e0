using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Tributary.Protocol.Records;

/// <summary>
/// Builds one valid magic-2 record batch from records, with any codec. Used by tests and for the broker's
/// own records (internal topics, control batches). Base offset defaults to 0: the log assigns the real one.
/// </summary>
public sealed class RecordBatchBuilder
{
    private readonly ArrayBufferWriter<byte> _records = new();
    private long _baseTimestamp = -1;
    private long _maxTimestamp = -1;
    private int _count;

    public CompressionCodec Codec { get; init; } = CompressionCodec.None;
    /// <summary>Use xerial framing for snappy, as the Java client does.</summary>
    public bool XerialSnappy { get; init; }
    public long BaseOffset { get; init; }
    public int PartitionLeaderEpoch { get; init; } = -1;
    public long ProducerId { get; init; } = -1;
    public short ProducerEpoch { get; init; } = -1;
    public int BaseSequence { get; init; } = -1;
    public bool IsTransactional { get; init; }
    public bool IsControl { get; init; }
    public bool LogAppendTime { get; init; }

    public int Count => _count;

    public RecordBatchBuilder Add(long timestamp, ReadOnlySpan<byte> value) => Add(timestamp, null, value.ToArray(), null);

    public RecordBatchBuilder Add(long timestamp, byte[]? key, byte[]? value, IReadOnlyList<RecordHeader>? headers = null)
    {
        if (_count == 0)
        {
            _baseTimestamp = timestamp;
        }

        _maxTimestamp = Math.Max(_maxTimestamp, timestamp);
        long timestampDelta = timestamp - _baseTimestamp;
        int bodySize = 1 + RecordVarint.SizeOf(timestampDelta) + RecordVarint.SizeOf(_count)
            + FieldSize(key) + FieldSize(value) + RecordVarint.SizeOf(headers?.Count ?? 0);
        if (headers is not null)
        {
            foreach (var header in headers)
            {
                bodySize += FieldSize(Encoding.UTF8.GetBytes(header.Key)) + FieldSize(header.Value?.ToArray());
            }
        }

        var span = _records.GetSpan(bodySize + 5);
        int p = RecordVarint.Write(span, bodySize);
        span[p++] = 0;
        p += RecordVarint.Write(span[p..], timestampDelta);
        p += RecordVarint.Write(span[p..], _count);
        p += WriteField(span[p..], key);
        p += WriteField(span[p..], value);
        p += RecordVarint.Write(span[p..], headers?.Count ?? 0);
        if (headers is not null)
        {
            foreach (var header in headers)
            {
                p += WriteField(span[p..], Encoding.UTF8.GetBytes(header.Key));
                p += WriteField(span[p..], header.Value?.ToArray());
            }
        }

        _records.Advance(p);
        _count++;
        return this;
    }

    public byte[] Build()
    {
        if (_count == 0)
        {
            throw new InvalidOperationException("A record batch needs at least one record.");
        }

        byte[] body = Codec == CompressionCodec.None
            ? _records.WrittenSpan.ToArray()
            : CompressionCodecs.Compress(Codec, _records.WrittenSpan, XerialSnappy);
        var batch = new byte[RecordBatchHeader.HeaderSize + body.Length];
        var span = batch.AsSpan();
        short attributes = (short)((int)Codec
            | (LogAppendTime ? RecordBatchHeader.TimestampTypeFlag : 0)
            | (IsTransactional ? RecordBatchHeader.TransactionalFlag : 0)
            | (IsControl ? RecordBatchHeader.ControlFlag : 0));
        BinaryPrimitives.WriteInt64BigEndian(span, BaseOffset);
        BinaryPrimitives.WriteInt32BigEndian(span[RecordBatchHeader.BatchLengthOffset..], batch.Length - RecordBatchHeader.LogOverhead);
        BinaryPrimitives.WriteInt32BigEndian(span[RecordBatchHeader.PartitionLeaderEpochOffset..], PartitionLeaderEpoch);
        span[RecordBatchHeader.MagicOffset] = 2;
        BinaryPrimitives.WriteInt16BigEndian(span[RecordBatchHeader.AttributesOffset..], attributes);
        BinaryPrimitives.WriteInt32BigEndian(span[RecordBatchHeader.LastOffsetDeltaOffset..], _count - 1);
        BinaryPrimitives.WriteInt64BigEndian(span[RecordBatchHeader.BaseTimestampOffset..], _baseTimestamp);
        BinaryPrimitives.WriteInt64BigEndian(span[RecordBatchHeader.MaxTimestampOffset..], _maxTimestamp);
        BinaryPrimitives.WriteInt64BigEndian(span[RecordBatchHeader.ProducerIdOffset..], ProducerId);
        BinaryPrimitives.WriteInt16BigEndian(span[RecordBatchHeader.ProducerEpochOffset..], ProducerEpoch);
        BinaryPrimitives.WriteInt32BigEndian(span[RecordBatchHeader.BaseSequenceOffset..], BaseSequence);
        BinaryPrimitives.WriteInt32BigEndian(span[RecordBatchHeader.RecordsCountOffset..], _count);
        body.CopyTo(span[RecordBatchHeader.HeaderSize..]);
        BinaryPrimitives.WriteUInt32BigEndian(span[RecordBatchHeader.CrcOffset..], RecordBatchHeader.ComputeCrc(span));
        return batch;
    }

    private static int FieldSize(byte[]? bytes) => bytes is null ? RecordVarint.SizeOf(-1) : RecordVarint.SizeOf(bytes.Length) + bytes.Length;

    private static int WriteField(Span<byte> span, byte[]? bytes)
    {
        if (bytes is null)
        {
            return RecordVarint.Write(span, -1);
        }

        int p = RecordVarint.Write(span, bytes.Length);
        bytes.CopyTo(span[p..]);
        return p + bytes.Length;
    }
}
