using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using K4os.Compression.LZ4.Streams;
using Snappier;
using ZstdSharp;

namespace Tributary.Protocol.Records;

/// <summary>
/// Compresses and decompresses the records section of a batch. Off the hot path: the broker stores and
/// serves batches compressed as the producer sent them; this is for validating appends, reading records inside the
/// broker (timestamp lookups, the cleaner, internal topics) and for tests. Every decompression is bounded (see
/// <see cref="MaxDecompressedBytes"/>) and grows its output as data arrives, so a small batch that claims or expands
/// to gigabytes costs at most the bound.
/// Snappy comes in two shapes: librdkafka writes one raw snappy block, the Java client writes xerial's
/// framing ("\x82SNAPPY\0", version, compatible version, then [int32 BE length][raw block]...). Both are read.
/// </summary>
public static class CompressionCodecs
{
    private static ReadOnlySpan<byte> XerialMagic => [0x82, (byte)'S', (byte)'N', (byte)'A', (byte)'P', (byte)'P', (byte)'Y', 0];
    private const int XerialHeaderSize = 16;

    /// <summary>
    /// How far one batch's records section may expand: 64 times the topic's <c>max.message.bytes</c> (64 MiB under
    /// Kafka's default), at most 1 GiB. A producer's batch is bounded before compression by its own
    /// <c>batch.size</c>/<c>message.max.bytes</c>; 64 times the compressed limit leaves room for very compressible
    /// data while a decompression bomb (zstd and gzip expand 1:1000 and more) costs at most that much CPU.
    /// Decompression beyond the bound stops and the batch is refused (MESSAGE_TOO_LARGE, Kafka's RecordTooLargeException).
    /// </summary>
    public static int MaxDecompressedBytes(int maxMessageBytes) => (int)Math.Clamp(64L * Math.Max(maxMessageBytes, 0), 64 << 10, 1 << 30);

    /// <summary>The bound under Kafka's default max.message.bytes, for readers that know no topic configuration.</summary>
    public static readonly int DefaultMaxDecompressedBytes = MaxDecompressedBytes(1048588);

    /// <summary>Decompresses into a new array of exactly the decompressed size, never more than <paramref name="maxBytes"/>.</summary>
    /// <exception cref="DecompressionLimitException">The data expands beyond <paramref name="maxBytes"/>.</exception>
    /// <exception cref="InvalidRecordException">The data cannot be decompressed.</exception>
    public static byte[] Decompress(CompressionCodec codec, ReadOnlySpan<byte> source, int maxBytes = -1)
    {
        using var pooled = DecompressPooled(codec, source, maxBytes < 0 ? DefaultMaxDecompressedBytes : maxBytes);
        return pooled.Span.ToArray();
    }

    /// <summary>
    /// Decompresses into pooled memory that grows as output arrives (never to a size the data merely claims), at most
    /// <paramref name="maxBytes"/>. The caller disposes the result, which returns the memory.
    /// </summary>
    /// <exception cref="DecompressionLimitException">The data expands beyond <paramref name="maxBytes"/>.</exception>
    /// <exception cref="InvalidRecordException">The data cannot be decompressed.</exception>
    public static PooledBytes DecompressPooled(CompressionCodec codec, ReadOnlySpan<byte> source, int maxBytes)
    {
        try
        {
            return codec switch
            {
                CompressionCodec.None => PooledBytes.CopyOf(source, maxBytes),
                CompressionCodec.Snappy => DecompressSnappy(source, maxBytes),
                CompressionCodec.Lz4 => DecompressLz4(source, maxBytes),
                CompressionCodec.Gzip or CompressionCodec.Zstd => DecompressStream(codec, source, maxBytes),
                _ => throw new InvalidRecordException($"Unknown compression codec {(int)codec}."),
            };
        }
        catch (Exception e) when (IsCodecFailure(e))
        {
            throw new InvalidRecordException($"Cannot decompress {codec} record data: {e.Message}", e);
        }
    }

    /// <summary>What the decoders throw for data they cannot decode.</summary>
    internal static bool IsCodecFailure(Exception e) =>
        e is InvalidDataException or IOException or InvalidOperationException or ArgumentException or ZstdException or IndexOutOfRangeException;

