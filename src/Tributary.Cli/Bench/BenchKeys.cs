using System.Text;

namespace Tributary.Cli.Bench;

/// <summary>
/// The keys of a keyed produce benchmark: <see cref="Count"/> distinct fixed-width keys ("k" and 11 digits) in one
/// table, so picking a record's key allocates nothing.
/// </summary>
public sealed class BenchKeys
{
    public const int Width = 12;

    private BenchKeys(int count)
    {
        Count = count;
        Table = new byte[count * Width];
        for (var k = 0; k < count; k++) Encoding.ASCII.GetBytes($"k{k:D11}", Table.AsSpan(k * Width, Width));
    }

    public int Count { get; }

    /// <summary>Key k at [k * Width, (k + 1) * Width).</summary>
    public byte[] Table { get; }

    /// <summary>No keys: records go without one.</summary>
    public static BenchKeys Create(int count)
    {
        if (count < 0 || count > int.MaxValue / Width) throw new ArgumentOutOfRangeException(nameof(count), "keys must be between 0 and 178 million");
        return new BenchKeys(count);
    }

    /// <summary>Where the key of record <paramref name="sequence"/> starts in <see cref="Table"/>.</summary>
    public int Offset(long sequence) => (int)(sequence % Count) * Width;

    /// <summary>The key of record <paramref name="sequence"/> (there must be keys).</summary>
    public ReadOnlySpan<byte> Key(long sequence) => Table.AsSpan(Offset(sequence), Width);
}
