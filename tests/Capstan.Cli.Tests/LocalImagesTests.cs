using System.Text.Json.Nodes;

namespace Capstan.Cli.Tests;

/// <summary>
/// The images a repo's local clusters can pull: every image the repo names when a cluster is made, plus those
/// published with <c>capstan local images add</c>; any other fails to pull, so a deploy of a tag that exists nowhere fails.
/// </summary>
public sealed class LocalImagesTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void An_image_the_repo_never_named_fails_to_pull_until_it_is_published()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        var listed = JsonNode.Parse(CliRunner.Run("local", "images", "--repo", repo, "--dc", "eqiad", "-o", "json").Out)!["eqiad"]!.AsArray().Select(i => i!.GetValue<string>()).ToList();
        Assert.Contains("docker-registry.wikifarm.example/envoy:1.35.9-1", listed);
        Assert.Contains("docker-registry.wikifarm.example/mariadb:10.11-1", listed);
        Assert.DoesNotContain(listed, i => i.EndsWith(".yaml", StringComparison.Ordinal));

        // The cluster is made (and its list seeded) by the first deploy; then a release's Deployment that gives up after
        // 2 s without progress, on a tag no registry has.
        string[] deploy = ["deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug", "-r", "limits", "--yes"];
        var first = CliRunner.Run(deploy);
        Assert.True(first.ExitCode == 0, first.Err);
        File.WriteAllText(Path.Combine(repo, "manifests", "limits", "web.yaml"), """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web}
            spec:
              replicas: 1
              progressDeadlineSeconds: 2
              selector: {matchLabels: {app: web}}
              template:
                metadata: {labels: {app: web}}
                spec:
                  containers: [{name: web, image: "registry.example/web:2026-12-01", resources: {limits: {memory: 64Mi}}}]
            """);
        var failed = CliRunner.Run(deploy);
        Assert.NotEqual(0, failed.ExitCode);
        Assert.Matches(@"(ErrImagePull|ImagePullBackOff) on web: ", failed.Out + failed.Err);
        Assert.Contains("registry.example/web", failed.Out + failed.Err, StringComparison.Ordinal);

        var added = CliRunner.Run("local", "images", "add", "registry.example/web:2026-12-01", "--repo", repo, "--dc", "eqiad");
        Assert.True(added.ExitCode == 0, added.Err);
        Assert.Contains("eqiad\tregistry.example/web:2026-12-01", added.Out, StringComparison.Ordinal);
        var deployed = CliRunner.Run(deploy);
        Assert.True(deployed.ExitCode == 0, deployed.Err);

        var bad = CliRunner.Run("local", "images", "add", "has space", "--repo", repo);
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("'has space' is not an image reference", bad.Err, StringComparison.Ordinal);
    }
}