    /// <summary>
    /// A stream decoding gzip, LZ4 frames or zstd from <paramref name="compressed"/> (left open). Each decoder's own
    /// memory is bounded by its format: gzip 32 KiB, an LZ4 frame's block at most 4 MiB, a zstd window at most 128 MiB
    /// (zstd's default windowLogMax of 27, as Kafka's zstd-jni). The broker's own LZ4 reading decodes blocks directly
    /// (<see cref="Lz4FrameReader"/>); the LZ4 stream is for callers that want a stream.
    /// </summary>
    internal static Stream OpenDecoder(CompressionCodec codec, Stream compressed) => codec switch
    {
        CompressionCodec.Gzip => new GZipStream(compressed, CompressionMode.Decompress, leaveOpen: true),
        CompressionCodec.Lz4 => LZ4Stream.Decode(compressed, leaveOpen: true),
        CompressionCodec.Zstd => new DecompressionStream(compressed, leaveOpen: true),
        _ => throw new ArgumentOutOfRangeException(nameof(codec)),
    };

    public static byte[] Compress(CompressionCodec codec, ReadOnlySpan<byte> source, bool xerialSnappy = false)
    {
        switch (codec)
        {
            case CompressionCodec.None:
                return source.ToArray();
            case CompressionCodec.Gzip:
                {
                    using var output = new MemoryStream();
                    using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
                    {
                        gzip.Write(source);
                    }

                    return output.ToArray();
                }

            case CompressionCodec.Snappy:
                return xerialSnappy ? CompressXerial(source) : Snappy.CompressToArray(source);
            case CompressionCodec.Lz4:
                {
                    var writer = new ArrayBufferWriter<byte>(Math.Max(64, source.Length / 2));
                    // Independent blocks: Kafka's Java reader (KafkaLZ4BlockInputStream) refuses chained ones.
                    LZ4Frame.Encode(source, writer, new LZ4EncoderSettings { ChainBlocks = false });
                    return writer.WrittenSpan.ToArray();
                }

            case CompressionCodec.Zstd:
                {
                    using var compressor = new Compressor(3);
                    return compressor.Wrap(source).ToArray();
                }

            default:
                throw new ArgumentOutOfRangeException(nameof(codec));
        }
    }

    private static unsafe PooledBytes DecompressStream(CompressionCodec codec, ReadOnlySpan<byte> source, int maxBytes)
    {
        var output = new PooledBytes(Math.Min(maxBytes, Math.Max(4096, source.Length * 4)));
        try
        {
            fixed (byte* pointer = source)
            {
                using var input = new UnmanagedMemoryStream(pointer, source.Length);
                using var decoder = OpenDecoder(codec, input);
                while (true)
                {
                    int room = Math.Min(output.Free.Length, maxBytes - output.Length);
                    if (room == 0)
                    {
                        if (output.Length >= maxBytes)
                        {
                            Span<byte> probe = stackalloc byte[1];
                            if (decoder.Read(probe) > 0)
                            {
                                throw new DecompressionLimitException(maxBytes);
                            }

                            break;
                        }

                        output.Grow(maxBytes);
                        continue;
                    }

                    int read = decoder.Read(output.Free[..room]);
                    if (read == 0)
                    {
                        break;
                    }

                    output.Advance(read);
                }
            }

            return output;
        }
        catch
        {
            output.Dispose();
            throw;
        }
    }

    /// <summary>
    /// LZ4 frames, block by block, each decoded by the block codec straight into the output (<see cref="Lz4FrameReader"/>).
    /// Before a block is decoded the output makes room for it within the bound: for the frame's block maximum size when
    /// that is 64 KB (as librdkafka and the Java client write them), else for a guess that doubles while the block does
    /// not fit, so a small frame of 4 MB blocks does not take 4 MB. A block that may not fit in the room left under the
    /// bound is decoded aside, into one pooled block, to tell a block that expands past the bound
    /// (DecompressionLimitException) from a corrupt one. A linked block's dictionary is the output before it, up to
    /// 64 KB of the same frame.
    /// </summary>
    private static PooledBytes DecompressLz4(ReadOnlySpan<byte> source, int maxBytes)
    {
        var output = new PooledBytes(Math.Min(maxBytes, Math.Max(4096, source.Length * 4)));
        try
        {
            var frames = new Lz4FrameReader(source);
            int frameStart = 0;
            while (frames.MoveNext())
            {
                if (frames.FirstInFrame)
                {
                    frameStart = output.Length;
                }

                DecodeLz4Block(ref output, ref frames, frameStart, maxBytes);
            }

            return output;
        }
        catch
        {
            output.Dispose();
            throw;
        }
    }

