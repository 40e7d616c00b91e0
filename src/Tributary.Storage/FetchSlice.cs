using System.Buffers;

namespace Tributary.Storage;

/// <summary>
/// Whole record batches copied out of a segment into a pooled array. Dispose returns the array to the
/// pool; <see cref="Memory"/> must not be used afterwards. A default slice is empty.
/// HighWatermark and LogStartOffset are the values the read saw, for the fetch response.
/// </summary>
public struct FetchSlice : IDisposable
{
    private byte[]? _buffer;
    private readonly int _length;

    internal FetchSlice(byte[]? buffer, int length, long firstOffset, long nextOffset, long highWatermark, long logStartOffset)
    {
        _buffer = buffer;
        _length = length;
        FirstOffset = firstOffset;
        NextOffset = nextOffset;
        HighWatermark = highWatermark;
        LogStartOffset = logStartOffset;
    }

    public readonly ReadOnlyMemory<byte> Memory => _buffer is null ? ReadOnlyMemory<byte>.Empty : new(_buffer, 0, _length);
    public readonly int Length => _length;
    public readonly bool IsEmpty => _length == 0;
    /// <summary>Base offset of the first batch returned (may be below the offset asked for); -1 when empty.</summary>
    public long FirstOffset { get; }
    /// <summary>One past the last offset of the last batch returned; -1 when empty.</summary>
    public long NextOffset { get; }
    public long HighWatermark { get; }
    public long LogStartOffset { get; }

    public void Dispose()
    {
        var buffer = _buffer;
        _buffer = null;
        if (buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
