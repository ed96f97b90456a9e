using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Capstan.LocalCluster;

namespace Capstan.Cli.Tests;

/// <summary>
/// A train move and a backport judged by a real gate: both datacenters served (<c>capstan local serve</c>), scraped by
/// <c>capstan local prometheus</c> (Debian's Prometheus), and canaries that answer half their requests with errors.
/// </summary>
public sealed class GatedTrainTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    /// <summary>Of the images the farm built, the pods run <paramref name="image"/> only (the canaries' pinned image aside, which is named by tag).</summary>
    private static void AssertOnlyImageBuilt(string repo, string image)
    {
        var live = JsonNode.Parse(CliRunner.Run("train", "status", "--repo", repo, "-o", "json").Out)!["live"]!;
        var built = live["images"]!.AsArray().Select(i => i!["digest"]!.GetValue<string>()).Where(d => d.StartsWith("sha256:", StringComparison.Ordinal)).ToList();
        Assert.Equal([image], built);
    }

    private static string ImagesFile(string repo) => File.ReadAllText(Path.Combine(repo, "deploy", "images", "default.yaml"));

    [Fact(Timeout = 600_000)]
    public async Task A_failed_gate_rolls_a_train_move_and_a_backport_back_holds_what_they_shipped_and_puts_the_repo_back()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        var (config, commit) = GitFarm.WithConfigCommit(repo);
        var port = Testing.EtcdServer.FreePort();
        var yaml = Path.Combine(repo, "capstan.yaml");
        File.WriteAllText(yaml, File.ReadAllText(yaml)
            .Replace("http://127.0.0.1:9090", $"http://127.0.0.1:{port}", StringComparison.Ordinal)
            .Replace("soak: 2m", "soak: 8s", StringComparison.Ordinal)
            .Replace("interval: 10s", "interval: 1s", StringComparison.Ordinal));

        using var eqiad = CliRunner.StartChild(new Dictionary<string, string>(), "local", "serve", "--dc", "eqiad", "--repo", repo);
        using var codfw = CliRunner.StartChild(new Dictionary<string, string>(), "local", "serve", "--dc", "codfw", "--repo", repo);
        await eqiad.WaitForAsync("https://127.0.0.1:", 120);
        await codfw.WaitForAsync("https://127.0.0.1:", 120);
        var install = CliRunner.Run("deploy", "--repo", repo, "--build-image", "--yes");
        Assert.True(install.ExitCode == 0, install.Err + install.Out);
        var versions = File.ReadAllText(Path.Combine(config, "wikiversions.json"));
        var images = ImagesFile(repo);
        var image = System.Text.RegularExpressions.Regex.Match(images, "@(sha256:[0-9a-f]{64})").Groups[1].Value;

        using var prometheus = CliRunner.StartChild(new Dictionary<string, string>(), "local", "prometheus", "--repo", repo, "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--scrape-interval", "1s");
        await prometheus.WaitForAsync("http://127.0.0.1:", 60);

        // From now on every canary answers half its requests with errors: whatever a deploy moves them to fails its gate.
        foreach (var dc in new[] { "eqiad", "codfw" })
        {
            var server = JsonNode.Parse(File.ReadAllText(Path.Combine(LocalClusterHost.DirectoryFor(repo, dc), "server.json")))!;
            using var http = Testing.Cluster.TrustingHttp(new Uri(server["url"]!.GetValue<string>()), server["certificateAuthority"]!.GetValue<string>(), server["token"]!.GetValue<string>());
            (await http.PostAsJsonAsync("/capstan/faults", new JsonObject { ["type"] = "errors", ["selector"] = "release=canary", ["ratio"] = 0.5 })).EnsureSuccessStatusCode();
        }

        var move = CliRunner.Run("train", "forward", "--repo", repo, "--yes", "--reason", "T10");

        Assert.True(move.ExitCode == 7, move.Err + move.Out);
        Assert.Contains("gate after canaries failed", move.Out, StringComparison.Ordinal);
        Assert.Contains("canary errors", move.Out, StringComparison.Ordinal);
        Assert.Contains("capstan: train: mediawiki-config/wikiversions.json and the images values file are as they were: the move did not go through", move.Err, StringComparison.Ordinal);
        Assert.Equal(versions, File.ReadAllText(Path.Combine(config, "wikiversions.json")));
        Assert.Equal(images, ImagesFile(repo));
        AssertOnlyImageBuilt(repo, image);
        var held = CliRunner.Run("status", "--repo", repo, "--dc", "eqiad", "-n", "mw-web").Out;
        Assert.Contains("gate after canaries failed", held, StringComparison.Ordinal);

        var backport = CliRunner.Run("backport", commit, "--repo", repo, "--yes", "--reason", "T11");

        Assert.True(backport.ExitCode == 7, backport.Err + backport.Out);
        Assert.Contains("gate after canaries failed", backport.Out, StringComparison.Ordinal);
        Assert.Contains("capstan: backport: the trees and the images values file are as they were: the backport did not go through", backport.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("raise the upload limit", File.ReadAllText(Path.Combine(config, "wmf-config", "InitialiseSettings.php")), StringComparison.Ordinal);
        Assert.Equal("Base", GitFarm.Git(config, "log", "-1", "--format=%s"));
        Assert.Equal(images, ImagesFile(repo));
        AssertOnlyImageBuilt(repo, image);
    }
}
