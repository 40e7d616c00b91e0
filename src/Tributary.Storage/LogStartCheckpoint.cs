using System.Globalization;
using System.Text;
using Tributary.Storage.FileSystem;

namespace Tributary.Storage;

/// <summary>
/// The log start offset set by DeleteRecords, in <c>log-start-offset.checkpoint</c> as one decimal line.
/// Written atomically: a temp file is written and fsynced, then renamed over the old one, so a crash
/// leaves either the old or the new value. Retention needs no checkpoint: after it, the start is the
/// first segment's base offset, which reopening derives anyway.
/// </summary>
internal static class LogStartCheckpoint
{
    public const string FileName = "log-start-offset.checkpoint";
    public const string TempSuffix = ".tmp";

    public static long Read(ISegmentFileSystem fs, string directory)
    {
        string path = Path.Combine(directory, FileName);
        if (!fs.FileExists(path))
        {
            return 0;
        }

        using var file = fs.OpenFile(path, create: false);
        var bytes = new byte[Math.Min(file.Length, 64)];
        int n = file.Read(0, bytes);
        return long.TryParse(Encoding.ASCII.GetString(bytes, 0, n).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out long value) ? value : 0;
    }

    public static void Write(ISegmentFileSystem fs, string directory, long logStartOffset)
    {
        string path = Path.Combine(directory, FileName);
        string temp = path + TempSuffix;
        using (var file = fs.OpenFile(temp, create: true))
        {
            file.SetLength(0);
            file.Write(0, Encoding.ASCII.GetBytes(logStartOffset.ToString(CultureInfo.InvariantCulture) + "\n"));
            file.Flush();
        }

        fs.MoveFile(temp, path);
        fs.SyncDirectory(directory);
    }
}
