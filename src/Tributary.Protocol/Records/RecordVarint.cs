namespace Tributary.Protocol.Records;

/// <summary>Zig-zag varints as used inside records (protobuf style, little-endian groups of 7 bits).</summary>
public static class RecordVarint
{
    public static long ReadVarlong(ReadOnlySpan<byte> source, ref int position)
    {
        ulong raw = 0;
        int shift = 0;
        while (true)
        {
            if (position >= source.Length)
            {
                throw new InvalidRecordException("Varint runs past the end of the record data.");
            }

            byte b = source[position++];
            raw |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                break;
            }

            shift += 7;
            if (shift > 63)
            {
                throw new InvalidRecordException("Varint is longer than 10 bytes.");
            }
        }

        return (long)(raw >> 1) ^ -(long)(raw & 1);
    }

    public static int ReadVarint(ReadOnlySpan<byte> source, ref int position)
    {
        long value = ReadVarlong(source, ref position);
        if (value is < int.MinValue or > int.MaxValue)
        {
            throw new InvalidRecordException("Varint does not fit in 32 bits.");
        }

        return (int)value;
    }

    public static int SizeOf(long value)
    {
        ulong raw = (ulong)((value << 1) ^ (value >> 63));
        int size = 1;
        while (raw >= 0x80)
        {
            raw >>= 7;
            size++;
        }

        return size;
    }

    public static int Write(Span<byte> destination, long value)
    {
        ulong raw = (ulong)((value << 1) ^ (value >> 63));
        int i = 0;
        while (raw >= 0x80)
        {
            destination[i++] = (byte)(raw | 0x80);
            raw >>= 7;
        }

        destination[i++] = (byte)raw;
        return i;
    }
}

/// <summary>Thrown when record data inside a batch cannot be decoded.</summary>
public class InvalidRecordException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Thrown when a batch's records section expands beyond the bound it was decompressed under.</summary>
public sealed class DecompressionLimitException(int maxBytes)
    : InvalidRecordException($"Record batch expands to more than {maxBytes} bytes when decompressed (64 x max.message.bytes).")
{
    public int MaxBytes => maxBytes;
}
