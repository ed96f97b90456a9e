using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Capstan.Core.Diagnostics;

namespace Capstan.State.Etcd;

/// <summary>TLS towards etcd members: their certificates checked against the given CA, a client certificate when given.</summary>
internal static class EtcdTls
{
    public static SslClientAuthenticationOptions Options(EtcdOptions options)
    {
        var ssl = new SslClientAuthenticationOptions();
        if (options.CertFile is { } cert)
        {
            if (options.KeyFile is not { } key)
            {
                throw new UserInputException("an etcd client certificate needs its key (key=PATH)");
            }

            using var pem = X509Certificate2.CreateFromPemFile(Readable(cert), Readable(key));
            ssl.ClientCertificates = [X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null)];
        }

        if (options.CaFile is { } caFile)
        {
            var roots = new X509Certificate2Collection();
            roots.ImportFromPemFile(Readable(caFile));
            ssl.RemoteCertificateValidationCallback = (_, certificate, sent, errors) =>
            {
                if (certificate is null || (errors & (SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateNotAvailable)) != 0)
                {
                    return false;
                }

                using var presented = new X509Certificate2(certificate);
                return Core.Security.CustomRoots.Chains(presented, sent, roots);
            };
        }

        return ssl;
    }

    private static string Readable(string path) =>
        File.Exists(path) ? path : throw new UserInputException($"etcd TLS file {path} does not exist");
}
