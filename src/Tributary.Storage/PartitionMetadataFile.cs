using System.Text;
using Tributary.Storage.FileSystem;

namespace Tributary.Storage;

/// <summary>
/// Kafka's <c>partition.metadata</c> in each partition directory: <c>version: 0</c> and <c>topic_id: &lt;id&gt;</c>
/// (Kafka's Uuid text form, URL-safe base64 without padding). It ties the directory to one incarnation of a topic,
/// so a directory left by a deleted topic can never be adopted by a new topic of the same name.
/// Written to a temp file, synced, renamed, directory synced: it exists whole or not at all.
/// </summary>
internal static class PartitionMetadataFile
{
    public const string FileName = "partition.metadata";
    private const string TempSuffix = ".tmp";

    /// <summary>The topic id the directory belongs to; null when there is no (readable) file.</summary>
    public static Guid? Read(ISegmentFileSystem fs, string directory)
    {
        string path = Path.Combine(directory, FileName);
        if (!fs.FileExists(path))
        {
            return null;
        }

        using var file = fs.OpenFile(path, create: false);
        var bytes = new byte[Math.Min(file.Length, 4096)];
        file.Read(0, bytes);
        foreach (string line in Encoding.UTF8.GetString(bytes).Split('\n'))
        {
            const string prefix = "topic_id: ";
            if (line.StartsWith(prefix, StringComparison.Ordinal) && TryParseKafkaUuid(line[prefix.Length..].Trim(), out var id))
            {
                return id;
            }
        }

        return null;
    }

    public static void Write(ISegmentFileSystem fs, string directory, Guid topicId)
    {
        string path = Path.Combine(directory, FileName);
        byte[] content = Encoding.UTF8.GetBytes($"version: 0\ntopic_id: {ToKafkaUuid(topicId)}\n");
        using (var file = fs.OpenFile(path + TempSuffix, create: true))
        {
            file.SetLength(0);
            file.Write(0, content);
            file.Flush();
        }

        fs.MoveFile(path + TempSuffix, path);
        fs.SyncDirectory(directory);
    }

    /// <summary>Kafka writes a Uuid as the URL-safe base64 of its 16 big-endian bytes, without padding.</summary>
    public static string ToKafkaUuid(Guid id) =>
        Convert.ToBase64String(id.ToByteArray(bigEndian: true)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static bool TryParseKafkaUuid(string text, out Guid id)
    {
        id = Guid.Empty;
        string base64 = text.Replace('-', '+').Replace('_', '/') + "==";
        Span<byte> bytes = stackalloc byte[18];
        if (!Convert.TryFromBase64String(base64, bytes, out int written) || written != 16)
        {
            return false;
        }

        id = new Guid(bytes[..16], bigEndian: true);
        return true;
    }
}
