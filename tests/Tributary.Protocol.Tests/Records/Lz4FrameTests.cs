using System.Buffers;
using System.Buffers.Binary;
using CsCheck;
using K4os.Compression.LZ4.Streams;
using K4os.Hash.xxHash;
using Tributary.Protocol.Records;

namespace Tributary.Protocol.Tests.Records;

/// <summary>
/// The direct LZ4 frame decoder (<see cref="Lz4FrameReader"/>), both as <see cref="CompressionCodecs.DecompressPooled"/>
/// uses it (the whole output) and as the validator does (<see cref="Lz4RecordSource"/>, one block at a time): it
/// must decode every frame K4os writes exactly as K4os's stream decoder (the path it replaces) does, refuse what that
/// decoder refused, and turn every malformed or truncated frame into InvalidRecordException, within the bound.
/// </summary>
public sealed class Lz4FrameTests
{
    private static readonly int[] BlockSizes = [64 << 10, 256 << 10, 1 << 20, 4 << 20];

    private static byte[] Encode(ReadOnlySpan<byte> data, int blockSize = 64 << 10, bool chain = false, bool blockChecksum = false,
        bool contentChecksum = false, bool contentSize = false)
    {
        var writer = new ArrayBufferWriter<byte>();
        LZ4Frame.Encode(data, writer, new LZ4EncoderSettings
        {
            BlockSize = blockSize,
            ChainBlocks = chain,
            BlockChecksum = blockChecksum,
            ContentChecksum = contentChecksum,
        });
        var frame = writer.WrittenSpan.ToArray();
        return contentSize ? WithContentSize(frame, data.Length) : frame;
    }

    /// <summary>The frame with a content size in its descriptor (which K4os does not write) and its checksum redone.</summary>
    private static byte[] WithContentSize(byte[] frame, long size)
    {
        var descriptor = new[] { (byte)(frame[4] | 0x08), frame[5] }.Concat(BitConverter.GetBytes(size)).ToArray();
        return frame[..4].Concat(descriptor).Append(HeaderChecksum(descriptor)).Concat(frame[7..]).ToArray();
    }

    /// <summary>What the stream decoder used before (K4os's LZ4Stream.Decode), to compare with.</summary>
    private static byte[] StreamDecode(byte[] frame)
    {
        using var input = new MemoryStream(frame);
        using var decoder = CompressionCodecs.OpenDecoder(CompressionCodec.Lz4, input);
        using var output = new MemoryStream();
        decoder.CopyTo(output);
        return output.ToArray();
    }

    private static byte[] Decode(byte[] frame, int maxBytes = 64 << 20)
    {
        using var pooled = CompressionCodecs.DecompressPooled(CompressionCodec.Lz4, frame, maxBytes);
        return pooled.Span.ToArray();
    }

    /// <summary>Data that compresses somewhat: runs and repeats of a few byte values, with random stretches.</summary>
    private static byte[] Data(int length, int seed)
    {
        var random = new Random(seed);
        var data = new byte[length];
        int position = 0;
        while (position < length)
        {
            int run = Math.Min(length - position, random.Next(1, 300));
            switch (random.Next(3))
            {
                case 0: data.AsSpan(position, run).Fill((byte)random.Next(4)); break;
                case 1: random.NextBytes(data.AsSpan(position, run)); break;
                default:
                    int from = random.Next(Math.Max(1, position));
                    for (int i = 0; i < run; i++) data[position + i] = position == 0 ? (byte)i : data[from + (i % Math.Max(1, position - from))];
                    break;
            }

            position += run;
        }

        return data;
    }

    public static TheoryData<int, bool, bool, bool, bool> Settings()
    {
        var settings = new TheoryData<int, bool, bool, bool, bool>();
        foreach (var blockSize in BlockSizes)
            foreach (var chain in new[] { false, true })
                foreach (var blockChecksum in new[] { false, true })
                    foreach (var contentChecksum in new[] { false, true })
                        settings.Add(blockSize, chain, blockChecksum, contentChecksum, blockSize == 256 << 10);
        return settings;
    }

