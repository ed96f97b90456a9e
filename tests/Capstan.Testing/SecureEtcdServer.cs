using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;

namespace Capstan.Testing;

/// <summary>
/// A real etcd serving HTTPS with a CA the tests make, with etcd's authentication enabled: users <c>root</c> and
/// <c>capstan</c> (password <see cref="Password"/>, read-write on every key). With client-certificate authentication
/// every client must present a certificate of that CA, and its CN is the user.
/// </summary>
public abstract class SecureEtcdServer(bool clientCertificateAuth, bool authentication = true) : IAsyncLifetime
{
    public const string User = "capstan";
    public const string Password = "capstan-secret";

    private Process? _process;

    public string Dir { get; } = Path.Combine(Path.GetTempPath(), "capstan-etcds-" + Guid.NewGuid().ToString("N"));

    public int ClientPort { get; } = EtcdServer.FreePort();

    public int PeerPort { get; } = EtcdServer.FreePort();

    public Uri Endpoint => new($"https://127.0.0.1:{ClientPort}");

    public string CaFile => Path.Combine(Dir, "ca.pem");

    /// <summary>A client certificate whose CN is <see cref="User"/>, and its key.</summary>
    public (string Cert, string Key) ClientCertificate => (Path.Combine(Dir, "capstan.pem"), Path.Combine(Dir, "capstan-key.pem"));

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Dir);
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=capstan-test-etcd-ca", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        using var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        File.WriteAllText(CaFile, ca.ExportCertificatePem());
        Issue(ca, "server", server: true);
        Issue(ca, "root", server: false);
        Issue(ca, User, server: false);

        var args = new List<string>
        {
            "--name", "capstan-etcds", "--data-dir", Path.Combine(Dir, "data"),
            "--listen-client-urls", Endpoint.ToString().TrimEnd('/'), "--advertise-client-urls", Endpoint.ToString().TrimEnd('/'),
            "--listen-peer-urls", $"http://127.0.0.1:{PeerPort}", "--initial-advertise-peer-urls", $"http://127.0.0.1:{PeerPort}",
            "--initial-cluster", $"capstan-etcds=http://127.0.0.1:{PeerPort}",
            "--cert-file", Path.Combine(Dir, "server.pem"), "--key-file", Path.Combine(Dir, "server-key.pem"),
        };
        if (clientCertificateAuth)
        {
            args.AddRange(["--client-cert-auth", "--trusted-ca-file", CaFile]);
        }

        await StartAsync(args);

        if (!authentication)
        {
            return;
        }

        // Users and roles, then authentication on (as root, by certificate where certificates are required).
        using var admin = new HttpClient(Handler("root")) { BaseAddress = Endpoint };
        await PostAsync(admin, "/v3/auth/user/add", new JsonObject { ["name"] = "root", ["password"] = "root-secret" });
        await PostAsync(admin, "/v3/auth/user/grant", new JsonObject { ["user"] = "root", ["role"] = "root" });
        await PostAsync(admin, "/v3/auth/role/add", new JsonObject { ["name"] = "capstan-rw" });
        await PostAsync(admin, "/v3/auth/role/grant", new JsonObject
        {
            ["name"] = "capstan-rw",
            ["perm"] = new JsonObject { ["permType"] = "READWRITE", ["key"] = Convert.ToBase64String([0]), ["range_end"] = Convert.ToBase64String([0]) },
        });
        await PostAsync(admin, "/v3/auth/user/add", new JsonObject { ["name"] = User, ["password"] = Password });
        await PostAsync(admin, "/v3/auth/user/grant", new JsonObject { ["user"] = User, ["role"] = "capstan-rw" });
        await PostAsync(admin, "/v3/auth/enable", new JsonObject());
    }

    private async Task StartAsync(List<string> args)
    {
        _process = EtcdServer.Launch(args);
        await Readiness.WaitAsync(new Uri(Endpoint, "/health"), _process, "etcd (TLS)", Handler("root"), HttpStatusCode.ServiceUnavailable);
    }

    /// <summary>
    /// Makes etcd forget every token it gave <see cref="User"/> (a password change does, even to the same password),
    /// as a token's expiry would.
    /// </summary>
    public async Task ForgetTokensAsync()
    {
        using var admin = new HttpClient(Handler("root")) { BaseAddress = Endpoint };
        using var login = new StringContent(new JsonObject { ["name"] = "root", ["password"] = "root-secret" }.ToJsonString(), Encoding.UTF8, "application/json");
        using var answer = await admin.PostAsync("/v3/auth/authenticate", login);
        var token = JsonNode.Parse(await answer.Content.ReadAsStringAsync())!["token"]!.GetValue<string>();
        admin.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", token);
        await PostAsync(admin, "/v3/auth/user/changepw", new JsonObject { ["name"] = User, ["password"] = Password });
    }

    /// <summary>An HTTP handler that trusts the test CA and presents the named user's client certificate.</summary>
    public HttpClientHandler Handler(string user)
    {
        var roots = new X509Certificate2Collection();
        roots.ImportFromPemFile(CaFile);
        using var pem = X509Certificate2.CreateFromPemFile(Path.Combine(Dir, user + ".pem"), Path.Combine(Dir, user + "-key.pem"));
        var handler = new HttpClientHandler
        {
            ServerCertificateCustomValidationCallback = (_, certificate, _, _) =>
            {
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.AddRange(roots);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                return certificate is not null && chain.Build(certificate);
            },
        };
        handler.ClientCertificates.Add(X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null));
        return handler;
    }

    private static async Task PostAsync(HttpClient http, string path, JsonObject body)
    {
        using var content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        using var response = await http.PostAsync(path, content);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{path}: {(int)response.StatusCode} {text}");
    }

    private void Issue(X509Certificate2 ca, string name, bool server)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        var usages = new OidCollection { new("1.3.6.1.5.5.7.3.2") };
        if (server)
        {
            usages.Add(new Oid("1.3.6.1.5.5.7.3.1"));
            var san = new SubjectAlternativeNameBuilder();
            san.AddIpAddress(IPAddress.Loopback);
            san.AddDnsName("localhost");
            request.CertificateExtensions.Add(san.Build());
        }

        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(usages, false));
        // Well inside the CA's validity: a leaf may not outlive its issuer, and the CA's end is cut to whole seconds.
        using var certificate = request.Create(ca, DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddHours(12), RandomNumberGenerator.GetBytes(8));
        File.WriteAllText(Path.Combine(Dir, name + ".pem"), certificate.ExportCertificatePem());
        File.WriteAllText(Path.Combine(Dir, name + "-key.pem"), key.ExportPkcs8PrivateKeyPem());
    }

    private void Stop()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process?.Dispose();
        _process = null;
    }

    public Task DisposeAsync()
    {
        Stop();
        if (Directory.Exists(Dir))
        {
            Directory.Delete(Dir, recursive: true);
        }

        return Task.CompletedTask;
    }
}

/// <summary>etcd over TLS with users and passwords.</summary>
public sealed class PasswordEtcdServer() : SecureEtcdServer(clientCertificateAuth: false);

/// <summary>etcd over TLS that requires client certificates and has authentication on (the CN would be the user).</summary>
public sealed class CertificateEtcdServer() : SecureEtcdServer(clientCertificateAuth: true);

/// <summary>etcd over mutual TLS: a client certificate of the CA is the credential; etcd's authentication is off.</summary>
public sealed class MutualTlsEtcdServer() : SecureEtcdServer(clientCertificateAuth: true, authentication: false);
