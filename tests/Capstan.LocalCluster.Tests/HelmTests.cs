using System.Diagnostics;

namespace Capstan.LocalCluster.Tests;

/// <summary>
/// Helm 3, unmodified, as a user who brings a chart to the embedded cluster runs it: its release records are Secrets
/// written by client-go's typed client (protobuf), its charts' objects are applied as JSON, and --wait polls them.
/// </summary>
public sealed class HelmTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "capstan-helm-" + Guid.NewGuid().ToString("N"));
    private Cluster _cluster = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        _cluster = await Cluster.StartAsync();
        await File.WriteAllTextAsync(Path.Combine(_dir, "kubeconfig"), _cluster.Kubeconfig());
    }

    public async Task DisposeAsync()
    {
        await _cluster.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private async Task<(int Code, string Out, string Err)> HelmAsync(params string[] args)
    {
        var psi = new ProcessStartInfo(Capstan.Testing.Helm.Path()) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = _dir };
        psi.Environment["KUBECONFIG"] = Path.Combine(_dir, "kubeconfig");
        psi.Environment["HOME"] = _dir;
        foreach (var variable in new[] { "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME" })
        {
            psi.Environment[variable] = Path.Combine(_dir, variable.ToLowerInvariant());
        }

        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await process.WaitForExitAsync(cts.Token);
        return (process.ExitCode, await stdout, await stderr);
    }

    [Fact]
    public async Task Helm_installs_upgrades_rolls_back_and_uninstalls_a_chart_with_wait()
    {
        await _cluster.NamespaceAsync("demo");
        Assert.Equal(0, (await HelmAsync("create", "web")).Code);
        string[] image = ["--set", "image.repository=docker-registry.wikimedia.org/mediawiki"];

        var install = await HelmAsync(["install", "web", "./web", "-n", "demo", .. image, "--set", "image.tag=1.0", "--wait", "--timeout", "90s"]);
        Assert.True(install.Code == 0, install.Err);
        Assert.Equal("docker-registry.wikimedia.org/mediawiki:1.0", await ImageAsync());

        var upgrade = await HelmAsync(["upgrade", "web", "./web", "-n", "demo", .. image, "--set", "image.tag=1.1", "--wait", "--timeout", "90s"]);
        Assert.True(upgrade.Code == 0, upgrade.Err);
        Assert.Equal("docker-registry.wikimedia.org/mediawiki:1.1", await ImageAsync());

        var rollback = await HelmAsync("rollback", "web", "1", "-n", "demo", "--wait", "--timeout", "90s");
        Assert.True(rollback.Code == 0, rollback.Err);
        Assert.Equal("docker-registry.wikimedia.org/mediawiki:1.0", await ImageAsync());

        var history = await HelmAsync("history", "web", "-n", "demo", "-o", "json");
        Assert.True(history.Code == 0, history.Err);
        var revisions = System.Text.Json.Nodes.JsonNode.Parse(history.Out)!.AsArray();
        Assert.Equal(["superseded", "superseded", "deployed"], revisions.Select(r => r!["status"]!.GetValue<string>()));
        Assert.Equal("Rollback to 1", revisions[2]!["description"]!.GetValue<string>());

        var uninstall = await HelmAsync("uninstall", "web", "-n", "demo", "--wait", "--timeout", "90s");
        Assert.True(uninstall.Code == 0, uninstall.Err);
        Assert.Null(await _cluster.Client.GetAsync(new ObjectRef("apps/v1", "Deployment", "demo", "web"), CancellationToken.None));
        var secrets = await _cluster.Client.ListAsync("v1", "Secret", "demo", null, CancellationToken.None);
        Assert.DoesNotContain(secrets.Items, s => s["metadata"]!["name"]!.GetValue<string>().StartsWith("sh.helm.release", StringComparison.Ordinal));
    }

    private async Task<string?> ImageAsync() =>
        (await _cluster.Client.GetAsync(new ObjectRef("apps/v1", "Deployment", "demo", "web"), CancellationToken.None))?["spec"]?["template"]?["spec"]?["containers"]?[0]?["image"]?.GetValue<string>();
}
