using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Capstan.LocalCluster.Auth;

/// <summary>
/// The TLS identity of a local cluster: a fresh CA per start and a serving certificate it signs for 127.0.0.1 and
/// localhost. Clients trust the CA through the kubeconfig (<c>certificate-authority-data</c>) and
/// <c>server.json</c>; nothing is ever trusted without verification. (kubectl sends bearer tokens only over TLS.)
/// </summary>
public sealed class ServingCertificate : IDisposable
{
    private ServingCertificate(X509Certificate2 certificate, string authorityPem)
    {
        Certificate = certificate;
        AuthorityPem = authorityPem;
    }

    /// <summary>The serving certificate with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The CA certificate clients trust, PEM.</summary>
    public string AuthorityPem { get; }

    /// <summary>
    /// Creates a CA and a serving certificate (ECDSA P-256, valid for a year from <paramref name="time"/>'s now). Clients
    /// check it against their own clocks, so the server passes the system's, never a simulation clock.
    /// </summary>
    public static ServingCertificate Create(TimeProvider time)
    {
        var now = time.GetUtcNow();
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=capstan-local-ca", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        using var ca = caRequest.CreateSelfSigned(now.AddHours(-1), now.AddYears(1));

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=capstan-local", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        using var signed = request.Create(ca, now.AddHours(-1), now.AddYears(1).AddHours(-2), serial);
        using var withKey = signed.CopyWithPrivateKey(key);

        // Kestrel wants a certificate whose key it can use on every platform: round-trip through PKCS#12.
        var certificate = X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
        return new ServingCertificate(certificate, ca.ExportCertificatePem());
    }

    /// <inheritdoc/>
    public void Dispose() => Certificate.Dispose();
}
