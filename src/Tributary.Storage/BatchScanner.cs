using System.Buffers;
using System.Buffers.Binary;
using Tributary.Protocol.Records;
using Tributary.Storage.FileSystem;

namespace Tributary.Storage;

/// <summary>Position and header facts of one batch found in a segment file.</summary>
internal readonly record struct ScannedBatch(long Position, int Size, long BaseOffset, long LastOffset, long MaxTimestamp);

/// <summary>
/// Walks the batches of a segment file from a position, through a pooled read-ahead buffer (one pread per
/// 256 KiB rather than per batch). With <c>verify</c> it checks what recovery needs: a whole header, a
/// plausible length that stays inside the file, magic 2, CRC-32C, and dense offsets (each batch starts
/// right after the previous one; baseOffset is outside the CRC, so this is what catches its corruption). It stops at
/// the first batch that fails; <see cref="Position"/> is then the end of the last good batch, which is
/// where recovery truncates.
/// </summary>
internal sealed class BatchScanner : IDisposable
{
    private const int ReadAhead = 256 * 1024;
    private readonly ISegmentFile _file;
    private readonly long _end;
    private readonly bool _verify;
    private long _minOffset;
    private byte[] _buffer;
    private long _bufferStart;
    private int _bufferLength;

    public BatchScanner(ISegmentFile file, long start, long end, long minOffset, bool verify)
    {
        _file = file;
        Position = start;
        _end = end;
        _minOffset = minOffset;
        _verify = verify;
        _buffer = ArrayPool<byte>.Shared.Rent(ReadAhead);
    }

    /// <summary>
    /// With <c>verify</c>, accept a batch starting after the previous one's next offset (never before). Compacted
    /// segments have such gaps where the cleaner removed whole batches; only closed segments can be compacted, so
    /// the active segment keeps the strict check.
    /// </summary>
    public bool AllowGaps { get; init; }

    /// <summary>
    /// Read a batch's header alone when it is not already buffered, and its body only when <see cref="Bytes"/> asks: a
    /// caller that decides from headers which batches it needs (the cleaner skipping batches it will empty) then reads
    /// 61 bytes of those it does not, instead of everything through the read-ahead.
    /// </summary>
    public bool LazyBodies { get; init; }

    /// <summary>Bytes read from the file so far.</summary>
    public long BytesRead { get; private set; }

    /// <summary>End of the last batch returned (the start position before the first).</summary>
    public long Position { get; private set; }

    /// <summary>True when the walk stopped before the end because a batch was incomplete or invalid.</summary>
    public bool StoppedEarly { get; private set; }

    public bool TryNext(out ScannedBatch batch)
    {
        batch = default;
        long remaining = _end - Position;
        if (remaining <= 0)
        {
            return false;
        }

        var header = Ensure(Position, (int)Math.Min(remaining, RecordBatchHeader.HeaderSize), readAhead: !LazyBodies);
        if (header.Length < RecordBatchHeader.HeaderSize)
        {
            return Stop();
        }

        var view = new RecordBatchHeader(header);
        int batchLength = view.BatchLength;
        long total = (long)batchLength + RecordBatchHeader.LogOverhead;
        if (batchLength < RecordBatchHeader.HeaderSize - RecordBatchHeader.LogOverhead || total > remaining
            || view.Magic != 2 || view.LastOffsetDelta < 0 || view.BaseOffset < _minOffset
            || (_verify && !AllowGaps && view.BaseOffset != _minOffset))
        {
            return Stop();
        }

        long baseOffset = view.BaseOffset;
        long lastOffset = view.LastOffset;
        long maxTimestamp = view.MaxTimestamp;
        if (_verify)
        {
            var whole = Ensure(Position, (int)total);
            if (whole.Length < total
                || BinaryPrimitives.ReadUInt32BigEndian(whole[RecordBatchHeader.CrcOffset..]) != RecordBatchHeader.ComputeCrc(whole))
            {
                return Stop();
            }
        }

        batch = new ScannedBatch(Position, (int)total, baseOffset, lastOffset, maxTimestamp);
        Position += total;
        _minOffset = lastOffset + 1;
        return true;
    }

    /// <summary>The bytes of a batch just returned by <see cref="TryNext"/>; valid until the next call.</summary>
    public ReadOnlySpan<byte> Bytes(in ScannedBatch batch) => Ensure(batch.Position, batch.Size);

    /// <summary>The header of a batch just returned by <see cref="TryNext"/> (already read); valid until the next call.</summary>
    public ReadOnlySpan<byte> Header(in ScannedBatch batch) => Ensure(batch.Position, RecordBatchHeader.HeaderSize);

    public void Dispose()
    {
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
    }

    private bool Stop()
    {
        StoppedEarly = true;
        return false;
    }

    private ReadOnlySpan<byte> Ensure(long position, int length, bool readAhead = true)
    {
        if (position >= _bufferStart && position + length <= _bufferStart + _bufferLength)
        {
            return _buffer.AsSpan((int)(position - _bufferStart), length);
        }

        if (length > _buffer.Length)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = ArrayPool<byte>.Shared.Rent(length);
        }

        _bufferStart = position;
        _bufferLength = _file.Read(position, _buffer.AsSpan(0, readAhead ? (int)Math.Min(_buffer.Length, _end - position) : length));
        BytesRead += _bufferLength;
        return _buffer.AsSpan(0, Math.Min(length, _bufferLength));
    }
}
