using System.Buffers;

namespace Tributary.Protocol.Records;

/// <summary>
/// A growable byte buffer rented from <see cref="Pool"/>; dispose it to give the memory back. Growth doubles up to
/// a caller's bound, so memory follows the bytes actually written, never a length some input claims.
/// </summary>
public struct PooledBytes : IDisposable
{
    /// <summary>
    /// Keeps arrays up to 1 MiB, a few per size, for reuse; larger ones are allocated and left to the GC when
    /// returned, so a rare big batch does not pin its memory in the pool afterwards.
    /// </summary>
    public static readonly ArrayPool<byte> Pool = ArrayPool<byte>.Create(1 << 20, 8);

    private byte[] _array;
    private int _length;

    public PooledBytes(int capacity)
    {
        _array = Pool.Rent(Math.Max(capacity, 1));
        _length = 0;
    }

    public readonly int Length => _length;

    public readonly ReadOnlySpan<byte> Span => _array.AsSpan(0, _length);

    /// <summary>The unwritten rest of the current array.</summary>
    public readonly Span<byte> Free => _array.AsSpan(_length);

    public static PooledBytes CopyOf(ReadOnlySpan<byte> source, int maxBytes)
    {
        if (source.Length > maxBytes)
        {
            throw new DecompressionLimitException(maxBytes);
        }

        var bytes = new PooledBytes(source.Length);
        source.CopyTo(bytes.Free);
        bytes.Advance(source.Length);
        return bytes;
    }

    public void Advance(int count) => _length += count;

    /// <summary>Doubles the capacity, but to no more than <paramref name="maxBytes"/>.</summary>
    public void Grow(int maxBytes) => Resize((int)Math.Min((long)_array.Length * 2, maxBytes));

    /// <summary>Makes room for <paramref name="count"/> more bytes, growing by doubling, within <paramref name="maxBytes"/> in all.</summary>
    public void Reserve(int count, int maxBytes)
    {
        long needed = (long)_length + count;
        if (needed > maxBytes)
        {
            throw new DecompressionLimitException(maxBytes);
        }

        if (needed > _array.Length)
        {
            Resize((int)Math.Min(Math.Max(needed, (long)_array.Length * 2), maxBytes));
        }
    }

    public void Dispose()
    {
        if (_array is { Length: > 0 } array)
        {
            _array = [];
            _length = 0;
            Pool.Return(array);
        }
    }

    private void Resize(int capacity)
    {
        var larger = Pool.Rent(capacity);
        _array.AsSpan(0, _length).CopyTo(larger);
        Pool.Return(_array);
        _array = larger;
    }
}
