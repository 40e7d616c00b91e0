using System.Globalization;
using System.Text;
using Tributary.Storage.FileSystem;

namespace Tributary.Storage.Cleaning;

/// <summary>
/// Per partition, <c>cleaner-offset.checkpoint</c>: "firstDirtyOffset lastCleanTimeMs" on one line. Everything
/// below firstDirtyOffset has been cleaned against a key map, so the next pass only reads the dirty part to build
/// its map. Written like the log start checkpoint (temp file, fsync, rename, directory fsync) and only after the
/// cleaned segments are in place, so a crash can only make the cleaner redo work, never skip it.
/// </summary>
internal static class CleanerCheckpoint
{
    public const string FileName = "cleaner-offset.checkpoint";

    public readonly record struct Entry(long FirstDirtyOffset, long LastCleanTimeMs);

    public static Entry Read(ISegmentFileSystem fs, string directory)
    {
        string path = Path.Combine(directory, FileName);
        try
        {
            if (!fs.FileExists(path))
            {
                return new Entry(0, -1);
            }

            using var file = fs.OpenFile(path, create: false);
            var bytes = new byte[Math.Min(file.Length, 128)];
            int n = file.Read(0, bytes);
            var parts = Encoding.ASCII.GetString(bytes, 0, n).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            return parts.Length == 2
                && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out long dirty)
                && long.TryParse(parts[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long time)
                ? new Entry(dirty, time) : new Entry(0, -1);
        }
        catch (IOException)
        {
            return new Entry(0, -1);
        }
    }

    public static void Write(ISegmentFileSystem fs, string directory, Entry entry)
    {
        string path = Path.Combine(directory, FileName);
        string temp = path + LogStartCheckpoint.TempSuffix; // recovery removes leftovers with this suffix
        using (var file = fs.OpenFile(temp, create: true))
        {
            file.SetLength(0);
            file.Write(0, Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{entry.FirstDirtyOffset} {entry.LastCleanTimeMs}\n")));
            file.Flush();
        }

        fs.MoveFile(temp, path);
        fs.SyncDirectory(directory);
    }
}