    [Theory]
    [MemberData(nameof(Settings))]
    public void Frames_of_every_setting_decode_as_the_stream_decoder_does(int blockSize, bool chain, bool blockChecksum, bool contentChecksum, bool contentSize)
    {
        var data = Data((blockSize * 2) + 12_345, blockSize);
        var frame = Encode(data, blockSize, chain, blockChecksum, contentChecksum, contentSize);
        Assert.Equal(data, Decode(frame));
        Assert.Equal(data, StreamDecode(frame));
    }

    [Theory]
    [MemberData(nameof(Settings))]
    public void Batches_of_every_setting_validate_block_by_block(int blockSize, bool chain, bool blockChecksum, bool contentChecksum, bool contentSize)
    {
        // Records repeat, so linked blocks refer back into the blocks before them; 130-byte records cross block ends.
        var (batch, count) = Lz4Batch(3000, 120, section => Encode(section, blockSize, chain, blockChecksum, contentChecksum, contentSize));
        Assert.Equal(RecordsError.None, RecordBatchValidator.Validate(batch, int.MaxValue, out var summary, out var message));
        Assert.Null(message);
        Assert.Equal(count, summary.RecordCount);
        Assert.Equal(count, RecordReader.ReadAll(batch).Count());
    }

    [Fact]
    public void Random_data_and_settings_decode_byte_for_byte_as_the_stream_decoder_does() =>
        Gen.Select(Gen.Int[0, 300_000], Gen.Int, Gen.Int[0, 3], Gen.Bool, Gen.Bool, Gen.Bool, Gen.Bool)
            .Sample((length, seed, size, chain, blockChecksum, contentChecksum, contentSize) =>
            {
                var data = Data(length, seed);
                var frame = Encode(data, BlockSizes[size], chain, blockChecksum, contentChecksum, contentSize);
                var decoded = Decode(frame);
                Assert.Equal(StreamDecode(frame), decoded);
                Assert.Equal(data, decoded);
            }, iter: 60);

    /// <summary>Whatever one corrupted byte does to a frame, the new decoder accepts nothing the stream decoder refused,
    /// and what both accept decodes to the same bytes; everything it refuses is an InvalidRecordException.</summary>
    [Fact]
    public void Corrupted_frames_are_refused_at_least_as_strictly_as_the_stream_decoder_did() =>
        Gen.Select(Gen.Int[1, 200_000], Gen.Int, Gen.Bool, Gen.Bool, Gen.Bool, Gen.Int, Gen.Byte)
            .Sample((length, seed, chain, blockChecksum, contentChecksum, where, value) =>
            {
                var frame = Encode(Data(length, seed), 64 << 10, chain, blockChecksum, contentChecksum);
                int position = (int)((uint)where % (uint)frame.Length);
                if (frame[position] == value) value ^= 0x40;
                frame[position] = value;
                byte[]? decoded = null;
                try
                {
                    decoded = Decode(frame);
                }
                catch (InvalidRecordException)
                {
                }

                if (decoded is not null)
                {
                    Assert.Equal(StreamDecode(frame), decoded);
                }
            }, iter: 400);

    [Fact]
    public void Empty_input_and_an_empty_frame_decode_to_nothing()
    {
        Assert.Empty(Decode([]));
        Assert.Empty(StreamDecode([]));
        var empty = Encode([]);
        Assert.Empty(Decode(empty));
        Assert.Empty(StreamDecode(empty));
    }

    [Fact]
    public void Uncompressed_blocks_are_copied()
    {
        var data = Data(70_000, 3);
        var frame = Frame(0x60, 0x40, Block(data.AsSpan(0, 65_536), stored: true), Block(data.AsSpan(65_536), stored: true), [0, 0, 0, 0]);
        Assert.Equal(data, Decode(frame));
        Assert.Equal(data, StreamDecode(frame));

        var incompressible = new byte[200_000];
        new Random(5).NextBytes(incompressible);
        var written = Encode(incompressible);
        Assert.True((BinaryPrimitives.ReadUInt32LittleEndian(written.AsSpan(7)) & 0x80000000) != 0, "K4os stores random data uncompressed");
        Assert.Equal(incompressible, Decode(written));
    }

