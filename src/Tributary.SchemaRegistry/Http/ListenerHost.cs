using System.Net;

namespace Tributary.SchemaRegistry.Http;

/// <summary>
/// The address the host of an HTTP listener URL binds: an empty or wildcard host (<c>0.0.0.0</c>, <c>*</c>) every
/// interface, <c>localhost</c> the loopback, a literal its address, a name its first address. The registry's listeners
/// and the console's (Tributary.Server) read their URLs the same way.
/// </summary>
public static class ListenerHost
{
    public static IPAddress Resolve(Uri uri)
    {
        var host = uri.Host.Trim('[', ']');
        return host switch
        {
            "" or "0.0.0.0" or "*" => IPAddress.Any,
            "localhost" => IPAddress.Loopback,
            _ when IPAddress.TryParse(host, out var ip) => ip,
            _ => Dns.GetHostAddresses(host).First(),
        };
    }
}
