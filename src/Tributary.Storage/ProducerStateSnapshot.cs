using System.Buffers.Binary;
using System.Globalization;
using Tributary.Protocol.Records;
using Tributary.Storage.FileSystem;

namespace Tributary.Storage;

/// <summary>
/// Producer state written at a segment roll and at clean shutdown, as <c>NNNNNNNNNNNNNNNNNNNN.snapshot</c> named by
/// the log end offset it covers: the state after every batch below that offset. At open the newest snapshot at or
/// below the log end is loaded and only the batches after it are scanned, so a restart neither forgets sequences
/// nor rereads the whole log. The last two snapshots are kept.
///
/// Format (big-endian): int16 version (1), uint32 CRC-32C of everything after it, int32 entry count, then per entry
/// int64 producer id, int16 epoch, int32 coordinator epoch, int64 last timestamp, int64 open transaction's first
/// offset (-1), int32 batch count and per batch int32 first sequence, int32 last sequence, int64 first offset,
/// int64 last offset, int64 timestamp. A snapshot that fails its CRC is ignored (the previous one, or a longer
/// scan, takes its place). Written to a temp file and renamed, through the file-system seam like every other file of
/// the log, so tests can fail or tear it.
/// </summary>
internal static class ProducerStateSnapshot
{
    public const string Extension = ".snapshot";
    private const short Version = 1;

    public static string PathFor(string directory, long offset) => Path.Combine(directory, $"{offset:D20}{Extension}");

    /// <summary>Snapshot offsets present in the directory, ascending.</summary>
    public static List<long> List(ISegmentFileSystem fs, string directory)
    {
        var result = new List<long>();
        foreach (var path in fs.EnumerateFiles(directory).ToList())
        {
            if (path.EndsWith(Extension + ".tmp", StringComparison.Ordinal))
            {
                fs.DeleteFile(path); // an interrupted write
                continue;
            }

            if (!path.EndsWith(Extension, StringComparison.Ordinal)) continue;
            var name = Path.GetFileNameWithoutExtension(path);
            if (name.Length == 20 && long.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out var offset)) result.Add(offset);
        }
        result.Sort();
        return result;
    }

    public static void Write(ISegmentFileSystem fs, string directory, long offset, IEnumerable<ProducerStateEntry> entries)
    {
        using var body = new MemoryStream();
        var b = new byte[8];
        void I16(short v) { BinaryPrimitives.WriteInt16BigEndian(b, v); body.Write(b[..2]); }
        void I32(int v) { BinaryPrimitives.WriteInt32BigEndian(b, v); body.Write(b[..4]); }
        void I64(long v) { BinaryPrimitives.WriteInt64BigEndian(b, v); body.Write(b[..8]); }
        var list = entries.ToList();
        I32(list.Count);
        foreach (var e in list)
        {
            I64(e.ProducerId);
            I16(e.Epoch);
            I32(e.CoordinatorEpoch);
            I64(e.LastTimestampMs);
            I64(e.CurrentTxnFirstOffset);
            I32(e.Batches.Count);
            foreach (var batch in e.Batches)
            {
                I32(batch.FirstSequence);
                I32(batch.LastSequence);
                I64(batch.FirstOffset);
                I64(batch.LastOffset);
                I64(batch.TimestampMs);
            }
        }

        var payload = body.ToArray();
        var file = new byte[6 + payload.Length];
        BinaryPrimitives.WriteInt16BigEndian(file, Version);
        BinaryPrimitives.WriteUInt32BigEndian(file.AsSpan(2), Crc32C.Compute(payload));
        payload.CopyTo(file, 6);
        var path = PathFor(directory, offset);
        var temp = path + ".tmp";
        using (var handle = fs.OpenFile(temp, create: true))
        {
            handle.SetLength(0);
            handle.Write(0, file);
            handle.Flush();
        }
        fs.MoveFile(temp, path);
    }

    /// <summary>The entries of a snapshot, or null when it is missing, torn or of an unknown version.</summary>
    public static List<ProducerStateEntry>? Read(ISegmentFileSystem fs, string directory, long offset)
    {
        byte[] file;
        try
        {
            using var handle = fs.OpenFile(PathFor(directory, offset), create: false);
            file = new byte[handle.Length];
            if (handle.Read(0, file) != file.Length) return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        if (file.Length < 10 || BinaryPrimitives.ReadInt16BigEndian(file) != Version
            || BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(2)) != Crc32C.Compute(file.AsSpan(6)))
        {
            return null;
        }

        try
        {
            var span = new ReadOnlySpan<byte>(file, 6, file.Length - 6);
            int p = 0;
            short I16(ReadOnlySpan<byte> s) { var v = BinaryPrimitives.ReadInt16BigEndian(s[p..]); p += 2; return v; }
            int I32(ReadOnlySpan<byte> s) { var v = BinaryPrimitives.ReadInt32BigEndian(s[p..]); p += 4; return v; }
            long I64(ReadOnlySpan<byte> s) { var v = BinaryPrimitives.ReadInt64BigEndian(s[p..]); p += 8; return v; }
            int count = I32(span);
            var result = new List<ProducerStateEntry>(count);
            for (int i = 0; i < count; i++)
            {
                var entry = new ProducerStateEntry(I64(span))
                {
                    Epoch = I16(span),
                    CoordinatorEpoch = I32(span),
                    LastTimestampMs = I64(span),
                    CurrentTxnFirstOffset = I64(span),
                };
                int batches = I32(span);
                for (int j = 0; j < batches; j++)
                    entry.AddBatch(new ProducerBatch(I32(span), I32(span), I64(span), I64(span), I64(span)));
                result.Add(entry);
            }
            return result;
        }
        catch (ArgumentOutOfRangeException)
        {
            return null;
        }
    }

    public static void Delete(ISegmentFileSystem fs, string directory, long offset)
    {
        try
        {
            fs.DeleteFile(PathFor(directory, offset));
        }
        catch (IOException)
        {
        }
    }
}
