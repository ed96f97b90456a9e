using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Capstan.LocalCluster;

namespace Capstan.Kubernetes.Tests;

public sealed class KubeConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("capstan-kubeconfig-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void Kubeconfig_list_merges_first_wins()
    {
        var first = Write("a/config", """
            current-context: eqiad
            clusters:
            - name: eqiad
              cluster: {server: "https://eqiad.example:6443", certificate-authority: ca.pem}
            users:
            - name: deployer
              user: {token: first-token}
            contexts:
            - name: eqiad
              context: {cluster: eqiad, user: deployer, namespace: mw-web}
            """);
        Write("a/ca.pem", "-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n");
        var second = Write("b/config", """
            current-context: codfw
            clusters:
            - name: eqiad
              cluster: {server: "https://ignored.example"}
            - name: codfw
              cluster: {server: "https://codfw.example:6443", insecure-skip-tls-verify: true}
            users:
            - name: deployer
              user: {token: second-token}
            contexts:
            - name: codfw
              context: {cluster: codfw, user: deployer}
            """);
        var config = KubeConfig.Load(name => name == "KUBECONFIG" ? $"{first}:{second}:/nonexistent" : null);
        Assert.Equal("eqiad", config.CurrentContext);
        var eqiad = config.Resolve();
        Assert.Equal(new Uri("https://eqiad.example:6443"), eqiad.Server);
        Assert.Equal("first-token", eqiad.Token);
        Assert.Equal("mw-web", eqiad.Namespace);
        Assert.NotNull(eqiad.CertificateAuthority);
        Assert.False(eqiad.InsecureSkipTlsVerify);
        var codfw = config.Resolve("codfw");
        Assert.True(codfw.InsecureSkipTlsVerify);
        Assert.Equal("first-token", codfw.Token);
    }

    [Theory]
    [InlineData("context 'nope' is not in the kubeconfig (known: a)", "nope")]
    public void Unknown_contexts_name_the_known_ones(string message, string context)
    {
        var path = Write("config", "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\ncontexts: [{name: a, context: {cluster: c}}]\n");
        var ex = Assert.Throws<KubeConfigException>(() => KubeConfig.LoadFiles([path]).Resolve(context));
        Assert.Equal(message, ex.Message);
    }

    [Fact]
    public void A_missing_kubeconfig_says_where_it_looked()
    {
        var ex = Assert.Throws<KubeConfigException>(() => KubeConfig.Load(name => name == "HOME" ? _dir : null));
        Assert.Contains("~/.kube/config does not exist", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tls_is_verified_against_the_kubeconfig_ca_and_skipped_only_when_asked()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        using var serverCertificate = X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null);
        await using var server = await LocalClusterServer.StartAsync(new LocalClusterOptions { TlsCertificate = serverCertificate }, default);
        Assert.Equal("https", server.Url.Scheme);
        var ca = System.Text.Encoding.UTF8.GetBytes(certificate.ExportCertificatePem());
        var reference = new ObjectRef("v1", "Namespace", null, "default");

        await using (var trusted = new KubeClient(new ClusterConnection(server.Url, CertificateAuthority: ca, Token: server.AdminToken)))
        {
            Assert.NotNull(await trusted.GetAsync(reference, default));
        }

        await using (var untrusted = new KubeClient(new ClusterConnection(server.Url), new KubeClientOptions { MaxAttempts = 1 }))
        {
            var ex = await Assert.ThrowsAsync<KubeUnavailableException>(() => untrusted.GetAsync(reference, default));
            Assert.Contains("SSL", ex.Message, StringComparison.OrdinalIgnoreCase);
        }

        await using (var insecure = new KubeClient(new ClusterConnection(server.Url, InsecureSkipTlsVerify: true, Token: server.AdminToken)))
        {
            Assert.NotNull(await insecure.GetAsync(reference, default));
        }
    }
}
