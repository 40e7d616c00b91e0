using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Tributary.Protocol.Records;

/// <summary>
/// CRC-32C (Castagnoli), the checksum of Kafka record batches (magic 2). Uses the hardware instruction
/// through <see cref="BitOperations.Crc32C(uint, ulong)"/> eight bytes at a time; the runtime falls back to
/// a table when the CPU lacks it. <see cref="Append"/> continues a finished checksum, so
/// <c>Append(Compute(a), b) == Compute(a ++ b)</c>.
/// </summary>
public static class Crc32C
{
    public static uint Compute(ReadOnlySpan<byte> data) => Append(0, data);

    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        uint state = ~crc;
        ref byte start = ref MemoryMarshal.GetReference(data);
        int length = data.Length;
        int i = 0;
        for (; i + 8 <= length; i += 8)
        {
            state = BitOperations.Crc32C(state, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, i)));
        }

        for (; i < length; i++)
        {
            state = BitOperations.Crc32C(state, Unsafe.Add(ref start, i));
        }

        return ~state;
    }
}