    [Fact]
    public void Frames_that_follow_one_another_decode_in_turn()
    {
        var first = Data(100_000, 1);
        var second = Data(5_000, 2);
        var frames = Encode(first, chain: true).Concat(Encode(second, contentChecksum: true)).ToArray();
        Assert.Equal(first.Concat(second), Decode(frames));
        Assert.Equal(first.Concat(second), StreamDecode(frames));
    }

    [Fact]
    public void Every_truncation_of_a_frame_is_an_InvalidRecordException()
    {
        foreach (var (checksums, chain) in new[] { (false, false), (true, true) })
        {
            var frame = Encode(Data(70_000, 7), 64 << 10, chain, checksums, checksums, contentSize: checksums); // two blocks
            for (int length = 1; length < frame.Length; length++)
            {
                var truncated = frame[..length];
                Assert.Throws<InvalidRecordException>(() => Decode(truncated));
            }
        }
    }

    [Fact]
    public void Every_truncation_of_a_batch_is_refused_as_corrupt()
    {
        var (batch, _) = Lz4Batch(1500, 100, section => Encode(section));
        var header = batch[..RecordBatchHeader.HeaderSize];
        var body = batch[RecordBatchHeader.HeaderSize..];
        for (int length = 1; length < body.Length; length++) // an empty body holds no records: INVALID_RECORD, as before
        {
            var truncated = Rebuild(header, body[..length]);
            var error = RecordBatchValidator.Validate(truncated, int.MaxValue, out _, out var message);
            Assert.True(error == RecordsError.CorruptMessage, $"{length} of {body.Length} bytes: {error} {message}");
        }
    }

    [Fact]
    public void Header_block_and_content_checksum_mismatches_are_refused_by_both_decoders()
    {
        var data = Data(100_000, 11);
        var frame = Encode(data, blockChecksum: true, contentChecksum: true);
        foreach (int position in new[] { 6, 7 + 4 + 2, frame.Length - 1 }) // header checksum, first block's data (its checksum then fails), content checksum
        {
            var broken = frame.ToArray();
            broken[position] ^= 0x01;
            Assert.Throws<InvalidRecordException>(() => Decode(broken));
            Assert.ThrowsAny<Exception>(() => StreamDecode(broken));
        }

        var blockChecksum = frame.ToArray();
        int firstBlock = (int)(BinaryPrimitives.ReadUInt32LittleEndian(blockChecksum.AsSpan(7)) & 0x7FFFFFFF);
        blockChecksum[7 + 4 + firstBlock] ^= 0x01;
        Assert.Throws<InvalidRecordException>(() => Decode(blockChecksum));
        Assert.ThrowsAny<Exception>(() => StreamDecode(blockChecksum));
    }

    [Theory]
    [InlineData(0x20, 0x40, 0, "version 00")]
    [InlineData(0xE0, 0x40, 0, "version 11")]
    [InlineData(0x61, 0x40, 0, "preset dictionary")]
    [InlineData(0x62, 0x40, 0, "reserved FLG bit")]
    [InlineData(0x60, 0xC0, 0, "reserved BD bit")]
    [InlineData(0x60, 0x41, 0, "reserved BD bits")]
    [InlineData(0x60, 0x30, 0, "block size code 3")]
    [InlineData(0x68, 0x40, 999, "content size that does not match")]
    public void Malformed_frame_descriptors_are_refused(int flags, int descriptor, long contentSize, string what)
    {
        var data = Data(1000, 1);
        var frame = SizedFrame(flags, descriptor, contentSize > 0 ? BitConverter.GetBytes(contentSize) : [], Block(data, stored: true), [0, 0, 0, 0]);
        var e = Assert.Throws<InvalidRecordException>(() => Decode(frame));
        Assert.True(e.InnerException is InvalidDataException, what);
    }

