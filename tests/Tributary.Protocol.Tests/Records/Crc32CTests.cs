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
}