    private static void DecodeLz4Block(ref PooledBytes output, ref Lz4FrameReader frames, int frameStart, int maxBytes)
    {
        int largest = frames.LargestDecodedSize;
        for (int size = frames.DecodedSizeGuess; size <= maxBytes - output.Length; size = Math.Min(2 * size, largest))
        {
            output.Reserve(size, maxBytes); // before taking the dictionary: growing moves the output
            var target = output.Free[..Math.Min(output.Free.Length, Math.Min(largest, maxBytes - output.Length))];
            int decoded = frames.TryDecode(target, Dictionary(output, frames.Linked, frameStart));
            if (decoded >= 0)
            {
                output.Advance(decoded);
                return;
            }

            if (target.Length == largest)
            {
                throw new InvalidDataException("LZ4 block cannot be decoded.");
            }

            size = Math.Max(size, target.Length);
        }

        if (frames.Stored)
        {
            throw new DecompressionLimitException(maxBytes);
        }

        var aside = PooledBytes.Pool.Rent(largest);
        try
        {
            int decoded = frames.TryDecode(aside.AsSpan(0, largest), Dictionary(output, frames.Linked, frameStart));
            if (decoded < 0)
            {
                throw new InvalidDataException("LZ4 block cannot be decoded.");
            }

            output.Reserve(decoded, maxBytes); // throws when the block expands past the bound
            aside.AsSpan(0, decoded).CopyTo(output.Free);
            output.Advance(decoded);
        }
        finally
        {
            PooledBytes.Pool.Return(aside);
        }
    }

    private static ReadOnlySpan<byte> Dictionary(PooledBytes output, bool linked, int frameStart) =>
        linked ? output.Span[Math.Max(frameStart, output.Length - Lz4FrameReader.DictionarySize)..] : default;

    /// <summary>
    /// Snappy decodes whole blocks, so each block's claimed length is checked before any memory is taken: against the
    /// bound, and against what the block could possibly hold (a snappy copy element writes at most 64 bytes for 2-3
    /// input bytes, so no valid block expands more than 22 times, plus a few bytes).
    /// </summary>
    private static PooledBytes DecompressSnappy(ReadOnlySpan<byte> source, int maxBytes)
    {
        if (!source.StartsWith(XerialMagic))
        {
            var whole = new PooledBytes(ClaimedSnappyLength(source, maxBytes));
            try
            {
                whole.Advance(Snappy.Decompress(source, whole.Free));
                return whole;
            }
            catch
            {
                whole.Dispose();
                throw;
            }
        }

        var output = new PooledBytes(Math.Min(maxBytes, Math.Max(4096, source.Length * 4)));
        try
        {
            int position = XerialHeaderSize;
            while (position < source.Length)
            {
                if (source.Length - position < 4)
                {
                    throw new InvalidRecordException("Truncated xerial snappy block length.");
                }

                int blockLength = BinaryPrimitives.ReadInt32BigEndian(source[position..]);
                position += 4;
                if (blockLength < 0 || blockLength > source.Length - position)
                {
                    throw new InvalidRecordException("xerial snappy block runs past the end of the data.");
                }

                var block = source.Slice(position, blockLength);
                int length = ClaimedSnappyLength(block, maxBytes - output.Length);
                output.Reserve(length, maxBytes);
                output.Advance(Snappy.Decompress(block, output.Free));
                position += blockLength;
            }

            return output;
        }
        catch
        {
            output.Dispose();
            throw;
        }
    }

    private static int ClaimedSnappyLength(ReadOnlySpan<byte> block, int maxBytes)
    {
        int length = Snappy.GetUncompressedLength(block);
        if (length > maxBytes)
        {
            throw new DecompressionLimitException(maxBytes);
        }

        if (length < 0 || length > 22L * block.Length + 64)
        {
            throw new InvalidRecordException($"Snappy block claims {length} bytes, more than {block.Length} compressed bytes can hold.");
        }

        return length;
    }

    private static byte[] CompressXerial(ReadOnlySpan<byte> source)
    {
        const int blockSize = 32 * 1024;
        var output = new ArrayBufferWriter<byte>(source.Length + XerialHeaderSize);
        XerialMagic.CopyTo(output.GetSpan(XerialHeaderSize));
        var header = output.GetSpan(XerialHeaderSize);
        BinaryPrimitives.WriteInt32BigEndian(header[8..], 1);
        BinaryPrimitives.WriteInt32BigEndian(header[12..], 1);
        output.Advance(XerialHeaderSize);
        for (int offset = 0; offset < source.Length; offset += blockSize)
        {
            var chunk = source.Slice(offset, Math.Min(blockSize, source.Length - offset));
            var span = output.GetSpan(4 + Snappy.GetMaxCompressedLength(chunk.Length));
            int length = Snappy.Compress(chunk, span[4..]);
            BinaryPrimitives.WriteInt32BigEndian(span, length);
            output.Advance(4 + length);
        }

        return output.WrittenSpan.ToArray();
    }
}
