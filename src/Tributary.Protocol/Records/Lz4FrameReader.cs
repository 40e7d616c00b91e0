using System.Buffers.Binary;
using K4os.Compression.LZ4;
using K4os.Hash.xxHash;

namespace Tributary.Protocol.Records;

/// <summary>
/// Walks the blocks of LZ4 frames (magic 0x184D2204) held in memory, as Kafka's lz4 codec writes them, and decodes each
/// block with the block codec straight into the caller's memory. A frame is the magic, FLG and BD, an optional content
/// size (8 bytes) and the header checksum byte; then blocks of [uint32 LE size, high bit set when stored uncompressed]
/// [data][block checksum when FLG asks for it]; then the end mark (a zero size) and an optional content checksum.
/// librdkafka (LZ4F) and the Java client (KafkaLZ4BlockOutputStream) both write independent 64 KB blocks without
/// checksums or content size. Frames may follow one another, as LZ4F and K4os's stream decoder read them.
/// <para>
/// Checks, at least those of the stream decoder this replaces (K4os's, which checks the header checksum, block
/// checksums and the content checksum) and those of Kafka's Java reader: version 01, reserved bits zero, no preset
/// dictionary, a block maximum size code of 4 to 7, the header checksum, each block no larger than the frame's
/// maximum size before and after decoding, block and content checksums when present, and a content size when present.
/// Anything else is an <see cref="InvalidDataException"/>. Every length is checked against the input before it is
/// used, and every block consumes at least four input bytes, so malformed input cannot loop or read out of range.
/// </para>
/// </summary>
internal ref struct Lz4FrameReader
{
    /// <summary>How much earlier output a linked block may refer to.</summary>
    public const int DictionarySize = 64 << 10;

    private const uint Magic = 0x184D2204;
    private const int FlagBlockIndependence = 0x20;
    private const int FlagBlockChecksum = 0x10;
    private const int FlagContentSize = 0x08;
    private const int FlagContentChecksum = 0x04;
    private const uint StoredBit = 0x80000000;

    private readonly ReadOnlySpan<byte> _source;
    private int _position;
    private bool _inFrame;
    private int _flags;
    private ulong _contentSize;
    private ulong _frameDecoded;
    private XXH32.State _contentChecksum;
    private ReadOnlySpan<byte> _block;

    public Lz4FrameReader(ReadOnlySpan<byte> source)
    {
        _source = source;
    }

    /// <summary>The current frame's block maximum size: 64 KB, 256 KB, 1 MB or 4 MB.</summary>
    public int BlockMaxSize { get; private set; }

    /// <summary>The current frame's blocks may refer to the <see cref="DictionarySize"/> bytes decoded before them.</summary>
    public readonly bool Linked => (_flags & FlagBlockIndependence) == 0;

    /// <summary>The current block is the first of its frame: a linked block's dictionary starts here.</summary>
    public bool FirstInFrame { get; private set; }

    /// <summary>The current block is stored uncompressed.</summary>
    public bool Stored { get; private set; }

    /// <summary>The most the current block may decode to: its length when stored, else the block maximum size.</summary>
    public readonly int LargestDecodedSize => Stored ? _block.Length : BlockMaxSize;

    /// <summary>
    /// Room to try decoding the current block in first: all it may take up to 64 KB, else eight times its compressed
    /// length (at least 64 KB), so that a frame of 4 MB blocks holding little takes little memory; a block that does
    /// not fit is tried again in twice the room, up to <see cref="LargestDecodedSize"/>.
    /// </summary>
    public readonly int DecodedSizeGuess => Math.Min(LargestDecodedSize, Math.Max(DictionarySize, _block.Length * 8));

    /// <summary>
    /// Moves to the next block, reading frame headers and end marks on the way. False once the input ends after a
    /// frame's end (at once for empty input).
    /// </summary>
    public bool MoveNext()
    {
        FirstInFrame = false;
        while (true)
        {
            if (!_inFrame)
            {
                if (_position == _source.Length)
                {
                    return false;
                }

                ReadHeader();
                FirstInFrame = true;
            }

            uint word = ReadUInt32("block size");
            if (word == 0)
            {
                EndFrame();
                continue;
            }

            int size = (int)(word & ~StoredBit);
            if (size > BlockMaxSize)
            {
                throw new InvalidDataException($"LZ4 block of {size} bytes is larger than the frame's block maximum size {BlockMaxSize}.");
            }

            if (size > _source.Length - _position)
            {
                throw Truncated("block");
            }

            _block = _source.Slice(_position, size);
            _position += size;
            Stored = (word & StoredBit) != 0;
            if ((_flags & FlagBlockChecksum) != 0 && ReadUInt32("block checksum") != XXH32.DigestOf(_block))
            {
                throw new InvalidDataException("LZ4 block checksum does not match.");
            }

            return true;
        }
    }

    /// <summary>
    /// Decodes the current block into <paramref name="target"/>, after <paramref name="dictionary"/> (the frame's
    /// output before this block, at most its last <see cref="DictionarySize"/> bytes; empty for independent blocks).
    /// </summary>
    /// <returns>The decoded length, or -1 when the block does not decode into <paramref name="target"/>: it is corrupt,
    /// or it decodes to more than <paramref name="target"/> holds.</returns>
    public int TryDecode(Span<byte> target, ReadOnlySpan<byte> dictionary)
    {
        int decoded;
        if (Stored)
        {
            if (_block.Length > target.Length)
            {
                return -1;
            }

            _block.CopyTo(target);
            decoded = _block.Length;
        }
        else
        {
            var bounded = target.Length > BlockMaxSize ? target[..BlockMaxSize] : target;
            decoded = dictionary.IsEmpty ? LZ4Codec.Decode(_block, bounded) : LZ4Codec.Decode(_block, bounded, dictionary);
            if (decoded <= 0)
            {
                return -1; // the codec answers -1 for data it cannot decode, and for a block that decodes to nothing
            }
        }

        _frameDecoded += (ulong)decoded;
        if (_contentSize != 0 && _frameDecoded > _contentSize)
        {
            throw new InvalidDataException("LZ4 frame decodes to more than its content size.");
        }

        if ((_flags & FlagContentChecksum) != 0)
        {
            XXH32.Update(ref _contentChecksum, target[..decoded]);
        }

        return decoded;
    }

    private void ReadHeader()
    {
        if (ReadUInt32("frame magic") != Magic)
        {
            throw new InvalidDataException("Not an LZ4 frame (magic number 0x184D2204 expected).");
        }

        if (_source.Length - _position < 3)
        {
            throw Truncated("frame descriptor");
        }

        int start = _position;
        int flags = _source[_position];
        int descriptor = _source[_position + 1];
        if (flags >> 6 != 1)
        {
            throw new InvalidDataException($"LZ4 frame version {flags >> 6} is not supported.");
        }

        if ((flags & 0x01) != 0)
        {
            throw new InvalidDataException("LZ4 frames with a preset dictionary are not supported.");
        }

        if ((flags & 0x02) != 0 || (descriptor & 0x8F) != 0)
        {
            throw new InvalidDataException("LZ4 frame descriptor has reserved bits set.");
        }

        int sizeCode = descriptor >> 4;
        if (sizeCode < 4)
        {
            throw new InvalidDataException($"LZ4 frame block maximum size code {sizeCode} is not 4 to 7.");
        }

        _position += 2;
        _contentSize = 0; // LZ4F reads a content size of 0 as unknown
        if ((flags & FlagContentSize) != 0)
        {
            if (_source.Length - _position < 9)
            {
                throw Truncated("frame descriptor");
            }

            _contentSize = BinaryPrimitives.ReadUInt64LittleEndian(_source[_position..]);
            _position += 8;
        }

        byte expected = (byte)(XXH32.DigestOf(_source[start.._position]) >> 8);
        // Kafka's magic 0 messages carry the checksum its first LZ4 writer computed over the magic number too (KAFKA-3160).
        byte legacy = start >= 4 ? (byte)(XXH32.DigestOf(_source[(start - 4).._position]) >> 8) : expected;
        var found = _source[_position++];
        if (found != expected && found != legacy)
        {
            throw new InvalidDataException("LZ4 frame header checksum does not match.");
        }

        _flags = flags;
        BlockMaxSize = 1 << ((2 * sizeCode) + 8);
        _frameDecoded = 0;
        if ((flags & FlagContentChecksum) != 0)
        {
            XXH32.Reset(ref _contentChecksum);
        }

        _inFrame = true;
    }

    private void EndFrame()
    {
        if ((_flags & FlagContentChecksum) != 0 && ReadUInt32("content checksum") != XXH32.Digest(in _contentChecksum))
        {
            throw new InvalidDataException("LZ4 frame content checksum does not match.");
        }

        if (_contentSize != 0 && _frameDecoded != _contentSize)
        {
            throw new InvalidDataException("LZ4 frame decodes to less than its content size.");
        }

        _inFrame = false;
    }

    private uint ReadUInt32(string what)
    {
        if (_source.Length - _position < 4)
        {
            throw Truncated(what);
        }

        uint value = BinaryPrimitives.ReadUInt32LittleEndian(_source[_position..]);
        _position += 4;
        return value;
    }

    private static InvalidDataException Truncated(string what) => new($"LZ4 data ends inside a {what}.");
}

