using System.Runtime.InteropServices;

namespace Tributary.Storage.FileSystem;

/// <summary>The process's open-file limit (RLIMIT_NOFILE, what <c>ulimit -n</c> shows), read with getrlimit.</summary>
public static partial class OpenFileLimit
{
    private const int RlimitNofileLinux = 7;
    private const int RlimitNofileMacOs = 8;

    /// <summary>The soft limit; null where it cannot be read (not Linux/macOS) or is unlimited.</summary>
    public static long? Current()
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
        {
            return null;
        }

        var limit = new RLimit();
        if (NativeGetrlimit(OperatingSystem.IsLinux() ? RlimitNofileLinux : RlimitNofileMacOs, ref limit) != 0)
        {
            return null;
        }

        return limit.Current is 0 or ulong.MaxValue or > long.MaxValue ? null : (long)limit.Current;
    }

    /// <summary>
    /// Descriptors the runtime holds whatever the data: .NET keeps two per loaded assembly (about 150 when the broker
    /// and registry have started, more as code is first used), plus pipes, the listeners and the log.
    /// </summary>
    public const int RuntimeReserve = 384;

    /// <summary>
    /// Descriptors the segment file pool may keep open when log.max.open.files is not set: half of what the runtime's
    /// reserve leaves, the other half to connections and short-lived files; 4096 where the limit is unknown.
    /// </summary>
    public static int DefaultSegmentFiles() => (int)Math.Clamp(((Current() ?? 8192 + RuntimeReserve) - RuntimeReserve) / 2, 16, 1 << 20);

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    [LibraryImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static partial int NativeGetrlimit(int resource, ref RLimit limit);
}
