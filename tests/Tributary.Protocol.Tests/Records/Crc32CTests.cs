using System.Text;
using CsCheck;
using Tributary.Protocol.Records;

namespace Tributary.Protocol.Tests.Records;

public sealed class Crc32CTests
{
    [Theory]
    [InlineData("", 0x00000000u)]
    [InlineData("a", 0xC1D04330u)]
    [InlineData("123456789", 0xE3069283u)]
    [InlineData("The quick brown fox jumps over the lazy dog", 0x22620404u)]
    public void Known_vectors(string input, uint expected) =>
        Assert.Equal(expected, Crc32C.Compute(Encoding.ASCII.GetBytes(input)));

    [Fact]
    public void Thirty_two_zero_bytes_match_the_rfc3720_vector() =>
        Assert.Equal(0x8A9136AAu, Crc32C.Compute(new byte[32]));

    [Fact]
    public void Append_continues_a_checksum_at_any_split() =>
        Gen.Byte.Array[0, 300].Select(Gen.Int[0, 300]).Sample((bytes, split) =>
        {
            int at = Math.Min(split, bytes.Length);
            Assert.Equal(Crc32C.Compute(bytes), Crc32C.Append(Crc32C.Compute(bytes.AsSpan(0, at)), bytes.AsSpan(at)));
        });

    [Fact]
    public void Interleaved_lanes_match_a_bitwise_reference_at_every_length_class() =>
        // Lengths around the three-lane thresholds (3 x 256 and 3 x 8192 bytes) and well beyond them.
        Gen.Byte.Array[0, 60_000].Select(Gen.Int[0, 200], Gen.UInt).Sample((bytes, offset, seed) =>
        {
            var data = bytes.AsSpan(Math.Min(offset, bytes.Length));
            Assert.Equal(Bitwise(seed, data), Crc32C.Append(seed, data));
        }, iter: 300);

    [Theory]
    [InlineData(767)]
    [InlineData(768)]
    [InlineData(769)]
    [InlineData(24_575)]
    [InlineData(24_576)]
    [InlineData(24_577)]
    [InlineData(1 << 20)]
    public void Lane_boundaries_match_the_reference(int length)
    {
        var data = new byte[length];
        new Random(length).NextBytes(data);
        Assert.Equal(Bitwise(0, data), Crc32C.Compute(data));
    }

    /// <summary>The definition, one bit at a time (reflected polynomial 0x82F63B78).</summary>
    private static uint Bitwise(uint crc, ReadOnlySpan<byte> data)
    {
        uint state = ~crc;
        foreach (byte b in data)
        {
            state ^= b;
            for (int k = 0; k < 8; k++)
            {
                state = (state & 1) != 0 ? (state >> 1) ^ 0x82F63B78u : state >> 1;
            }
        }

        return ~state;
    }
}
