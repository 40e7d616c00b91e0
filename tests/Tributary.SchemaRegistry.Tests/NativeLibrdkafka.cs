using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>
/// Confluent.Kafka's default librdkafka build needs libsasl2.so.3, which Debian 12 lacks; the bundled centos8 build
/// loads. Point the loader at it before the first Kafka call (see shared/ENVIRONMENT.md).
/// </summary>
internal static class NativeLibrdkafka
{
    [ModuleInitializer]
    internal static void Register()
    {
        NativeLibrary.SetDllImportResolver(typeof(Confluent.Kafka.Library).Assembly, (name, _, _) =>
        {
            if (name != "librdkafka") return IntPtr.Zero;
            var path = Path.Combine(AppContext.BaseDirectory, "runtimes/linux-x64/native/centos8-librdkafka.so");
            return File.Exists(path) ? NativeLibrary.Load(path) : IntPtr.Zero;
        });
    }
}
