using System.Buffers.Binary;
using System.IO.Hashing;

namespace Tributary.Protocol.Records;

/// <summary>
/// Kafka's message formats before record batches, for the clients that still send and read them (Produce v0-2, Fetch
/// v0-3): a message set is a run of [offset int64][size int32][message], a message [crc uint32][magic int8]
/// [attributes int8][timestamp int64, magic 1 only][key bytes][value bytes], its CRC-32 (IEEE) over magic to the end.
/// Attributes hold the codec (bits 0-2) and, in magic 1, the timestamp type (bit 3). A compressed message is a wrapper
/// whose value is a compressed message set of uncompressed messages (in magic 1, with offsets relative to the first).
/// <para>
/// The log holds only record batches, as Kafka 3's does: a produced message set becomes one batch (the broker assigns
/// offsets; magic 0 has no timestamp, so its records carry -1; a compressed set keeps its codec), and a fetch by an old
/// version gets its batches written back as messages of the magic that version reads (v0-1: magic 0, v2-3: magic 1),
/// uncompressed, without headers or control records.
/// </para>
/// </summary>
public static class LegacyMessageSet
{
    private const int OffsetAndSize = 12;
    private const int CodecMask = 0x07;
    private const int LogAppendTimeFlag = 0x08;

    /// <summary>crc, magic, attributes, key length, value length; magic 1 adds the timestamp.</summary>
    private static int MinimumSize(byte magic) => magic == 0 ? 14 : 22;

    /// <summary>The magic of the first entry of a produce request's records (offset 16), or -1 when too short to say.</summary>
    public static int MagicOf(ReadOnlySpan<byte> records) => records.Length > 16 ? records[16] : -1;

    /// <summary>
    /// One record batch (base offset 0: the log assigns offsets) holding every message of <paramref name="messageSet"/>.
    /// </summary>
    /// <param name="maxDecompressedBytes">Bound on what a compressed wrapper's value may expand to.</param>
    /// <exception cref="CorruptMessageException">A message whose CRC, size or fields do not hold.</exception>
    /// <exception cref="InvalidRecordException">A message set that cannot be a produce request's (empty, nested compression, magic 2).</exception>
    public static byte[] ToRecordBatch(ReadOnlySpan<byte> messageSet, int maxDecompressedBytes)
    {
        var records = new List<(long Timestamp, byte[]? Key, byte[]? Value)>();
        var codec = CompressionCodec.None;
        foreach (var message in Messages(messageSet))
        {
            if (message.Codec == CompressionCodec.None)
            {
                records.Add((message.Timestamp, message.Key, message.Value));
                continue;
            }
            if (message.Value is null) throw new CorruptMessageException("A compressed message has no value.");
            codec = message.Codec;
            using var inner = CompressionCodecs.DecompressPooled(message.Codec, message.Value, maxDecompressedBytes);
            foreach (var m in Messages(inner.Span))
            {
                if (m.Codec != CompressionCodec.None) throw new InvalidRecordException("Compressed outer record has an inner record that is compressed.");
                // A wrapper stamped with the log append time gives it to its messages, as Kafka's reader does.
                records.Add((message.Magic == 1 && message.LogAppendTime ? message.Timestamp : m.Timestamp, m.Key, m.Value));
            }
        }
        if (records.Count == 0) throw new InvalidRecordException("The message set holds no message.");
        var builder = new RecordBatchBuilder { Codec = codec, XerialSnappy = codec == CompressionCodec.Snappy };
        foreach (var (timestamp, key, value) in records) builder.Add(timestamp, key, value);
        return builder.Build();
    }