/// <summary>
/// LZ4 frames read for <see cref="RecordWalker"/> one decoded block at a time, into one pooled buffer that holds a
/// decoded block (after 64 KB of history when blocks are linked; 64 KB blocks take 64 KB, larger ones only the room
/// they turn out to need), so validating a batch takes the memory of one block however far it expands. Stops (as if the data ended) once more than <c>maxBytes</c> have come out, setting
/// <see cref="LimitExceeded"/>, as <see cref="StreamRecordSource"/> does. Dispose it to return the buffer.
/// </summary>
internal ref struct Lz4RecordSource : IBoundedRecordSource
{
    private const int History = Lz4FrameReader.DictionarySize;
    private readonly long _maxBytes;
    private Lz4FrameReader _frames;
    private byte[] _buffer = [];
    private int _position;
    private int _filled;
    private int _history;
    private long _total;

    public Lz4RecordSource(ReadOnlySpan<byte> compressed, long maxBytes)
    {
        _frames = new Lz4FrameReader(compressed);
        _maxBytes = maxBytes;
    }

    public bool LimitExceeded { get; private set; }

    public readonly long Position => _total - (_filled - _position);

    public readonly ReadOnlySpan<byte> Buffered => _buffer.AsSpan(_position, _filled - _position);

    public void Consume(int count) => _position += count;

    public bool TryReadByte(out byte value)
    {
        if (_position == _filled && !Fill())
        {
            value = 0;
            return false;
        }

        value = _buffer[_position++];
        return true;
    }

    public bool TrySkip(int count)
    {
        while (count > 0)
        {
            if (_position == _filled && !Fill())
            {
                return false;
            }

            int step = Math.Min(count, _filled - _position);
            _position += step;
            count -= step;
        }

        return true;
    }

    public bool AtEnd() => _position == _filled && !Fill();

    public void Dispose()
    {
        if (_buffer.Length > 0)
        {
            PooledBytes.Pool.Return(_buffer);
            _buffer = [];
        }
    }

    private bool Fill()
    {
        while (!LimitExceeded && _frames.MoveNext())
        {
            int start = PrepareBuffer();
            int decoded = Decode(start);
            _total += decoded;
            _position = start;
            _filled = start + decoded;
            if (_total > _maxBytes)
            {
                LimitExceeded = true;
                _filled = start;
            }
            else if (decoded > 0)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Decodes the current block at <paramref name="start"/>, after the history, growing the buffer while it does not fit.</summary>
    private int Decode(int start)
    {
        int largest = _frames.LargestDecodedSize;
        while (true)
        {
            var target = _buffer.AsSpan(start, Math.Min(_buffer.Length - start, largest));
            int decoded = _frames.TryDecode(target, _buffer.AsSpan(start - _history, _history));
            if (decoded >= 0)
            {
                return decoded;
            }

            if (target.Length == largest)
            {
                throw new InvalidDataException("LZ4 block cannot be decoded.");
            }

            Grow(start + Math.Min(2 * target.Length, largest), keep: start);
        }
    }

    /// <summary>
    /// Where the next block goes. A linked block follows the last 64 KB its frame decoded before it (the history, then
    /// the previous block, which lie side by side), moved to just before it, where it decodes as a prefix.
    /// </summary>
    private int PrepareBuffer()
    {
        int start = _frames.Linked ? History : 0;
        if (_frames.FirstInFrame)
        {
            _history = 0;
        }
        else if (_frames.Linked)
        {
            int keep = Math.Min(History, _history + (_filled - start));
            _buffer.AsSpan(_filled - keep, keep).CopyTo(_buffer.AsSpan(start - keep));
            _history = keep;
        }

        if (_buffer.Length < start + _frames.DecodedSizeGuess)
        {
            Grow(start + _frames.DecodedSizeGuess, keep: _history == 0 ? 0 : start);
        }

        return start;
    }

    /// <summary>A larger buffer from the pool, holding the first <paramref name="keep"/> bytes of the old one.</summary>
    private void Grow(int size, int keep)
    {
        var larger = PooledBytes.Pool.Rent(size);
        _buffer.AsSpan(0, keep).CopyTo(larger);
        Dispose();
        _buffer = larger;
    }
}
