using Tributary.Protocol.Records;

namespace Tributary.Protocol.Tests.Records;

/// <summary>
/// The in-place walker (the produce hot path, with its one- to three-byte varint shortcuts) must judge every section
/// exactly as the general walker over a stream does: the same verdict on valid sections of every varint width, and on
/// every one-byte corruption of a small section.
/// </summary>
public sealed class RecordWalkerTests
{
    private static byte[] Section(int records, int valueSize, int timestampStep, bool withHeaders)
    {
        var builder = new RecordBatchBuilder();
        var headers = withHeaders ? new List<RecordHeader> { new("h", new byte[] { 1, 2 }), new("empty", null) } : null;
        for (var i = 0; i < records; i++)
            builder.Add(1_700_000_000_000 + (long)i * timestampStep, i % 3 == 0 ? null : [(byte)i], new byte[valueSize], headers);
        return builder.Build()[RecordBatchHeader.HeaderSize..];
    }

    /// <summary>
    /// Through a window of <paramref name="window"/> bytes: a tiny one makes every record cross its end (read byte by
    /// byte), a larger one holds most records whole (checked in the window, as in place).
    /// </summary>
    private static string? WalkStream(byte[] section, int count, int window = 7)
    {
        using var stream = new MemoryStream(section);
        var source = new StreamRecordSource(stream, new byte[window], long.MaxValue);
        return RecordWalker.Walk(ref source, count);
    }

    [Theory]
    [InlineData(1, 0, 0, false)]
    [InlineData(50, 100, 1, false)]
    [InlineData(5000, 10, 3, false)] // offset deltas past 4095: three-byte varints
    [InlineData(40, 20_000, 1_000_000, true)] // values and timestamp deltas of four bytes and more
    public void Valid_sections_pass_both_walkers(int records, int valueSize, int timestampStep, bool withHeaders)
    {
        var section = Section(records, valueSize, timestampStep, withHeaders);
        Assert.Null(RecordWalker.Walk(section, records));
        Assert.Null(WalkStream(section, records));
        Assert.Null(WalkStream(section, records, 100));
        Assert.Null(WalkStream(section, records, 1 << 16));
        Assert.NotNull(WalkStream(section, records + 1, 1 << 16));
        Assert.NotNull(WalkStream(section, records - 1, 1 << 16));
        Assert.NotNull(WalkStream(section[..^1], records, 1 << 16));
        Assert.NotNull(RecordWalker.Walk(section, records + 1));
        Assert.NotNull(RecordWalker.Walk(section, records - 1));
        Assert.NotNull(RecordWalker.Walk(section[..^1], records));
    }

    [Fact]
    public void Every_single_byte_corruption_gets_the_same_verdict_from_both_walkers()
    {
        var section = Section(4, 3, 200, withHeaders: true);
        int rejected = 0;
        for (var position = 0; position < section.Length; position++)
        {
            foreach (var value in new byte[] { 0x00, 0x01, 0x7F, 0x80, 0xFF })
            {
                var corrupt = (byte[])section.Clone();
                corrupt[position] = value;
                var span = RecordWalker.Walk(corrupt, 4);
                foreach (var window in new[] { 7, 30, 1 << 16 })
                {
                    var stream = WalkStream(corrupt, 4, window);
                    Assert.True((span is null) == (stream is null), $"byte {position} = 0x{value:X2}, window {window}: span says '{span}', stream says '{stream}'");
                }

                if (span is not null) rejected++;
            }
        }
        Assert.True(rejected > section.Length, $"only {rejected} corruptions were refused");
    }
}
