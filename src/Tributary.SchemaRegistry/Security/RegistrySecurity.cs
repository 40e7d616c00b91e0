using System.Net.Security;

namespace Tributary.SchemaRegistry.Security;

/// <summary>
/// How the registry's HTTP endpoint is secured; the host builds it from its settings (the registry knows no broker
/// settings, certificates or user stores of its own).
/// </summary>
public sealed class RegistrySecurity
{
    /// <summary>Handshake options for each connection to an https listener, with the certificate as it is now; required for one.</summary>
    public Func<SslServerAuthenticationOptions>? ServerTls { get; init; }

    /// <summary>
    /// TLS for forwarding to another broker's registry over https: the truststore that signs the others' certificates,
    /// and this registry's certificate for when they require one. Null: the system's trust.
    /// </summary>
    public SslClientAuthenticationOptions? ForwardingTls { get; init; }

    /// <summary>Who may call; null: everyone, as anonymous.</summary>
    public RegistryAuthentication? Authentication { get; init; }
}