    [Fact]
    public void Malformed_blocks_are_refused()
    {
        var data = Data(1000, 1);
        byte[] end = [0, 0, 0, 0];
        Assert.Throws<InvalidRecordException>(() => Decode([0x04, 0x22, 0x4D, 0x19])); // magic alone
        Assert.Throws<InvalidRecordException>(() => Decode([1, 2, 3, 4, 5, 6, 7, 8])); // not a frame
        Assert.Throws<InvalidRecordException>(() => Decode(Encode(data).Concat(new byte[] { 1, 2 }).ToArray())); // trailing bytes
        var oversized = new byte[(64 << 10) + 1];
        Assert.Throws<InvalidRecordException>(() => Decode(Frame(0x60, 0x40, Block(oversized, stored: true), end))); // block above the maximum size
        var sizePastEnd = Frame(0x60, 0x40, BitConverter.GetBytes(1000), data.AsSpan(0, 10).ToArray()); // a block size past the end
        Assert.Throws<InvalidRecordException>(() => Decode(sizePastEnd));
        byte[] badOffset = [0x10, 0x41, 0x10, 0x00]; // one literal, then a match 16 bytes back: before the output's start
        Assert.Throws<InvalidRecordException>(() => Decode(Frame(0x60, 0x40, Block(badOffset, stored: false), end)));
        byte[] longLiterals = [0xF0, 0xFF, 0x10, 0x41]; // more literals than the block holds
        Assert.Throws<InvalidRecordException>(() => Decode(Frame(0x60, 0x40, Block(longLiterals, stored: false), end)));
        // A compressed block that decodes to more than the frame's block maximum size.
        var big = Encode(new byte[300_000], blockSize: 1 << 20);
        big[5] = 0x40;
        big[6] = HeaderChecksum(big.AsSpan(4, 2));
        Assert.Throws<InvalidRecordException>(() => Decode(big));
    }

    [Fact]
    public void A_bomb_stops_at_the_bound_and_takes_no_more_memory()
    {
        const int bound = 1 << 20;
        var section = new RecordBatchBuilder().Add(0, null, new byte[32 << 20]).Build()[RecordBatchHeader.HeaderSize..];
        var bomb = Encode(section); // one record of 32 MiB of zeros in about 130 KB
        Assert.InRange(bomb.Length, 1, 256 << 10);
        Assert.Throws<DecompressionLimitException>(() => Decode(bomb, bound)); // warm the pool
        long before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Throws<DecompressionLimitException>(() => Decode(bomb, bound));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < bound, $"{allocated} bytes allocated");

