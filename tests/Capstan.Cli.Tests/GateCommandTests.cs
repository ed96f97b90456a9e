using System.Text.Json.Nodes;

namespace Capstan.Cli.Tests;

/// <summary>The example farm's gate on the command line: refusals that change nothing, and skipping it on the record.</summary>
public sealed class GateCommandTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    /// <summary>A copy of the example farm whose Prometheus is on a port where nothing answers.</summary>
    private string Farm()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        var config = Path.Combine(repo, "capstan.yaml");
        File.WriteAllText(config, File.ReadAllText(config).Replace("http://127.0.0.1:9090", $"http://127.0.0.1:{Testing.EtcdServer.FreePort()}", StringComparison.Ordinal));
        return repo;
    }

    private static void NewImage(string repo, string tag)
    {
        var file = $"images:\n  mediawiki: docker-registry.wikifarm.example/restricted/mediawiki-multiversion:{tag}\n";
        File.WriteAllText(Path.Combine(repo, "deploy", "images", "default.yaml"), file);
        File.WriteAllText(Path.Combine(repo, "deploy", "images", "mw-web", "canary.yaml"), file);
        CliRunner.Publish(repo, $"docker-registry.wikifarm.example/restricted/mediawiki-multiversion:{tag}");
    }

    [Fact]
    public void Without_prometheus_a_gated_deploy_changes_nothing_and_skipping_the_gate_is_recorded_and_announced()
    {
        var repo = Farm();
        string[] deploy = ["deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-web", "--include-needs", "--yes"];
        var install = CliRunner.Run([.. deploy, "--reason", "first"]);
        Assert.True(install.ExitCode == 0, install.Err + install.Out);
        Assert.Contains("gate after canaries: nothing to judge (no release of the stage was upgraded; installs open no gate)", install.Out, StringComparison.Ordinal);

        NewImage(repo, "2026-12-07-090000-publish");
        var refused = CliRunner.Run([.. deploy, "--reason", "train"]);
        var unexplained = CliRunner.Run([.. deploy, "--skip-gates"]);
        var history = CliRunner.Run("history", "--repo", repo, "--dc", "eqiad", "-n", "mw-web", "-r", "canary");

        Assert.Equal(2, refused.ExitCode);
        Assert.Matches(@"capstan: error: gate after canaries, check 'canary errors' \(capstan.yaml:\d+:\d+\): Prometheus at http://127.0.0.1:\d+/ does not answer", refused.Err);
        Assert.Contains("nothing was applied; fix the check or Prometheus, or deploy with --skip-gates --reason", refused.Err, StringComparison.Ordinal);
        Assert.Equal(2, unexplained.ExitCode);
        Assert.Contains("--skip-gates needs --reason", unexplained.Err, StringComparison.Ordinal);
        Assert.Equal(1, history.Out.Split('\n').Count(l => l.Contains("deployed", StringComparison.Ordinal) || l.Contains("superseded", StringComparison.Ordinal)));

        var skipped = CliRunner.Run([.. deploy, "--skip-gates", "--reason", "T42 hotfix, metrics are down", "-o", "json"]);
        Assert.True(skipped.ExitCode == 0, skipped.Err + skipped.Out);
        var result = JsonNode.Parse(skipped.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1])!;
        Assert.Equal("T42 hotfix, metrics are down", result["gatesSkipped"]!.GetValue<string>());
        Assert.Empty(result["gates"]!.AsArray());
        Assert.Contains(skipped.Out.Split('\n'), l => l.Contains("gate after canaries: skipped (T42 hotfix, metrics are down)", StringComparison.Ordinal));

        var announcements = File.ReadAllLines(Path.Combine(repo, ".capstan", "announcements.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(["deploy.start", "deploy.finish", "deploy.start", "deploy.finish"], announcements.Select(a => a["event"]!.GetValue<string>()));
        Assert.EndsWith(": Started deploy [" + result["plan"]!.GetValue<string>() + "] of mw-web: T42 hotfix, metrics are down (gates skipped: T42 hotfix, metrics are down)", announcements[2]["text"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("T42 hotfix, metrics are down", announcements[3]["gatesSkipped"]!.GetValue<string>());
        Assert.Matches(@"^[^@]+@[^:]+: Synchronized mw-web: T42 hotfix, metrics are down \(duration: \d\dm \d\ds\)$", announcements[3]["text"]!.GetValue<string>());
    }

    [Fact]
    public void Gate_analyze_names_the_stages_it_knows_and_the_prometheus_it_cannot_reach()
    {
        var repo = Farm();

        var unknown = CliRunner.Run("gate", "analyze", "production", "--repo", repo);
        var unreachable = CliRunner.Run("gate", "analyze", "canaries", "--repo", repo, "--since", "7d");
        var badSince = CliRunner.Run("gate", "analyze", "canaries", "--repo", repo, "--since", "a week");

        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("'production' is not a stage with a gate after it (allowed: testservers, canaries)", unknown.Err, StringComparison.Ordinal);
        Assert.Equal(1, unreachable.ExitCode);
        Assert.Matches(@"reading 7d of history in 2m windows for \d+ release\(s\) from http://127.0.0.1:\d+/", unreachable.Err);
        Assert.Matches(@"capstan: error: Prometheus at http://127.0.0.1:\d+/ does not answer", unreachable.Err);
        Assert.Equal(2, badSince.ExitCode);
        Assert.Contains("--since 'a week' is not a duration", badSince.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void Local_prometheus_needs_a_served_cluster_and_says_how_to_start_one()
    {
        var repo = Farm();

        var result = CliRunner.Run("local", "prometheus", "--repo", repo, "--port", "1");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("no local cluster of the repo is served; start them first: 'capstan local serve --dc eqiad' and 'capstan local serve --dc codfw'", result.Err, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(repo, ".capstan", "prometheus")));
    }
}
