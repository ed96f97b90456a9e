using System.Text.Json.Nodes;
using Capstan.Kubernetes;
using Capstan.LocalCluster;

namespace Capstan.Testing;

/// <summary>A clock that stands still until a test moves it (from any thread).</summary>
public sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    private long _ticks = start.UtcTicks;

    /// <inheritdoc/>
    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

    /// <summary>Moves the clock forward.</summary>
    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}

/// <summary>A local cluster on a free loopback port and a client for it, per test.</summary>
public sealed class Cluster : IAsyncDisposable
{
    private Cluster(LocalClusterServer server, KubeClient client)
    {
        Server = server;
        Client = client;
    }

    public LocalClusterServer Server { get; }

    public KubeClient Client { get; }

    public static async Task<Cluster> StartAsync(LocalClusterOptions? options = null, KubeClientOptions? clientOptions = null)
    {
        var server = await LocalClusterServer.StartAsync(options ?? new LocalClusterOptions(), default);
        return new Cluster(server, new KubeClient(ConnectionTo(server, server.AdminToken), clientOptions ?? new KubeClientOptions { Backoff = TimeSpan.FromMilliseconds(10) }));
    }

    public async Task<JsonObject> ApplyAsync(string yamlOrJson, bool force = false)
    {
        var obj = Yaml(yamlOrJson);
        return await Client.ApplyAsync(obj, force, dryRun: false, default);
    }

    public async Task NamespaceAsync(string name) =>
        await Client.ApplyAsync(new JsonObject { ["apiVersion"] = "v1", ["kind"] = "Namespace", ["metadata"] = new JsonObject { ["name"] = name } }, false, false, default);

    public static JsonObject Yaml(string text)
    {
        var diagnostics = new Core.Diagnostics.DiagnosticBag();
        var node = Core.Yaml.YamlReader.ReadSingle(text, "test.yaml", diagnostics);
        Assert.False(diagnostics.HasErrors, string.Join("\n", diagnostics.Items));
        return (JsonObject)Core.Yaml.ValueNodeJson.ToJson(node!)!;
    }

    /// <summary>A kubeconfig for outside clients (kubectl, the Python client): the server, its CA and the admin token.</summary>
    public string Kubeconfig() => KubeconfigFor(Server);

    /// <summary>The same, for any local cluster server (one a farm's clusters host, say).</summary>
    public static string KubeconfigFor(LocalClusterServer Server) => $$"""
        apiVersion: v1
        kind: Config
        clusters:
        - name: local
          cluster:
            server: "{{Server.Url.ToString().TrimEnd('/')}}"
            certificate-authority-data: "{{Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(Server.CertificateAuthorityPem!))}}"
        users:
        - name: local
          user: {token: "{{Server.AdminToken}}"}
        contexts:
        - name: local
          context: {cluster: local, user: local}
        current-context: local
        """;

    /// <summary>How to reach the server as the admin (or as the user of another token): its URL, CA and token.</summary>
    public ClusterConnection Connection(string? token = null) => ConnectionTo(Server, token ?? Server.AdminToken);

    private static ClusterConnection ConnectionTo(LocalClusterServer server, string token) =>
        new(server.Url, System.Text.Encoding.UTF8.GetBytes(server.CertificateAuthorityPem!), Token: token);

    /// <summary>
    /// A plain HTTP client for the server that trusts its CA, with the admin token, another user's, or none
    /// (<paramref name="token"/> empty).
    /// </summary>
    public HttpClient Http(string? token = null) => TrustingHttp(Server.Url, Server.CertificateAuthorityPem!, token ?? Server.AdminToken);

    /// <summary>An HTTP client that trusts exactly the given CA (and checks the host name), with a bearer token unless it is empty.</summary>
    public static HttpClient TrustingHttp(Uri server, string authorityPem, string token)
    {
        var roots = new System.Security.Cryptography.X509Certificates.X509Certificate2Collection();
        roots.ImportFromPem(authorityPem);
        var handler = new HttpClientHandler
        {
            ServerCertificateCustomValidationCallback = (_, certificate, _, errors) =>
            {
                if (certificate is null || (errors & System.Net.Security.SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
                {
                    return false;
                }

                using var chain = new System.Security.Cryptography.X509Certificates.X509Chain();
                chain.ChainPolicy.TrustMode = System.Security.Cryptography.X509Certificates.X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.AddRange(roots);
                chain.ChainPolicy.RevocationMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck;
                return chain.Build(certificate);
            },
        };
        var http = new HttpClient(handler) { BaseAddress = server };
        if (token.Length > 0)
        {
            http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        }

        return http;
    }

    /// <summary>A PATCH over plain HTTP with the given media type: the status code and the body (an object or a Status).</summary>
    public async Task<(int Code, JsonObject Body)> PatchAsync(string path, string contentType, string body)
    {
        using var http = Http();
        using var content = new StringContent(body, System.Text.Encoding.UTF8);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(contentType);
        using var response = await http.PatchAsync(path, content);
        return ((int)response.StatusCode, JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject());
    }

    /// <summary>Waits until the Deployment has rolled out (as <c>kubectl rollout status</c> judges it).</summary>
    public Task<RolloutStatus> RolledOutAsync(string ns, string name, string what) => EventuallyAsync(async () =>
    {
        var status = await Client.GetRolloutStatusAsync(ns, name, default);
        return status.Done ? status : null;
    }, what);

    /// <summary>Polls until the condition holds (controllers run in the background), failing after a bound.</summary>
    public static async Task<T> EventuallyAsync<T>(Func<Task<T?>> probe, string what, int seconds = 15)
        where T : class
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            if (await probe() is { } value)
            {
                return value;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"timed out waiting for {what}");
            }

            await Task.Delay(25);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync();
        await Server.DisposeAsync();
    }
}
