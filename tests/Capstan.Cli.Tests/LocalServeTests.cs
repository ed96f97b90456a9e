using System.Collections.Concurrent;
using System.Text;
using System.Text.Json.Nodes;
using Capstan.LocalCluster;

namespace Capstan.Cli.Tests;

/// <summary><c>capstan local serve</c> as a separate process: what it acknowledged survives a SIGKILL.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
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

    [Fact(Timeout = 240_000)]
    public async Task A_long_running_client_follows_a_local_serve_that_restarted_at_another_address()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        var model = Core.Config.RepoLoader.Load(new Core.Config.DirectoryRepoFiles(repo)).Model;
        using (var first = CliRunner.StartChild(new Dictionary<string, string>(), "local", "serve", "--dc", "eqiad", "--repo", repo))
        {
            await first.WaitForAsync("https://127.0.0.1:", 120);
            await using var clusters = await Clusters.ClusterSet.ConnectAsync(model, ["eqiad"], _ => null, new LocalClusterOptions(), default);
            var before = clusters["eqiad"].Server;
            Assert.NotNull(await clusters["eqiad"].GetAsync(new Kubernetes.ObjectRef("v1", "Namespace", null, "default"), default));
            await first.KillAsync();

            using var second = CliRunner.StartChild(new Dictionary<string, string>(), "local", "serve", "--dc", "eqiad", "--repo", repo);
            await second.WaitForAsync("https://127.0.0.1:", 120);

            // The same client, after the restart: the call that finds the old address dead is answered at the new one.
            Assert.NotNull(await clusters["eqiad"].GetAsync(new Kubernetes.ObjectRef("v1", "Namespace", null, "default"), default));
            Assert.NotEqual(before, clusters["eqiad"].Server);
        }
    }

    [Fact(Timeout = 120_000)]
    public async Task Serve_adds_the_users_of_a_token_file_who_get_only_what_roles_grant_them()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        var users = Path.Combine(_temp.Path, "users.csv");
        await File.WriteAllTextAsync(users, "vera-token-0123456789-abcdefghijk,vera,2001,\"readers\"\n");
        File.SetUnixFileMode(users, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        using var child = CliRunner.StartChild(new Dictionary<string, string>(), "local", "serve", "--dc", "eqiad", "--repo", repo, "--users", users);
        await child.WaitForAsync("https://127.0.0.1:", 120);
        var url = new Uri(child.Output.Split('\n').First(l => l.StartsWith("https://127.0.0.1:", StringComparison.Ordinal)).Trim());
        var server = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(LocalClusterHost.DirectoryFor(repo, "eqiad"), "server.json")))!;
        var authority = server["certificateAuthority"]!.GetValue<string>();
        using var admin = Capstan.Testing.Cluster.TrustingHttp(url, authority, server["token"]!.GetValue<string>());
        using var vera = Capstan.Testing.Cluster.TrustingHttp(url, authority, "vera-token-0123456789-abcdefghijk");

        using (var denied = await vera.GetAsync("/api/v1/namespaces"))
        {
            Assert.Equal(System.Net.HttpStatusCode.Forbidden, denied.StatusCode);
            Assert.Equal(
                "namespaces is forbidden: User \"vera\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope",
                JsonNode.Parse(await denied.Content.ReadAsStringAsync())!["message"]!.GetValue<string>());
        }

        (await admin.PostAsync("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", Json("""
            {"metadata": {"name": "readers-view"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
             "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "readers"}]}
            """))).EnsureSuccessStatusCode();
        Assert.Equal(System.Net.HttpStatusCode.OK, (await vera.GetAsync("/api/v1/namespaces")).StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.Forbidden, (await vera.GetAsync("/api/v1/namespaces/default/secrets")).StatusCode);
    }

    [Fact]
    public void Serve_refuses_a_bad_token_file_naming_the_file_and_line()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        var users = Path.Combine(_temp.Path, "users.csv");
        File.WriteAllText(users, "# tokens\nonly-a-token\n");
        File.SetUnixFileMode(users, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var result = CliRunner.Run("local", "serve", "--dc", "eqiad", "--repo", repo, "--users", users);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains($"{users}:2: error: expected token,user,uid", result.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Err, StringComparison.Ordinal);
    }

    [Fact(Timeout = 300_000)]
    public async Task While_the_dashboard_hosts_the_clusters_local_kubeconfig_lets_kubectl_reach_them()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        var notServed = CliRunner.Run("local", "kubeconfig", "--dc", "codfw", "--repo", repo);
        Assert.Equal(2, notServed.ExitCode);
        Assert.Equal("capstan: error: local://codfw is not served: start 'capstan local serve --dc codfw' or 'capstan serve', then run this again\n", notServed.Err);
        Assert.Equal(0, CliRunner.Run("deploy", "--repo", repo, "--dc", "codfw", "-n", "mw-web", "--yes").ExitCode);

        using var dashboard = CliRunner.StartChild(new Dictionary<string, string>(), "serve", "--repo", repo, "--listen", "127.0.0.1:0");
        await dashboard.WaitForAsync("http://127.0.0.1:", 120);
        var file = Path.Combine(_temp.Path, "kube", "config");
        var written = CliRunner.Run("local", "kubeconfig", "--dc", "codfw", "--repo", repo, "--out", file);
        Assert.True(written.ExitCode == 0, written.Err);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        Assert.DoesNotContain("token", written.Out + written.Err, StringComparison.OrdinalIgnoreCase);

        var pods = await Testing.Kubectl.RunAsync(file, "get", "pods", "-n", "mw-web", "-o", "name");
        Assert.True(pods.Code == 0, pods.Err);
        Assert.Contains("pod/", pods.Out, StringComparison.Ordinal);
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");
}
