using System.Globalization;
using Tributary.Storage.FileSystem;

namespace Tributary.Storage;

public sealed partial class PartitionLog
{
    /// <summary>Written by a clean <see cref="Dispose"/> after the final sync; lets the next open skip the full scan of the active segment.</summary>
    internal const string CleanShutdownFile = ".clean-shutdown";

    /// <summary>Opens (creating if missing) the log in <paramref name="directory"/> and runs crash recovery.</summary>
    public static PartitionLog Open(string directory, LogConfig config, TimeProvider time) =>
        Open(directory, config, time, LocalFileSystem.Instance, LogFlusher.Shared);

    /// <summary>
    /// Crash recovery. Leftovers of interrupted operations go first: <c>.deleted</c> segments (retention
    /// had already dropped them), temp files of the checkpoint, index files without a log. Then each
    /// segment is recovered in offset order (<see cref="LogSegment.Recover"/>): the last in full, earlier ones
    /// by checking their indexes and tail. After a clean shutdown (marker file present, removed durably before
    /// anything else happens) the last segment gets the cheap index-and-tail check too, like Kafka. If a closed segment turns out damaged it is truncated and every
    /// later segment is removed, because offsets after a hole cannot be trusted to be dense. A log
    /// recovered this way holds exactly the whole, CRC-valid batches, so every acknowledged (synced) batch.
    /// </summary>
    internal static PartitionLog Open(string directory, LogConfig config, TimeProvider time, ISegmentFileSystem fs, LogFlusher flusher, StorageDiagnostics? diagnostics = null, LogDirectory? logDirectory = null)
    {
        fs.CreateDirectory(directory);
        RecoverInterruptedSwaps(fs, directory);
        long now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var logs = new SortedSet<long>();
        var indexFiles = new List<(long BaseOffset, string Path)>();
        foreach (string path in fs.EnumerateFiles(directory).ToList())
        {
            string name = Path.GetFileName(path);
            if (name.EndsWith(LogSegment.DeletedSuffix, StringComparison.Ordinal) || name.EndsWith(LogStartCheckpoint.TempSuffix, StringComparison.Ordinal))
            {
                fs.DeleteFile(path);
                continue;
            }

            string extension = Path.GetExtension(name);
            if (!TryParseBaseOffset(Path.GetFileNameWithoutExtension(name), out long baseOffset))
            {
                continue;
            }

            if (extension == LogSegment.LogExtension)
            {
                logs.Add(baseOffset);
            }
            else if (extension is LogSegment.IndexExtension or LogSegment.TimeIndexExtension)
            {
                indexFiles.Add((baseOffset, path));
            }
        }

        foreach (var (baseOffset, path) in indexFiles)
        {
            if (!logs.Contains(baseOffset))
            {
                fs.DeleteFile(path);
            }
        }

        string marker = Path.Combine(directory, CleanShutdownFile);
        bool clean = fs.FileExists(marker);
        if (clean)
        {
            fs.DeleteFile(marker);
            fs.SyncDirectory(directory);
        }

        long checkpoint = LogStartCheckpoint.Read(fs, directory);
        var segments = new List<LogSegment>();
        try
        {
            var bases = logs.ToArray();
            for (int i = 0; i < bases.Length; i++)
            {
                var (segment, truncated) = LogSegment.Recover(fs, directory, bases[i], isActive: i == bases.Length - 1 && !clean, config.IndexIntervalBytes, now);
                segments.Add(segment);
                if (truncated && i < bases.Length - 1)
                {
                    for (int j = i + 1; j < bases.Length; j++)
                    {
                        foreach (string extension in (string[])[LogSegment.LogExtension, LogSegment.IndexExtension, LogSegment.TimeIndexExtension])
                        {
                            fs.DeleteFile(Path.Combine(directory, LogSegment.FileName(bases[j], extension)));
                        }
                    }

                    break;
                }
            }

            if (segments.Count == 0)
            {
                segments.Add(LogSegment.Create(fs, directory, Math.Max(0, checkpoint), now));
            }
        }
        catch
        {
            foreach (var segment in segments)
            {
                segment.Dispose();
            }

            throw;
        }

        long logStart = Math.Max(checkpoint, segments[0].BaseOffset);
        LeaderEpochCache epochs;
        try
        {
            epochs = LeaderEpochCache.Load(fs, directory, segments, clean);
        }
        catch
        {
            foreach (var segment in segments)
            {
                segment.Dispose();
            }

            throw;
        }

        return new PartitionLog(directory, config, time, fs, flusher, [.. segments], logStart, epochs) { _diagnostics = diagnostics, _logDir = logDirectory };
    }

    private static bool TryParseBaseOffset(string name, out long baseOffset)
    {
        baseOffset = 0;
        return name.Length == 20 && long.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out baseOffset);
    }
}
