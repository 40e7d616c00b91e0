using System.Runtime.InteropServices;

namespace Tributary.Storage.Cleaning;

/// <summary>
/// Puts the calling thread at the lowest CPU priority (nice 19) on Linux, where .NET's ThreadPriority does nothing.
/// The cleaner then runs on CPU the broker and its clients leave idle, and yields at once when they wake: on a small
/// machine a full-speed cleaner beside them raised a producer's p99 by half again as much as at nice 0 (measured in
/// docs/performance.md, "Log compaction"). It is not starved: under full load a nice-19 thread still gets its small share, as
/// RocksDB lowers its compaction threads for the same reason.
/// </summary>
internal static partial class BackgroundPriority
{
    private const int PrioProcess = 0;
    private const int LowestNice = 19;

    /// <returns>False when the priority could not be changed (other systems, or refused); the thread runs as before.</returns>
    public static bool LowerCurrentThread()
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        // On Linux a nice value belongs to a thread: setpriority with the thread id changes just this one.
        return SetPriority(PrioProcess, GetTid(), LowestNice) == 0;
    }

    [LibraryImport("libc", EntryPoint = "gettid")]
    private static partial int GetTid();

    [LibraryImport("libc", EntryPoint = "setpriority", SetLastError = true)]
    private static partial int SetPriority(int which, int who, int priority);
}
