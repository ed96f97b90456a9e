using System.Text.Json.Nodes;
using Capstan.Core.Rendering;
using Capstan.Kubernetes;
using Capstan.LocalCluster;
using Capstan.LocalCluster.Auth;

namespace Capstan.Deploy.Tests;

/// <summary>A deployer with only the example role's namespace-scoped permissions, against the embedded cluster's RBAC.</summary>
public sealed class LeastPrivilegeTests
{
    private const string Token = "tok-deployer";

    /// <summary>The clusters as the deployer reaches them.</summary>
    private sealed class AsDeployer(KubeClient client) : IClusters
    {
        public IClusterClient this[string dc] => client;

        public IReadOnlyCollection<string> Datacenters => ["eqiad"];
    }

    private static async Task<FarmHarness> StartAsync() =>
        await FarmHarness.StartAsync(new LocalClusterOptions { Users = [(Token, new UserInfo("deployer", "7", []))] });

    /// <summary>The example RBAC documents, those for namespaces that do not exist left out (as an admin would).</summary>
    private static async Task ApplyExampleRbacAsync(FarmHarness farm, params string[] namespaces)
    {
        var path = Path.Combine(RepoRoot(), "examples", "rbac", "deployer.yaml");
        var diagnostics = new Core.Diagnostics.DiagnosticBag();
        foreach (var doc in Core.Yaml.YamlReader.ReadAll(File.ReadAllText(path), path, diagnostics).OfType<Core.Yaml.ValueNode>())
        {
            var obj = (JsonObject)Core.Yaml.ValueNodeJson.ToJson(doc)!;
            if (obj["metadata"]?["namespace"]?.GetValue<string>() is { } ns && !namespaces.Contains(ns))
            {
                continue;
            }

            await farm.Clusters["eqiad"].ApplyAsync(obj, force: false, dryRun: false, default);
        }

        Assert.False(diagnostics.HasErrors);
    }

    private static string RepoRoot()
    {
        var dir = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(dir, "Capstan.slnx")))
        {
            dir = Path.GetDirectoryName(dir)!;
        }

        return dir;
    }

    private static async Task CreateNamespaceAsync(FarmHarness farm, string ns) =>
        await farm.Clusters["eqiad"].ApplyAsync(new JsonObject { ["apiVersion"] = "v1", ["kind"] = "Namespace", ["metadata"] = new JsonObject { ["name"] = ns } }, false, false, default);

    private static (DeployService Service, DeployRequest Request, KubeClient Client) AsDeployerOf(FarmHarness farm)
    {
        var server = farm.Clusters.LocalServer("eqiad")!;
        var client = new KubeClient(new ClusterConnection(server.Url, System.Text.Encoding.UTF8.GetBytes(server.CertificateAuthorityPem!), Token: Token));
        var service = new DeployService(farm.Model, new FarmRenderer(farm.Model, farm.Files), new AsDeployer(client), farm.Store, TimeProvider.System);
        var request = new DeployRequest(new RenderSelection("eqiad", "mw-web"), false, false, 20, new ExecutorOptions { Actor = "deployer", Reason = "test" });
        return (service, request, client);
    }

    [Fact]
    public async Task A_namespace_scoped_deployer_deploys_mw_web_with_the_example_role_and_never_lists_across_the_cluster()
    {
        await using var farm = await StartAsync();
        await CreateNamespaceAsync(farm, "mw-web");
        await ApplyExampleRbacAsync(farm, "mw-web");
        var (service, request, client) = AsDeployerOf(farm);
        await using var _ = client;
        var metrics = farm.Clusters.LocalServer("eqiad")!.Metrics;
        var clusterWideLists = metrics.TotalInScope("LIST", "cluster") + metrics.TotalInScope("WATCH", "cluster");

        var prepared = await service.PrepareAsync(request, farm.State, default);
        var result = await service.RunAsync(prepared.Plan, request.Executor, new EventLog(), default);
        Assert.True(result.Succeeded, result.Cause);
        Assert.Equal(3, result.Releases.Count(r => r.State == ReleaseState.Done));
        Assert.True((await service.PrepareAsync(request, farm.State, default)).Plan.IsNoOp);
        Assert.Equal(clusterWideLists, metrics.TotalInScope("LIST", "cluster") + metrics.TotalInScope("WATCH", "cluster"));
    }

    [Fact]
    public async Task With_the_example_role_a_pre_pull_warms_the_nodes_the_release_runs_on_since_nodes_cannot_be_listed()
    {
        await using var farm = await StartAsync();
        await CreateNamespaceAsync(farm, "mw-web");
        await ApplyExampleRbacAsync(farm, "mw-web");
        var (service, request, client) = AsDeployerOf(farm);
        await using var _ = client;
        Assert.True((await service.RunAsync((await service.PrepareAsync(request, farm.State, default)).Plan, request.Executor, new EventLog(), default)).Succeeded);

        farm.Write("deploy/images/default.yaml", "images:\n  mediawiki: docker-registry.wikifarm.example/restricted/mediawiki-multiversion:2026-11-22-090000-publish\n");
        service = new DeployService(farm.Model, new FarmRenderer(farm.Model, farm.Files), new AsDeployer(client), farm.Store, TimeProvider.System);
        var log = new EventLog();
        var warm = request.Executor with { PrePull = Core.Config.PrePullSettings.Default with { Enabled = true } };
        var result = await service.RunAsync((await service.PrepareAsync(request, farm.State, default)).Plan, warm, log, default);
        Assert.True(result.Succeeded, result.Cause);
        Assert.Contains(log.Events, e => e.Message == "pre-pull eqiad: nodes cannot be listed; warming the nodes each release runs on now, with its new images");
        Assert.Contains(log.Events, e => e.Message == "pre-pull eqiad: 1 nodes to warm with 1 images (1 new), 10 at a time (registry egress at most 1.25 GB/s)");
        Assert.Contains(log.Events, e => e.Message.StartsWith("pre-pull eqiad: 1 nodes warmed in ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Without_the_role_the_deployer_gets_the_error_naming_the_user_and_the_permission()
    {
        await using var farm = await StartAsync();
        await CreateNamespaceAsync(farm, "mw-web");
        var (service, request, client) = AsDeployerOf(farm);
        await using var _ = client;

        var refused = await Assert.ThrowsAsync<KubeForbiddenException>(() => service.PrepareAsync(request, farm.State, default));
        Assert.Equal("secrets is forbidden: User \"deployer\" cannot list resource \"secrets\" in API group \"\" in the namespace \"mw-web\"", refused.Message);
    }

    [Fact]
    public async Task A_namespace_the_deployer_may_not_create_is_a_preflight_error_naming_it_and_nothing_is_applied()
    {
        await using var farm = await StartAsync();
        await ApplyExampleRbacAsync(farm);
        var (service, request, client) = AsDeployerOf(farm);
        await using var _ = client;

        var error = await Assert.ThrowsAsync<PreflightException>(() => service.PrepareAsync(request, farm.State, default));
        var problem = Assert.Single(error.Problems);
        Assert.StartsWith(
            "namespace mw-web does not exist in eqiad, and creating it was refused (namespaces \"mw-web\" is forbidden: User \"deployer\" cannot patch resource \"namespaces\" in API group \"\"",
            problem,
            StringComparison.Ordinal);
        Assert.Contains("kubectl create namespace mw-web", problem, StringComparison.Ordinal);
        Assert.Null(await farm.Clusters["eqiad"].GetAsync(new ObjectRef("v1", "Namespace", null, "mw-web"), default));
    }
}
