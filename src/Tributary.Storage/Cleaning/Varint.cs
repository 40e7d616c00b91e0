using Tributary.Protocol.Records;

namespace Tributary.Storage.Cleaning;

/// <summary>The zig-zag varints inside records (the protocol project keeps its own copy internal).</summary>
internal static class Varint
{
    public static long ReadVarlong(ReadOnlySpan<byte> source, ref int position)
    {
        ulong raw = 0;
        for (int shift = 0; ; shift += 7)
        {
            if (position >= source.Length || shift > 63)
            {
                throw new InvalidRecordException("Invalid varint in record data.");
            }

            byte b = source[position++];
            raw |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return (long)(raw >> 1) ^ -(long)(raw & 1);
            }
        }
    }

    public static int ReadVarint(ReadOnlySpan<byte> source, ref int position)
    {
        long value = ReadVarlong(source, ref position);
        return value is < int.MinValue or > int.MaxValue ? throw new InvalidRecordException("Varint does not fit in 32 bits.") : (int)value;
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
