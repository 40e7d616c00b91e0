using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Tributary.Protocol.Wire;

/// <summary>
/// Writes Kafka wire primitives into one growable pooled buffer. A connection keeps one writer and resets it per
/// response, so steady-state writing allocates nothing.
///
/// Large record blobs are not copied in: the writer notes where they go and <see cref="GetSegments"/> interleaves
/// them with the buffer, so a fetch response goes to the socket straight from the bytes read from the segment file
/// (one gathered send, no copy into the response buffer).
/// </summary>
public sealed class KafkaWriter : IDisposable
{
    /// <summary>Record blobs at least this large are referenced rather than copied, when <see cref="ReferenceLargeRecords"/> is on.</summary>
    public const int ExternalRecordsThreshold = 4096;

    /// <summary>
    /// Off by default, so <see cref="WrittenMemory"/> is the whole message; a connection that sends with
    /// <see cref="GetSegments"/> turns it on.
    /// </summary>
    public bool ReferenceLargeRecords { get; init; }

    private byte[] _buffer;
    private int _position;
    private readonly List<(int At, ArraySegment<byte> Bytes)> _external = [];
    private int _externalLength;

    private readonly int _initialCapacity;

    /// <summary>The buffer is rented on first write, so an idle writer holds no memory.</summary>
    public KafkaWriter(int initialCapacity = 4096)
    {
        _initialCapacity = initialCapacity;
        _buffer = [];
    }

    /// <summary>Bytes written into the buffer itself (external record blobs not counted).</summary>
    public int Position => _position;

    /// <summary>The whole message length: buffer plus referenced record blobs.</summary>
    public int TotalLength => _position + _externalLength;

    public bool HasExternalSegments => _external.Count > 0;

    /// <summary>The buffer's bytes; only the whole message when <see cref="HasExternalSegments"/> is false.</summary>
    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _position);
    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _position);

    public void Reset()
    {
        _position = 0;
        _external.Clear();
        _externalLength = 0;
    }

    /// <summary>The message as an ordered list of segments for one gathered send.</summary>
    public void GetSegments(List<ArraySegment<byte>> segments)
    {
        segments.Clear();
        var from = 0;
        foreach (var (at, bytes) in _external)
        {
            if (at > from) segments.Add(new ArraySegment<byte>(_buffer, from, at - from));
            segments.Add(bytes);
            from = at;
        }
        if (_position > from) segments.Add(new ArraySegment<byte>(_buffer, from, _position - from));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Span<byte> Reserve(int count)
    {
        if (_buffer.Length - _position < count) Grow(count);
        var span = _buffer.AsSpan(_position, count);
        _position += count;
        return span;
    }

    private void Grow(int count)
    {
        var next = ArrayPool<byte>.Shared.Rent(Math.Max(Math.Max(_buffer.Length * 2, _initialCapacity), _position + count));
        _buffer.AsSpan(0, _position).CopyTo(next);
        if (_buffer.Length > 0) ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = next;
    }

    public void WriteBool(bool value) => Reserve(1)[0] = value ? (byte)1 : (byte)0;
    public void WriteInt8(sbyte value) => Reserve(1)[0] = (byte)value;
    public void WriteInt16(short value) => BinaryPrimitives.WriteInt16BigEndian(Reserve(2), value);
    public void WriteUInt16(ushort value) => BinaryPrimitives.WriteUInt16BigEndian(Reserve(2), value);
    public void WriteInt32(int value) => BinaryPrimitives.WriteInt32BigEndian(Reserve(4), value);
    public void WriteUInt32(uint value) => BinaryPrimitives.WriteUInt32BigEndian(Reserve(4), value);
    public void WriteInt64(long value) => BinaryPrimitives.WriteInt64BigEndian(Reserve(8), value);
    public void WriteFloat64(double value) => BinaryPrimitives.WriteDoubleBigEndian(Reserve(8), value);
    public void WriteUuid(Guid value) => value.TryWriteBytes(Reserve(16), bigEndian: true, out _);

    public void WriteUnsignedVarInt(uint value)
    {
        while (value >= 0x80)
        {
            Reserve(1)[0] = (byte)(value | 0x80);
            value >>= 7;
        }
        Reserve(1)[0] = (byte)value;
    }

    public void WriteUnsignedVarLong(ulong value)
    {
        while (value >= 0x80)
        {
            Reserve(1)[0] = (byte)(value | 0x80);
            value >>= 7;
        }
        Reserve(1)[0] = (byte)value;
    }

    public void WriteVarInt(int value) => WriteUnsignedVarInt((uint)((value << 1) ^ (value >> 31)));
    public void WriteVarLong(long value) => WriteUnsignedVarLong((ulong)((value << 1) ^ (value >> 63)));

    public static int SizeOfUnsignedVarInt(uint value)
    {
        var size = 1;
        while (value >= 0x80) { value >>= 7; size++; }
        return size;
    }

    public void WriteNullableString(string? value, bool compact)
    {
        if (value is null)
        {
            if (compact) WriteUnsignedVarInt(0); else WriteInt16(-1);
            return;
        }
        var byteCount = Encoding.UTF8.GetByteCount(value);
        if (compact) WriteUnsignedVarInt((uint)byteCount + 1);
        else
        {
            if (byteCount > short.MaxValue) throw new ProtocolException($"string of {byteCount} bytes exceeds int16 length");
            WriteInt16((short)byteCount);
        }
        Encoding.UTF8.GetBytes(value, Reserve(byteCount));
    }

    public void WriteString(string value, bool compact) => WriteNullableString(value, compact);

    public void WriteNullableBytes(ReadOnlySpan<byte> value, bool isNull, bool compact)
    {
        if (isNull)
        {
            if (compact) WriteUnsignedVarInt(0); else WriteInt32(-1);
            return;
        }
        if (compact) WriteUnsignedVarInt((uint)value.Length + 1); else WriteInt32(value.Length);
        value.CopyTo(Reserve(value.Length));
    }

    public void WriteBytes(byte[]? value, bool compact) => WriteNullableBytes(value, value is null, compact);

    public void WriteRecords(ReadOnlyMemory<byte>? value, bool compact)
    {
        if (ReferenceLargeRecords && value is { Length: >= ExternalRecordsThreshold } records && MemoryMarshal.TryGetArray(records, out var segment))
        {
            if (compact) WriteUnsignedVarInt((uint)records.Length + 1); else WriteInt32(records.Length);
            _external.Add((_position, segment));
            _externalLength += segment.Count;
            return;
        }
        WriteNullableBytes(value.HasValue ? value.Value.Span : default, !value.HasValue, compact);
    }

    public void WriteArrayLength(int count, bool compact)
    {
        if (compact) WriteUnsignedVarInt((uint)(count + 1)); else WriteInt32(count);
    }

    public void WriteRaw(ReadOnlySpan<byte> bytes) => bytes.CopyTo(Reserve(bytes.Length));

    /// <summary>Reserves a 4-byte big-endian length to be filled in later by <see cref="PatchInt32"/>.</summary>
    public int ReserveInt32()
    {
        var at = _position;
        Reserve(4);
        return at;
    }

    public void PatchInt32(int at, int value) => BinaryPrimitives.WriteInt32BigEndian(_buffer.AsSpan(at, 4), value);

    /// <summary>Returns the buffer to the pool (it is rented again on the next write); for writers that go idle.</summary>
    public void Release()
    {
        Reset();
        if (_buffer.Length > 0) ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
    }

    public void Dispose()
    {
        var buffer = _buffer;
        _buffer = [];
        _position = 0;
        if (buffer.Length > 0) ArrayPool<byte>.Shared.Return(buffer);
    }
}
