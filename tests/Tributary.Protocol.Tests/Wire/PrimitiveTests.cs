using CsCheck;
using Tributary.Protocol.Wire;

namespace Tributary.Protocol.Tests.Wire;

public sealed class PrimitiveTests
{
    private static KafkaReader ReaderOf(KafkaWriter w) => new(w.WrittenMemory.ToArray());

    [Fact]
    public void VarIntsRoundTrip() =>
        Gen.Int.Sample(v =>
        {
            using var w = new KafkaWriter(16);
            w.WriteVarInt(v);
            w.WriteUnsignedVarInt((uint)v);
            var r = ReaderOf(w);
            return r.ReadVarInt() == v && r.ReadUnsignedVarInt() == (uint)v && r.Remaining == 0;
        });

    [Fact]
    public void VarLongsRoundTrip() =>
        Gen.Long.Sample(v =>
        {
            using var w = new KafkaWriter(16);
            w.WriteVarLong(v);
            var r = ReaderOf(w);
            return r.ReadVarLong() == v && r.Remaining == 0;
        });

    [Theory]
    [InlineData(0, new byte[] { 0x00 })]
    [InlineData(-1, new byte[] { 0x01 })]
    [InlineData(1, new byte[] { 0x02 })]
    [InlineData(63, new byte[] { 0x7E })]
    [InlineData(-64, new byte[] { 0x7F })]
    [InlineData(64, new byte[] { 0x80, 0x01 })]
    [InlineData(int.MaxValue, new byte[] { 0xFE, 0xFF, 0xFF, 0xFF, 0x0F })]
    [InlineData(int.MinValue, new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0x0F })]
    public void VarIntZigZagMatchesKafka(int value, byte[] expected)
    {
        using var w = new KafkaWriter(16);
        w.WriteVarInt(value);
        Assert.Equal(expected, w.WrittenSpan.ToArray());
    }

    [Fact]
    public void StringsRoundTripInBothEncodings() =>
        Gen.String.Sample(s =>
        {
            using var w = new KafkaWriter(16);
            w.WriteNullableString(s, compact: false);
            w.WriteNullableString(s, compact: true);
            w.WriteNullableString(null, compact: false);
            w.WriteNullableString(null, compact: true);
            var r = ReaderOf(w);
            return r.ReadString(false) == s && r.ReadString(true) == s && r.ReadNullableString(false) is null && r.ReadNullableString(true) is null && r.Remaining == 0;
        });

    [Fact]
    public void UuidIsBigEndianOnTheWire()
    {
        var id = Guid.Parse("00112233-4455-6677-8899-aabbccddeeff");
        using var w = new KafkaWriter(16);
        w.WriteUuid(id);
        Assert.Equal(Convert.FromHexString("00112233445566778899AABBCCDDEEFF"), w.WrittenSpan.ToArray());
        Assert.Equal(id, ReaderOf(w).ReadUuid());
    }

    [Fact]
    public void TruncatedInputIsAProtocolError()
    {
        var r = new KafkaReader(new byte[] { 0x00, 0x05, (byte)'a' });
        try
        {
            r.ReadString(false);
            Assert.Fail("expected a ProtocolException");
        }
        catch (ProtocolException e)
        {
            Assert.Contains("truncated", e.Message);
        }
    }

    [Fact]
    public void ForgedArrayLengthCannotForceAHugeAllocation()
    {
        var r = new KafkaReader(new byte[] { 0x7F, 0xFF, 0xFF, 0xFF });
        try
        {
            r.ReadArrayLength(false);
            Assert.Fail("expected a ProtocolException");
        }
        catch (ProtocolException e)
        {
            Assert.Contains("array length", e.Message);
        }
    }

    [Fact]
    public void OverlongVarIntIsRejected()
    {
        var r = new KafkaReader(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 });
        try
        {
            r.ReadUnsignedVarInt();
            Assert.Fail("expected a ProtocolException");
        }
        catch (ProtocolException)
        {
        }
    }

    [Fact]
    public void LargeRecordsAreGatheredNotCopied()
    {
        var records = Enumerable.Range(0, 10_000).Select(i => (byte)i).ToArray();
        using var w = new KafkaWriter(64) { ReferenceLargeRecords = true };
        w.WriteInt32(7);
        w.WriteRecords(records, compact: true);
        w.WriteInt16(9);
        Assert.True(w.HasExternalSegments);
        Assert.Equal(4 + 2 + 10_000 + 2, w.TotalLength);
        var segments = new List<ArraySegment<byte>>();
        w.GetSegments(segments);
        Assert.Same(records, segments[1].Array);
        var joined = segments.SelectMany(s => s).ToArray();
        var r = new KafkaReader(joined);
        Assert.Equal(7, r.ReadInt32());
        Assert.Equal(records, r.ReadRecords(true)!.Value.ToArray());
        Assert.Equal(9, r.ReadInt16());
        Assert.Equal(0, r.Remaining);
    }

    [Fact]
    public void SmallRecordsAndPlainWritersCopy()
    {
        using var w = new KafkaWriter(64);
        w.WriteRecords(new byte[10_000], compact: false);
        Assert.False(w.HasExternalSegments);
        Assert.Equal(10_004, w.WrittenSpan.Length);
    }
}
