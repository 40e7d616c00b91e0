using System.Text;
using CsCheck;
using Tributary.Storage.Cleaning;

namespace Tributary.Storage.Tests;

/// <summary>The cleaner's key map as it grows towards its budget, and the bitmap of offsets that survive the key test.</summary>
public sealed class CleanerMapTests
{
    [Fact]
    public void The_key_map_grows_to_its_budget_and_keeps_every_key_latest_offset()
    {
        var map = new OffsetMap(OffsetMap.SlotsFor(24L * 1_000_000, 1_000_000));
        for (long offset = 0; offset < 600_000; offset++)
        {
            map.Put(Encoding.ASCII.GetBytes($"key-{offset % 300_000}"), offset);
        }

        Assert.Equal(300_000, map.Count);
        Assert.Equal(599_999, map.LatestOffset);
        for (int k = 0; k < 300_000; k++)
        {
            Assert.Equal(300_000 + k, map.Get(Encoding.ASCII.GetBytes($"key-{k}")));
        }

        Assert.Equal(-1, map.Get("absent"u8));
        var offsets = new List<long>();
        map.ForEachOffset(offsets.Add);
        Assert.Equal(Enumerable.Range(300_000, 300_000).Select(o => (long)o), offsets.Order());
    }

    [Fact]
    public void A_reset_map_forgets_every_key_and_grows_again_under_its_new_budget()
    {
        // The cleaner keeps one map and resets it for each pass: nothing of a pass may leak into the next, and what
        // it keeps of its tables stays within its retain limit whatever budgets the passes had.
        const long RetainLimit = 24L * 1_000_000;
        var map = new OffsetMap(OffsetMap.SlotsFor(RetainLimit, 400_000), RetainLimit);
        for (long offset = 0; offset < 200_000; offset++)
        {
            map.Put(Encoding.ASCII.GetBytes($"old-{offset}"), offset);
        }

        foreach (int budget in new[] { 1_000, 500_000, 200, 300_001, 700_003, 123_457 })
        {
            map.Reset(OffsetMap.SlotsFor(RetainLimit, budget));
            Assert.Equal((0, -1L), (map.Count, map.LatestOffset));
            Assert.Equal(-1, map.Get(Encoding.ASCII.GetBytes("old-7")));
            int keys = Math.Min(budget / 2, map.Capacity);
            for (long offset = 1_000_000; offset < 1_000_000 + keys; offset++)
            {
                map.Put(Encoding.ASCII.GetBytes($"new-{offset}"), offset);
            }

            Assert.Equal(keys, map.Count);
            var offsets = new List<long>();
            map.ForEachOffset(offsets.Add);
            Assert.Equal(Enumerable.Range(1_000_000, keys).Select(o => (long)o), offsets.Order());
            Assert.InRange(map.RetainedBytes, 1, RetainLimit);
        }
    }

    [Fact]
    public void NoneSet_agrees_with_a_plain_set_of_offsets()
    {
        Gen.Select(Gen.Long[0, 1000], Gen.Int[1, 700], Gen.Long[0, 700].Array[0, 20], Gen.Long[0, 800], Gen.Int[0, 150]).Sample(sample =>
        {
            var (from, length, marks, first, span) = sample;
            var map = new OffsetMap(1024);
            var set = new HashSet<long>();
            foreach (long mark in marks)
            {
                map.Put(BitConverter.GetBytes(mark), from + mark);
                if (mark < length)
                {
                    set.Add(from + mark);
                }
            }

            var latest = LatestOffsets.Build(map, from, from + length)!;
            long a = from + first, b = a + span;
            bool expected = a >= from && b < from + length && !set.Any(o => o >= a && o <= b);
            Assert.Equal(expected, latest.NoneSet(a, b));
        }, iter: 5000);
    }
}
