using Tributary.Storage;
using Tributary.Storage.FileSystem;

namespace Tributary.Broker;

/// <summary>
/// Start-up check of <c>ulimit -n</c> against the data directory. Segment files are opened on demand and at most
/// log.max.open.files of them stay open (half the limit by default), so a large data directory needs no large limit
/// to start; the check says when the limit is too low to run at all (refused, with the command to fix it) or lower
/// than what keeping every segment open would need (a warning: reads of cold segments reopen files).
/// </summary>
public static class OpenFileLimitCheck
{
    /// <summary>Below this the runtime (two descriptors per loaded assembly), the listeners and a handful of connections and segments do not fit.</summary>
    public const int Minimum = 512;

    /// <summary>Descriptors kept for the runtime, sockets and short-lived files beyond the segment files.</summary>
    private const int Headroom = 1024;

    public static void Run(string dataDir, LogManager logs, int partitions, int maxBrokerPartitions, BrokerLog log)
    {
        var limit = OpenFileLimit.Current();
        if (limit is null) return;
        if (limit < Minimum)
            throw new InvalidOperationException(
                $"The open-file limit (ulimit -n) is {limit}; Tributary needs at least {Minimum}. Raise it (e.g. `ulimit -n 65536` before starting, or LimitNOFILE= in a systemd unit).");
        if (logs.MaxOpenFiles >= limit)
            log.Warn($"log.max.open.files={logs.MaxOpenFiles} is not below the open-file limit (ulimit -n = {limit}); connections may be refused for lack of descriptors. Leave it unset (half of what the runtime leaves) or raise ulimit -n.");
        var segmentFiles = CountSegmentFiles(dataDir);
        if (segmentFiles > logs.MaxOpenFiles)
            log.Warn($"The data directory {dataDir} holds {segmentFiles} segment and index files but at most {logs.MaxOpenFiles} stay open (log.max.open.files; ulimit -n = {limit}): the others are reopened when used, which slows reads of cold partitions. To keep them all open, raise ulimit -n to at least {segmentFiles + Headroom} and log.max.open.files to {segmentFiles}.");
        if (maxBrokerPartitions > 0 && partitions > maxBrokerPartitions)
            log.Warn($"This broker holds {partitions} partitions, above max.broker.partitions={maxBrokerPartitions}: no partition can be created until topics are deleted or the setting is raised.");
    }

    private static int CountSegmentFiles(string dataDir)
    {
        var count = 0;
        foreach (var file in Directory.EnumerateFiles(dataDir, "*", SearchOption.AllDirectories))
        {
            var extension = Path.GetExtension(file);
            if (extension is ".log" or ".index" or ".timeindex" or ".txnindex") count++;
        }
        return count;
    }
}