    /// <summary>
    /// The records of whole batches in <paramref name="batches"/> as uncompressed messages of <paramref name="magic"/>,
    /// control batches left out; a partial batch at the end is ignored. Stops before the message that would take the
    /// output past <paramref name="maxBytes"/>, but always writes the first, so an old consumer progresses.
    /// </summary>
    /// <exception cref="InvalidRecordException">A stored batch that cannot be decoded.</exception>
    public static byte[] FromRecordBatches(ReadOnlyMemory<byte> batches, byte magic, int maxBytes, int maxDecompressedBytes)
    {
        var output = new System.Buffers.ArrayBufferWriter<byte>(Math.Min(Math.Max(batches.Length, 256), Math.Max(maxBytes, 256)));
        var position = 0;
        while (batches.Length - position >= RecordBatchHeader.HeaderSize)
        {
            var header = new RecordBatchHeader(batches.Span[position..]);
            var size = header.TotalSize;
            if (size < RecordBatchHeader.HeaderSize || size > batches.Length - position) break;
            var batch = batches.Slice(position, size);
            position += size;
            if (header.Magic != 2 || header.IsControl) continue;
            var reader = new RecordReader(batch, maxDecompressedBytes);
            var timestampType = header.IsLogAppendTime ? LogAppendTimeFlag : 0;
            while (reader.TryRead(out var record))
            {
                var key = record.Key.HasValue ? record.Key.Value.Span : default;
                var value = record.Value.HasValue ? record.Value.Value.Span : default;
                var messageSize = MinimumSize(magic) + key.Length + value.Length;
                if (output.WrittenCount > 0 && output.WrittenCount + OffsetAndSize + messageSize > maxBytes) return output.WrittenSpan.ToArray();
                var span = output.GetSpan(OffsetAndSize + messageSize);
                BinaryPrimitives.WriteInt64BigEndian(span, record.Offset);
                BinaryPrimitives.WriteInt32BigEndian(span[8..], messageSize);
                var message = span.Slice(OffsetAndSize, messageSize);
                var p = 4;
                message[p++] = magic;
                message[p++] = (byte)(magic == 1 ? timestampType : 0);
                if (magic == 1)
                {
                    BinaryPrimitives.WriteInt64BigEndian(message[p..], record.Timestamp);
                    p += 8;
                }
                p += WriteBytes(message[p..], record.Key is null, key);
                WriteBytes(message[p..], record.Value is null, value);
                BinaryPrimitives.WriteUInt32BigEndian(message, Crc32.HashToUInt32(message[4..]));
                output.Advance(OffsetAndSize + messageSize);
            }
        }
        return output.WrittenSpan.ToArray();
    }

    private static int WriteBytes(Span<byte> target, bool isNull, ReadOnlySpan<byte> bytes)
    {
        BinaryPrimitives.WriteInt32BigEndian(target, isNull ? -1 : bytes.Length);
        bytes.CopyTo(target[4..]);
        return 4 + bytes.Length;
    }

    private readonly record struct Message(byte Magic, CompressionCodec Codec, bool LogAppendTime, long Timestamp, byte[]? Key, byte[]? Value);

    /// <summary>The messages of a set, each checked (size, CRC, magic 0 or 1, key and value within the message).</summary>
    private static List<Message> Messages(ReadOnlySpan<byte> set)
    {
        var messages = new List<Message>();
        var position = 0;
        while (position < set.Length)
        {
            if (set.Length - position < OffsetAndSize) throw new CorruptMessageException("A message set ends inside a message's offset and size.");
            var size = BinaryPrimitives.ReadInt32BigEndian(set[(position + 8)..]);
            if (size < MinimumSize(0) || size > set.Length - position - OffsetAndSize)
                throw new CorruptMessageException($"Message size {size} does not fit the message set.");
            var message = set.Slice(position + OffsetAndSize, size);
            position += OffsetAndSize + size;
            var magic = message[4];
            if (magic > 1) throw new InvalidRecordException($"A message set of magic {magic}: only magic 0 and 1 are message sets; magic 2 is a record batch (Produce v3 and later).");
            if (size < MinimumSize(magic)) throw new CorruptMessageException($"Message size {size} is less than a magic {magic} message's minimum.");
            if (BinaryPrimitives.ReadUInt32BigEndian(message) != Crc32.HashToUInt32(message[4..]))
                throw new CorruptMessageException("Message is corrupt (stored crc does not match the computed crc).");
            var attributes = message[5];
            var codec = (CompressionCodec)(attributes & CodecMask);
            if (codec > CompressionCodec.Lz4) throw new CorruptMessageException($"Unknown compression codec {(int)codec} for magic {magic}.");
            var p = 6;
            var timestamp = -1L;
            if (magic == 1)
            {
                timestamp = BinaryPrimitives.ReadInt64BigEndian(message[p..]);
                p += 8;
            }
            var key = ReadBytes(message, ref p);
            var value = ReadBytes(message, ref p);
            if (p != message.Length) throw new CorruptMessageException("A message's key and value do not fill it.");
            messages.Add(new Message(magic, codec, magic == 1 && (attributes & LogAppendTimeFlag) != 0, timestamp, key, value));
        }
        return messages;
    }

    private static byte[]? ReadBytes(ReadOnlySpan<byte> message, ref int position)
    {
        if (message.Length - position < 4) throw new CorruptMessageException("A message ends inside a length.");
        var length = BinaryPrimitives.ReadInt32BigEndian(message[position..]);
        position += 4;
        if (length < 0) return length == -1 ? null : throw new CorruptMessageException($"Invalid length {length} in a message.");
        if (length > message.Length - position) throw new CorruptMessageException($"A length of {length} runs past the message's end.");
        var bytes = message.Slice(position, length).ToArray();
        position += length;
        return bytes;
    }
}

/// <summary>A legacy message whose CRC or layout does not hold: Kafka's CORRUPT_MESSAGE.</summary>
public sealed class CorruptMessageException(string message) : Exception(message);
