using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Tributary.Cli.Kafka;

/// <summary>
/// Makes Confluent.Kafka load the librdkafka build it ships for CentOS 8 on linux-x64.
/// </summary>
/// <remarks>
/// The default <c>runtimes/linux-x64/native/librdkafka.so</c> needs <c>libsasl2.so.3</c>, which Debian 12
/// lacks; when it fails to load, .NET may silently fall back to the distribution's older librdkafka, and
/// consuming then fails with <see cref="EntryPointNotFoundException"/>. The resolver must be in place
/// before the first Kafka call, hence the module initializer. Elsewhere (other OS or architecture, or the
/// file missing) the resolver declines and the default probing applies.
/// </remarks>
public static class NativeLibrdkafka
{
    private const string RelativePath = "runtimes/linux-x64/native/centos8-librdkafka.so";
    private static int _registered;

    /// <summary>Registers the resolver once per process; later calls do nothing.</summary>
    public static void EnsureLoaded()
    {
        if (Interlocked.Exchange(ref _registered, 1) == 1)
        {
            return;
        }
        try
        {
            NativeLibrary.SetDllImportResolver(typeof(Confluent.Kafka.Library).Assembly, Resolve);
        }
        catch (InvalidOperationException)
        {
            // Another component of this process (a test host, say) registered its own resolver first.
        }
    }

    /// <summary>The librdkafka file this resolver loads, or null where the default probing applies.</summary>
    public static string? ResolvedPath =>
        OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64
            && Path.Combine(AppContext.BaseDirectory, RelativePath) is var path && File.Exists(path)
            ? path
            : null;

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (name != "librdkafka" || ResolvedPath is not { } path)
        {
            return IntPtr.Zero;
        }
        return NativeLibrary.TryLoad(path, out var handle) ? handle : IntPtr.Zero;
    }

#pragma warning disable CA2255 // a module initializer is the documented way to run before any Kafka call
    [ModuleInitializer]
    internal static void Initialize() => EnsureLoaded();
#pragma warning restore CA2255
}
