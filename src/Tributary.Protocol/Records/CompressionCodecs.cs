using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using K4os.Compression.LZ4.Streams;
using Snappier;
using ZstdSharp;

namespace Tributary.Protocol.Records;

/// <summary>
/// Compresses and decompresses the records section of a batch. Off the hot path: the broker stores and
/// serves batches compressed as the producer sent them; this is for reading records inside the broker
/// (timestamp lookups, internal topics) and for tests.
/// Snappy comes in two shapes: librdkafka writes one raw snappy block, the Java client writes xerial's
/// framing ("\x82SNAPPY\0", version, compatible version, then [int32 BE length][raw block]...). Both are read.
/// </summary>
public static class CompressionCodecs
{
    private static ReadOnlySpan<byte> XerialMagic => [0x82, (byte)'S', (byte)'N', (byte)'A', (byte)'P', (byte)'P', (byte)'Y', 0];
    private const int XerialHeaderSize = 16;

    public static byte[] Decompress(CompressionCodec codec, ReadOnlySpan<byte> source)
    {
        try
        {
            return codec switch
            {
                CompressionCodec.None => source.ToArray(),
                CompressionCodec.Gzip => DecompressStream(source, s => new GZipStream(s, CompressionMode.Decompress)),
                CompressionCodec.Snappy => DecompressSnappy(source),
                CompressionCodec.Lz4 => DecompressStream(source, s => LZ4Stream.Decode(s)),
                CompressionCodec.Zstd => DecompressStream(source, s => new DecompressionStream(s)),
                _ => throw new InvalidRecordException($"Unknown compression codec {(int)codec}."),
            };
        }
        catch (InvalidRecordException)
        {
            throw;
        }
        catch (Exception e) when (e is InvalidDataException or IOException or InvalidOperationException or ArgumentException or ZstdException)
        {
            throw new InvalidRecordException($"Cannot decompress {codec} record data: {e.Message}", e);
        }
    }

    /// <summary>
    /// Decompresses into <paramref name="target"/>, appending: lets a caller that decompresses many batches (the log
    /// cleaner) reuse one buffer. LZ4 frames decode straight from the span, without the stream copies.
    /// </summary>
    public static void DecompressInto(CompressionCodec codec, ReadOnlySpan<byte> source, ArrayBufferWriter<byte> target)
    {
        if (codec != CompressionCodec.Lz4)
        {
            target.Write(Decompress(codec, source));
            return;
        }

        try
        {
            LZ4Frame.Decode(source, target);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or InvalidOperationException or ArgumentException)
        {
            throw new InvalidRecordException($"Cannot decompress {codec} record data: {e.Message}", e);
        }
    }

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
                    LZ4Frame.Encode(source, writer, new LZ4EncoderSettings());
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

    private static byte[] DecompressStream(ReadOnlySpan<byte> source, Func<Stream, Stream> open)
    {
        // The source is copied once so the decoder can read it as a stream; fine off the hot path.
        using var input = new MemoryStream(source.ToArray(), writable: false);
        using var decoder = open(input);
        using var output = new MemoryStream(source.Length * 2);
        decoder.CopyTo(output);
        return output.ToArray();
    }

    private static byte[] DecompressSnappy(ReadOnlySpan<byte> source)
    {
        if (!source.StartsWith(XerialMagic))
        {
            return Snappy.DecompressToArray(source);
        }

        var output = new ArrayBufferWriter<byte>(source.Length * 2);
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
            int length = Snappy.GetUncompressedLength(block);
            int written = Snappy.Decompress(block, output.GetSpan(length));
            output.Advance(written);
            position += blockLength;
        }

        return output.WrittenSpan.ToArray();
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