        var (batch, _) = Lz4Batch(1, 10, _ => bomb);
        int maxBatchBytes = batch.Length; // validating decompresses at most 64 x max.message.bytes: here about 8 MiB
        RecordBatchValidator.Validate(batch, maxBatchBytes, out _);
        before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(RecordsError.MessageTooLarge, RecordBatchValidator.Validate(batch, maxBatchBytes, out _));
        allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 16 << 10, $"{allocated} bytes allocated");
    }

    [Fact]
    public void A_small_frame_of_4_MB_blocks_takes_little_memory()
    {
        var (batch, count) = Lz4Batch(100, 100, section => Encode(section, blockSize: 4 << 20));
        var body = batch[RecordBatchHeader.HeaderSize..];
        Assert.Equal(RecordsError.None, RecordBatchValidator.Validate(batch, int.MaxValue, out _)); // warm the pool
        Assert.Equal(count, RecordReader.ReadAll(batch).Count());
        long before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(RecordsError.None, RecordBatchValidator.Validate(batch, int.MaxValue, out _));
        long validating = GC.GetAllocatedBytesForCurrentThread() - before;
        before = GC.GetAllocatedBytesForCurrentThread();
        CompressionCodecs.DecompressPooled(CompressionCodec.Lz4, body, 64 << 20).Dispose();
        long decompressing = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(validating < 4 << 10 && decompressing < 4 << 10, $"validating allocated {validating} bytes, decompressing {decompressing}");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Output_may_reach_the_bound_exactly_and_not_a_byte_more(bool stored)
    {
        var data = Data(200_000, 4);
        if (stored) new Random(4).NextBytes(data);
        var frame = Encode(data);
        Assert.Equal(data, Decode(frame, data.Length));
        Assert.Throws<DecompressionLimitException>(() => Decode(frame, data.Length - 1));
        Assert.Throws<DecompressionLimitException>(() => Decode(frame, 100_000));

        // A corrupt block where the bound falls is refused as corrupt, as the stream decoder refused it.
        var corrupt = Encode(Data(200_000, 4));
        int firstBlock = (int)(BinaryPrimitives.ReadUInt32LittleEndian(corrupt.AsSpan(7)) & 0x7FFFFFFF);
        int second = 7 + 4 + firstBlock;
        Assert.True((BinaryPrimitives.ReadUInt32LittleEndian(corrupt.AsSpan(second)) & 0x80000000) == 0, "the second block is compressed");
        new byte[] { 0x10, 0x41, 0x10, 0x00 }.CopyTo(corrupt, second + 4); // a match before the block's start
        var e = Assert.Throws<InvalidRecordException>(() => Decode(corrupt, 100_000));
        Assert.IsNotType<DecompressionLimitException>(e);
    }

    private static byte[] Block(ReadOnlySpan<byte> data, bool stored)
    {
        var block = new byte[4 + data.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(block, (uint)data.Length | (stored ? 0x80000000 : 0));
        data.CopyTo(block.AsSpan(4));
        return block;
    }

    private static byte HeaderChecksum(ReadOnlySpan<byte> descriptor) => (byte)(XXH32.DigestOf(descriptor) >> 8);

    /// <summary>A frame: magic, FLG, BD, a correct header checksum, then the parts.</summary>
    private static byte[] Frame(int flags, int descriptor, params byte[][] parts) => SizedFrame(flags, descriptor, [], parts);

    /// <summary>A frame whose descriptor ends with <paramref name="contentSize"/> (empty for none).</summary>
    private static byte[] SizedFrame(int flags, int descriptor, byte[] contentSize, params byte[][] parts)
    {
        var descriptorBytes = new[] { (byte)flags, (byte)descriptor }.Concat(contentSize).ToArray();
        var header = new byte[] { 0x04, 0x22, 0x4D, 0x18 }.Concat(descriptorBytes).Append(HeaderChecksum(descriptorBytes));
        return header.Concat(parts.SelectMany(p => p)).ToArray();
    }

    /// <summary>A batch of <paramref name="count"/> equal records whose section <paramref name="compress"/> turns into an lz4 body.</summary>
    private static (byte[] Batch, int Count) Lz4Batch(int count, int valueSize, Func<byte[], byte[]> compress)
    {
        var value = new byte[valueSize];
        new Random(1).NextBytes(value);
        var builder = new RecordBatchBuilder();
        for (int i = 0; i < count; i++) builder.Add(1_700_000_000_000 + i, [(byte)i], value);
        var plain = builder.Build();
        var header = plain[..RecordBatchHeader.HeaderSize];
        short attributes = BinaryPrimitives.ReadInt16BigEndian(header.AsSpan(RecordBatchHeader.AttributesOffset));
        BinaryPrimitives.WriteInt16BigEndian(header.AsSpan(RecordBatchHeader.AttributesOffset), (short)(attributes | (int)CompressionCodec.Lz4));
        return (Rebuild(header, compress(plain[RecordBatchHeader.HeaderSize..])), count);
    }

    private static byte[] Rebuild(byte[] header, byte[] body)
    {
        var batch = header.Concat(body).ToArray();
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(RecordBatchHeader.BatchLengthOffset), batch.Length - RecordBatchHeader.LogOverhead);
        BinaryPrimitives.WriteUInt32BigEndian(batch.AsSpan(RecordBatchHeader.CrcOffset), RecordBatchHeader.ComputeCrc(batch));
        return batch;
    }
}
