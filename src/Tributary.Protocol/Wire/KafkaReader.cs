using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;

namespace Tributary.Protocol.Wire;

/// <summary>
/// Reads Kafka wire primitives from one request or response frame. It keeps the frame as memory (not a span) so that
/// byte and record fields come out as slices of the frame instead of copies: a produce request's batches reach the
/// log without being copied.
/// </summary>
public struct KafkaReader(ReadOnlyMemory<byte> buffer)
{
    private readonly ReadOnlyMemory<byte> _buffer = buffer;
    private int _position;

    public readonly int Position => _position;
    public readonly int Remaining => _buffer.Length - _position;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ReadOnlySpan<byte> Take(int count)
    {
        if ((uint)count > (uint)(_buffer.Length - _position))
            throw new ProtocolException($"truncated input: needed {count} bytes at position {_position}, {Remaining} left");
        var span = _buffer.Span.Slice(_position, count);
        _position += count;
        return span;
    }

    private ReadOnlyMemory<byte> TakeMemory(int count)
    {
        if ((uint)count > (uint)(_buffer.Length - _position))
            throw new ProtocolException($"truncated input: needed {count} bytes at position {_position}, {Remaining} left");
        var memory = _buffer.Slice(_position, count);
        _position += count;
        return memory;
    }

    public bool ReadBool() => Take(1)[0] != 0;
    public sbyte ReadInt8() => (sbyte)Take(1)[0];
    public short ReadInt16() => BinaryPrimitives.ReadInt16BigEndian(Take(2));
    public ushort ReadUInt16() => BinaryPrimitives.ReadUInt16BigEndian(Take(2));
    public int ReadInt32() => BinaryPrimitives.ReadInt32BigEndian(Take(4));
    public uint ReadUInt32() => BinaryPrimitives.ReadUInt32BigEndian(Take(4));
    public long ReadInt64() => BinaryPrimitives.ReadInt64BigEndian(Take(8));
    public double ReadFloat64() => BinaryPrimitives.ReadDoubleBigEndian(Take(8));
    public Guid ReadUuid() => new(Take(16), bigEndian: true);

    public uint ReadUnsignedVarInt()
    {
        uint result = 0;
        for (var shift = 0; shift < 35; shift += 7)
        {
            var b = Take(1)[0];
            result |= (uint)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return result;
        }
        throw new ProtocolException("varint longer than 5 bytes");
    }

    public ulong ReadUnsignedVarLong()
    {
        ulong result = 0;
        for (var shift = 0; shift < 70; shift += 7)
        {
            var b = Take(1)[0];
            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return result;
        }
        throw new ProtocolException("varlong longer than 10 bytes");
    }

    public int ReadVarInt()
    {
        var raw = ReadUnsignedVarInt();
        return (int)(raw >> 1) ^ -(int)(raw & 1);
    }

    public long ReadVarLong()
    {
        var raw = ReadUnsignedVarLong();
        return (long)(raw >> 1) ^ -(long)(raw & 1);
    }

    /// <summary>Length of a classic (int16) or compact (unsigned varint, plus one) string; -1 means null.</summary>
    private int ReadStringLength(bool compact) => compact ? (int)ReadUnsignedVarInt() - 1 : ReadInt16();

    public string? ReadNullableString(bool compact)
    {
        var length = ReadStringLength(compact);
        if (length < -1) throw new ProtocolException($"invalid string length {length}");
        return length == -1 ? null : Encoding.UTF8.GetString(Take(length));
    }

    public string ReadString(bool compact) =>
        ReadNullableString(compact) ?? throw new ProtocolException("null in a non-nullable string field");

    public ReadOnlyMemory<byte>? ReadNullableBytesMemory(bool compact)
    {
        var length = compact ? (int)ReadUnsignedVarInt() - 1 : ReadInt32();
        if (length < -1) throw new ProtocolException($"invalid bytes length {length}");
        return length == -1 ? (ReadOnlyMemory<byte>?)null : TakeMemory(length);
    }

    public byte[]? ReadNullableBytes(bool compact) => ReadNullableBytesMemory(compact)?.ToArray();

    public byte[] ReadBytes(bool compact) =>
        ReadNullableBytes(compact) ?? throw new ProtocolException("null in a non-nullable bytes field");

    /// <summary>Record batches: a byte-length-prefixed blob kept as a slice of the frame.</summary>
    public ReadOnlyMemory<byte>? ReadRecords(bool compact) => ReadNullableBytesMemory(compact);

    /// <summary>Array element count; -1 means null. Checked against the bytes left so a forged count cannot force a huge allocation.</summary>
    public int ReadArrayLength(bool compact)
    {
        var length = compact ? (int)ReadUnsignedVarInt() - 1 : ReadInt32();
        if (length < -1 || length > Remaining)
            throw new ProtocolException($"invalid array length {length} with {Remaining} bytes left");
        return length;
    }

    public void Skip(int count) => Take(count);

    /// <summary>Skips a tagged-field section whose tags the caller did not claim.</summary>
    public void SkipTaggedField()
    {
        var size = (int)ReadUnsignedVarInt();
        Take(size);
    }
}
