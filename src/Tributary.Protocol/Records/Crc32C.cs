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
/// <remarks>
/// The instruction has a latency of three cycles but a throughput of one per cycle, so a single dependency chain
/// uses a third of it. Long inputs are therefore cut into blocks of three equal lanes whose CRCs run side by side
/// and are joined afterwards: a CRC register is linear over GF(2), so the register after lanes A, B, C equals
/// shift(shift(crcA) ^ crcB) ^ crcC, where shift advances a register over one lane of zero bytes. That shift is a
/// fixed linear map, applied with four 256-entry tables per lane length (built once, from the same instruction).
/// Every produce request is validated with this, so it is the broker's hottest loop.
/// </remarks>
public static class Crc32C
{
    private const int LongLane = 8192;
    private const int ShortLane = 256;

    private static readonly uint[] LongShift = BuildShiftTables(LongLane);
    private static readonly uint[] ShortShift = BuildShiftTables(ShortLane);

    public static uint Compute(ReadOnlySpan<byte> data) => Append(0, data);

    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        uint state = ~crc;
        ref byte start = ref MemoryMarshal.GetReference(data);
        int length = data.Length;
        int i = 0;
        while (length - i >= 3 * LongLane)
        {
            state = ThreeLanes(state, ref Unsafe.Add(ref start, i), LongLane, LongShift);
            i += 3 * LongLane;
        }

        while (length - i >= 3 * ShortLane)
        {
            state = ThreeLanes(state, ref Unsafe.Add(ref start, i), ShortLane, ShortShift);
            i += 3 * ShortLane;
        }

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

    private static uint ThreeLanes(uint state, ref byte block, int lane, uint[] shift)
    {
        uint a = state, b = 0, c = 0;
        ref byte laneB = ref Unsafe.Add(ref block, lane);
        ref byte laneC = ref Unsafe.Add(ref block, 2 * lane);
        for (int j = 0; j < lane; j += 8)
        {
            a = BitOperations.Crc32C(a, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref block, j)));
            b = BitOperations.Crc32C(b, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref laneB, j)));
            c = BitOperations.Crc32C(c, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref laneC, j)));
        }

        return Shift(Shift(a, shift) ^ b, shift) ^ c;
    }

    private static uint Shift(uint register, uint[] tables)
    {
        ref uint t = ref MemoryMarshal.GetArrayDataReference(tables);
        return Unsafe.Add(ref t, (int)(register & 0xFF))
            ^ Unsafe.Add(ref t, 256 + (int)((register >> 8) & 0xFF))
            ^ Unsafe.Add(ref t, 512 + (int)((register >> 16) & 0xFF))
            ^ Unsafe.Add(ref t, 768 + (int)(register >> 24));
    }

    /// <summary>
    /// Tables of the map "register after <paramref name="zeroBytes"/> zero bytes", one per register byte: the map is
    /// linear, so it is found for each of the 32 single-bit registers and the table entries are XORs of those.
    /// </summary>
    private static uint[] BuildShiftTables(int zeroBytes)
    {
        Span<uint> bit = stackalloc uint[32];
        for (int k = 0; k < 32; k++)
        {
            uint register = 1u << k;
            for (int j = 0; j < zeroBytes; j += 8)
            {
                register = BitOperations.Crc32C(register, 0UL);
            }

            bit[k] = register;
        }

        var tables = new uint[4 * 256];
        for (int table = 0; table < 4; table++)
        {
            for (int value = 0; value < 256; value++)
            {
                uint mapped = 0;
                for (int k = 0; k < 8; k++)
                {
                    if ((value & (1 << k)) != 0)
                    {
                        mapped ^= bit[8 * table + k];
                    }
                }

                tables[256 * table + value] = mapped;
            }
        }

        return tables;
    }
}
