using System.Text.Json.Nodes;

namespace Capstan.Cli.Tests;

/// <summary>The weekly train on the example farm: a move rebuilds only the config layer and ships it; refusals change nothing.</summary>
public sealed class TrainCommandTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    private static string Versions(string repo) => File.ReadAllText(Path.Combine(repo, "mediawiki-config", "wikiversions.json"));

    private static string ImageOf(string repo) =>
        System.Text.RegularExpressions.Regex.Match(File.ReadAllText(Path.Combine(repo, "deploy", "images", "default.yaml")), "@(sha256:[0-9a-f]{64})").Groups[1].Value;

    private static string[] Layers(string repo, string digest) =>
        [.. JsonNode.Parse(File.ReadAllText(Path.Combine(repo, ".capstan", "images", "blobs", "sha256", digest["sha256:".Length..])))!["layers"]!.AsArray().Select(l => l!["digest"]!.GetValue<string>())];

    [Fact]
    public void A_move_forward_ships_only_a_new_config_layer_and_every_pod_then_serves_the_repos_wikiversions()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        var deploy = CliRunner.Run("deploy", "--repo", repo, "--build-image", "--yes");
        Assert.True(deploy.ExitCode == 0, deploy.Err + deploy.Out);
        var before = ImageOf(repo);
        var start = Versions(repo);

        var forward = CliRunner.Run("train", "forward", "--repo", repo, "--yes", "--skip-gates", "--reason", "metrics are down");

        Assert.True(forward.ExitCode == 0, forward.Err + forward.Out);
        Assert.Contains("capstan: train: testwikis: php-1.44 → php-1.45 (3 wikis)", forward.Err, StringComparison.Ordinal);
        Assert.Contains("the train is at testwikis: testwikis on php-1.45", forward.Out, StringComparison.Ordinal);
        var versions = JsonNode.Parse(Versions(repo))!.AsObject();
        Assert.Equal(["test2wiki", "testcommonswiki", "testwiki"], versions.Where(p => p.Value!.GetValue<string>() == "php-1.45").Select(p => p.Key).Order(StringComparer.Ordinal));
        var after = ImageOf(repo);
        Assert.NotEqual(before, after);
        var (old, @new) = (Layers(repo, before), Layers(repo, after));
        Assert.Equal(old.Length, @new.Length);
        Assert.Equal(old[..^1], @new[..^1]);
        Assert.NotEqual(old[^1], @new[^1]);

        var status = CliRunner.Run("train", "status", "--repo", repo, "-o", "json");
        Assert.True(status.ExitCode == 0, status.Err);
        var doc = JsonNode.Parse(status.Out)!;
        Assert.Equal(3, doc["groups"]![0]!["versions"]!["php-1.45"]!.GetValue<int>());
        Assert.Equal(3, doc["groups"]![1]!["versions"]!["php-1.44"]!.GetValue<int>());
        var images = doc["live"]!["images"]!.AsArray();
        var ours = Assert.Single(images, i => i!["digest"]!.GetValue<string>() == after)!;
        Assert.True(ours["matchesRepo"]!.GetValue<bool>());
        Assert.DoesNotContain(images, i => i!["digest"]!.GetValue<string>() == before);

        // The record says what moved, with the version and the groups.
        var history = CliRunner.Run("history", "--repo", repo, "--dc", "eqiad", "-n", "mw-web", "-r", "main");
        Assert.Contains("train forward: testwikis php-1.44 → php-1.45 (3 wikis): metrics are down", history.Out, StringComparison.Ordinal);
        Assert.NotEqual(start, Versions(repo));
    }

    [Fact]
    public void A_blocker_stops_forward_moves_not_backward_ones_and_refusals_leave_wikiversions_as_it_was()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        var config = Path.Combine(repo, "capstan.yaml");
        File.WriteAllText(config, File.ReadAllText(config).Replace("http://127.0.0.1:9090", $"http://127.0.0.1:{Testing.EtcdServer.FreePort()}", StringComparison.Ordinal));
        var deploy = CliRunner.Run("deploy", "--repo", repo, "--build-image", "--yes");
        Assert.True(deploy.ExitCode == 0, deploy.Err + deploy.Out);
        var start = Versions(repo);
        var image = File.ReadAllText(Path.Combine(repo, "deploy", "images", "default.yaml"));

        var notInImage = CliRunner.Run("train", "forward", "--repo", repo, "--version", "php-1.46", "--yes");
        Assert.Equal(2, notInImage.ExitCode);
        Assert.Equal("capstan: error: php-1.46 is not in the image (image.sources: php-1.44, php-1.45): add its code tree to image.sources first\n", notInImage.Err);

        // Prometheus does not answer: the gate refuses the deploy before anything is applied, and the move is undone.
        var unreachable = CliRunner.Run("train", "forward", "--repo", repo, "--yes");
        Assert.Equal(2, unreachable.ExitCode);
        Assert.Contains("does not answer", unreachable.Err, StringComparison.Ordinal);
        Assert.Contains("capstan: train: mediawiki-config/wikiversions.json and the images values file are as they were: the move did not go through", unreachable.Err, StringComparison.Ordinal);
        Assert.Equal(start, Versions(repo));
        Assert.Equal(image, File.ReadAllText(Path.Combine(repo, "deploy", "images", "default.yaml")));

        Assert.Equal(0, CliRunner.Run("train", "block", "--repo", repo, "--reason", "https://tasks.example/T1").ExitCode);
        var blocked = CliRunner.Run("train", "to", "group0", "--repo", repo, "--yes");
        Assert.Equal(5, blocked.ExitCode);
        Assert.Matches(@"capstan: error: the train is blocked by \S+ at [0-9-]+ [0-9:]+ UTC: https://tasks.example/T1; 'capstan train unblock --reason …' lifts it", blocked.Err);
        Assert.Equal(start, Versions(repo));
        Assert.Matches(@"blocked: \S+ at [0-9-]+ [0-9:]+ UTC: https://tasks.example/T1", CliRunner.Run("train", "status", "--repo", repo, "--no-live").Out);

        // Backward from START is nothing to do, and allowed while blocked.
        var backward = CliRunner.Run("train", "backward", "--repo", repo, "--yes");
        Assert.Equal(0, backward.ExitCode);
        Assert.Contains("nothing to do: the train is at START", backward.Err, StringComparison.Ordinal);

        Assert.Equal(0, CliRunner.Run("train", "unblock", "--repo", repo, "--reason", "fixed").ExitCode);
        var dryRun = CliRunner.Run("train", "to", "group0", "--repo", repo, "--dry-run");
        Assert.True(dryRun.ExitCode == 0, dryRun.Err + dryRun.Out);
        Assert.Contains("capstan: train: group0: php-1.44 → php-1.45 (3 wikis)", dryRun.Err, StringComparison.Ordinal);
        Assert.Contains("(dry run)", dryRun.Err, StringComparison.Ordinal);
        Assert.Equal(start, Versions(repo));
    }
}
