using System.Collections.Concurrent;
using System.Text;
using System.Text.Json.Nodes;
using Capstan.LocalCluster;

namespace Capstan.Cli.Tests;

/// <summary><c>capstan local serve</c> as a separate process: what it acknowledged survives a SIGKILL.</summary>
public sealed class LocalServeTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact(Timeout = 300_000)]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task A_cluster_killed_mid_write_restarts_with_every_acknowledged_object()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        using var child = CliRunner.StartChild(new Dictionary<string, string>(), "local", "serve", "--dc", "eqiad", "--repo", repo);
        await child.WaitForAsync("https://127.0.0.1:", 120);
        var url = child.Output.Split('\n').First(l => l.StartsWith("https://127.0.0.1:", StringComparison.Ordinal)).Trim();
        var serverFile = Path.Combine(LocalClusterHost.DirectoryFor(repo, "eqiad"), "server.json");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(serverFile));
        var server = JsonNode.Parse(await File.ReadAllTextAsync(serverFile))!;
        var authority = server["certificateAuthority"]!.GetValue<string>();
        using (var anonymous = Capstan.Testing.Cluster.TrustingHttp(new Uri(url), authority, token: string.Empty))
        {
            Assert.Equal(System.Net.HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/v1/namespaces")).StatusCode);
        }

        using var http = Capstan.Testing.Cluster.TrustingHttp(new Uri(url), authority, server["token"]!.GetValue<string>());
        (await http.PostAsync("/api/v1/namespaces", Json("""{"metadata": {"name": "app"}}"""))).EnsureSuccessStatusCode();

        // Write as fast as the server answers, and kill it while writes are in flight.
        var acknowledged = new ConcurrentBag<string>();
        using var stop = new CancellationTokenSource();
        var writer = Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                var name = $"cm-{i}";
                try
                {
                    using var response = await http.PostAsync("/api/v1/namespaces/app/configmaps", Json($$$"""{"metadata": {"name": "{{{name}}}"}, "data": {"i": "{{{i}}}"}}"""));
                    if (response.IsSuccessStatusCode)
                    {
                        acknowledged.Add(name);
                    }
                }
                catch (HttpRequestException)
                {
                    return;
                }
            }
        });
        while (acknowledged.Count < 200)
        {
            await Task.Delay(5);
        }

        await child.KillAsync();
        await stop.CancelAsync();
        await writer;

        await using var host = await LocalClusterHost.OpenAsync(LocalClusterHost.DirectoryFor(repo, "eqiad"), new LocalClusterOptions(), requireOwnServer: true, default);
        using var again = Capstan.Testing.Cluster.TrustingHttp(host.Url, host.CertificateAuthorityPem, host.Token);
        var items = JsonNode.Parse(await again.GetStringAsync("/api/v1/namespaces/app/configmaps"))!["items"]!.AsArray();
        var stored = items.Select(i => i!["metadata"]!["name"]!.GetValue<string>()).ToHashSet(StringComparer.Ordinal);
        Assert.DoesNotContain(acknowledged, name => !stored.Contains(name));
        Assert.True(stored.Count >= 200);
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");
}
