using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Tributary.Broker.Tests.Security;

/// <summary>
/// A throwaway certificate authority in a temporary directory: a CA, a server certificate for localhost/127.0.0.1 and
/// client certificates, written as the PEM files brokers and librdkafka read.
/// </summary>
internal sealed class TestCertificates : IDisposable
{
    private readonly X509Certificate2 _ca;
    private readonly ECDsa _caKey;

    public TestCertificates(string caName = "Tributary Test CA")
    {
        Directory = Path.Combine(Path.GetTempPath(), "tributary-tls-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Directory);
        _caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={caName}", _caKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        _ca = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        CaPath = Path.Combine(Directory, "ca.pem");
        File.WriteAllText(CaPath, _ca.ExportCertificatePem());
    }

    public string Directory { get; }

    /// <summary>The CA certificate (PEM): a client's ssl.ca.location, the broker's ssl.truststore.location.</summary>
    public string CaPath { get; }

    /// <summary>Writes a server certificate for localhost and 127.0.0.1 as one PEM file holding key and chain (Kafka's PEM keystore).</summary>
    public string ServerKeystore(string name = "server", string subject = "CN=localhost,O=Tributary")
    {
        var (certificate, key) = Issue(subject, server: true);
        var path = Path.Combine(Directory, name + ".pem");
        File.WriteAllText(path, key.ExportPkcs8PrivateKeyPem() + "\n" + certificate.ExportCertificatePem() + "\n" + _ca.ExportCertificatePem());
        return path;
    }

    /// <summary>
    /// Writes a server keystore whose certificate an intermediate CA issued (key, leaf, intermediate, root), and the
    /// intermediate alone. A .NET server does not send the root, and Confluent's .NET registry client accepts a server
    /// only when the certificate after the leaf in the chain it sees is its SslCaLocation: the intermediate.
    /// </summary>
    public (string Keystore, string Intermediate) ServerKeystoreViaIntermediate(string name = "server-via-intermediate")
    {
        var (certificate, key, intermediate) = IssueViaIntermediate();
        using (certificate)
        using (key)
        using (intermediate)
        {
            var path = Path.Combine(Directory, name + ".pem");
            File.WriteAllText(path, key.ExportPkcs8PrivateKeyPem() + "\n" + certificate.ExportCertificatePem() + "\n" + intermediate.ExportCertificatePem() + "\n" + _ca.ExportCertificatePem());
            return (path, WriteIntermediate(name, intermediate));
        }
    }

    /// <summary>
    /// The keystore of <see cref="ServerKeystoreViaIntermediate"/> as a PKCS12 file under <paramref name="password"/>
    /// (Kafka's <c>ssl.keystore.type=PKCS12</c>), and the intermediate alone as PEM.
    /// </summary>
    public (string Keystore, string Intermediate) ServerPkcs12ViaIntermediate(string password, string name = "server-via-intermediate-p12")
    {
        var (certificate, key, intermediate) = IssueViaIntermediate();
        using (certificate)
        using (key)
        using (intermediate)
        using (var withKey = certificate.CopyWithPrivateKey(key))
        {
            var path = Path.Combine(Directory, name + ".p12");
            File.WriteAllBytes(path, new X509Certificate2Collection { withKey, intermediate, _ca }.Export(X509ContentType.Pkcs12, password)!);
            return (path, WriteIntermediate(name, intermediate));
        }
    }

    private (X509Certificate2 Certificate, ECDsa Key, X509Certificate2 Intermediate) IssueViaIntermediate()
    {
        using var intermediateKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=Tributary Test Intermediate CA", intermediateKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7f;
        var intermediate = request.Create(_ca.SubjectName, X509SignatureGenerator.CreateForECDsa(_caKey), DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(20), serial);
        var (certificate, key) = Issue("CN=localhost,O=Tributary", server: true, intermediate.SubjectName, intermediateKey);
        return (certificate, key, intermediate);
    }

    private string WriteIntermediate(string name, X509Certificate2 intermediate)
    {
        var path = Path.Combine(Directory, name + "-ca.pem");
        File.WriteAllText(path, intermediate.ExportCertificatePem());
        return path;
    }

    /// <summary>Writes a client certificate and its key as two PEM files (librdkafka's ssl.certificate.location and ssl.key.location).</summary>
    public (string Certificate, string Key) Client(string subject, string name = "client")
    {
        var (certificate, key) = Issue(subject, server: false);
        var certificatePath = Path.Combine(Directory, name + ".crt");
        var keyPath = Path.Combine(Directory, name + ".key");
        File.WriteAllText(certificatePath, certificate.ExportCertificatePem());
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        return (certificatePath, keyPath);
    }

    /// <summary>Writes a client certificate with its key as a PKCS12 file under <paramref name="password"/> (a Java client's keystore).</summary>
    public string ClientPkcs12(string subject, string password, string name = "client")
    {
        var (certificate, key) = Issue(subject, server: false);
        using (certificate)
        using (key)
        using (var withKey = certificate.CopyWithPrivateKey(key))
        {
            var path = Path.Combine(Directory, name + ".p12");
            File.WriteAllBytes(path, withKey.Export(X509ContentType.Pkcs12, password));
            return path;
        }
    }

    private (X509Certificate2 Certificate, ECDsa Key) Issue(string subject, bool server, X500DistinguishedName? issuer = null, ECDsa? issuerKey = null)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, true));
        // A broker's certificate serves both ends: its listeners, and its connections to the other brokers.
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            server ? [new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")] : [new Oid("1.3.6.1.5.5.7.3.2")], false));
        if (server)
        {
            var names = new SubjectAlternativeNameBuilder();
            names.AddDnsName("localhost");
            names.AddIpAddress(IPAddress.Loopback);
            request.CertificateExtensions.Add(names.Build());
        }
        var serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7f;
        var certificate = request.Create(issuer ?? _ca.SubjectName, X509SignatureGenerator.CreateForECDsa(issuerKey ?? _caKey), DateTimeOffset.UtcNow.AddDays(-1),
            DateTimeOffset.UtcNow.AddDays(7), serial);
        return (certificate, key);
    }

    public void Dispose()
    {
        _ca.Dispose();
        _caKey.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
