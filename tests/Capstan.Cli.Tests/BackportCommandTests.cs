using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Capstan.Cli.Tests;

/// <summary>
/// Backports from the example farm's config tree made a git repository (a deploy branch following an upstream
/// branch): shipping a commit and its revert, and the refusals that change nothing.
/// </summary>
public sealed class BackportCommandTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    /// <summary>The example farm whose config tree is a repository on 'main', following 'upstream', with one commit on upstream not yet deployed.</summary>
    private (string Repo, string Config, string Commit) Farm(bool prometheusAnswers = true)
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        if (!prometheusAnswers)
        {
            var yaml = Path.Combine(repo, "capstan.yaml");
            File.WriteAllText(yaml, File.ReadAllText(yaml).Replace("http://127.0.0.1:9090", $"http://127.0.0.1:{Testing.EtcdServer.FreePort()}", StringComparison.Ordinal));
        }

        var (config, commit) = GitFarm.WithConfigCommit(repo);
        return (repo, config, commit);
    }

    private static string[] Layers(string repo, string digest) =>
        [.. JsonNode.Parse(File.ReadAllText(Path.Combine(repo, ".capstan", "images", "blobs", "sha256", digest["sha256:".Length..])))!["layers"]!.AsArray().Select(l => l!["digest"]!.GetValue<string>())];

    private static string ImageOf(string repo) =>
        System.Text.RegularExpressions.Regex.Match(File.ReadAllText(Path.Combine(repo, "deploy", "images", "default.yaml")), "@(sha256:[0-9a-f]{64})").Groups[1].Value;

    [Fact]
    public void A_config_commit_ships_only_a_new_config_layer_through_the_stages_with_its_timings_and_its_revert_brings_back_the_same_layers()
    {
        var (repo, config, commit) = Farm();
        var deploy = CliRunner.Run("deploy", "--repo", repo, "--build-image", "--yes");
        Assert.True(deploy.ExitCode == 0, deploy.Err + deploy.Out);
        var before = ImageOf(repo);

        var backport = CliRunner.Run("backport", commit[..10], "--repo", repo, "--yes", "--skip-gates", "--reason", "T7", "-o", "json");

        Assert.True(backport.ExitCode == 0, backport.Err + backport.Out);
        Assert.Contains($"capstan: backport: shipping config {commit[..7]} Raise the upload limit", backport.Err, StringComparison.Ordinal);
        Assert.Contains("raise the upload limit", File.ReadAllText(Path.Combine(config, "wmf-config", "InitialiseSettings.php")), StringComparison.Ordinal);
        Assert.Contains($"(cherry picked from commit {commit})", GitFarm.Git(config, "log", "-1", "--format=%B"), StringComparison.Ordinal);
        var result = JsonNode.Parse(backport.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1])!;
        Assert.True(result["succeeded"]!.GetValue<bool>());
        var phases = result["phases"]!.AsArray().Select(p => p!["name"]!.GetValue<string>()).ToList();
        Assert.Equal(["build", "open", "plan", "stage testservers", "stage canaries", "stage production"], phases);
        var after = ImageOf(repo);
        Assert.NotEqual(before, after);
        Assert.Equal(Layers(repo, before)[..^1], Layers(repo, after)[..^1]);
        Assert.NotEqual(Layers(repo, before)[^1], Layers(repo, after)[^1]);

        // The record names the commit.
        var history = CliRunner.Run("history", "--repo", repo, "--dc", "eqiad", "-n", "mw-web", "-r", "main");
        Assert.Contains($"backport: config {commit[..7]} Raise the upload limit: T7", history.Out, StringComparison.Ordinal);

        // Shipping it again is refused; its revert ships, and the reproducible build gives back the layers of before (the
        // image's revision label names the revert's commit).
        var again = CliRunner.Run("backport", commit, "--repo", repo, "--yes");
        Assert.Equal(2, again.ExitCode);
        Assert.Equal($"capstan: error: {commit[..7]} Raise the upload limit is already deployed: the config tree's HEAD holds it\n", again.Err);

        var revert = CliRunner.Run("backport", "--revert", GitFarm.Git(config, "rev-parse", "HEAD"), "--repo", repo, "--yes", "--skip-gates", "--reason", "T7 broke uploads");
        Assert.True(revert.ExitCode == 0, revert.Err + revert.Out);
        Assert.DoesNotContain("raise the upload limit", File.ReadAllText(Path.Combine(config, "wmf-config", "InitialiseSettings.php")), StringComparison.Ordinal);
        Assert.Equal(Layers(repo, before), Layers(repo, ImageOf(repo)));
    }

    [Fact]
    public void Commits_that_may_not_ship_are_refused_and_a_refused_deploy_puts_the_tree_back()
    {
        var (repo, config, commit) = Farm(prometheusAnswers: false);
        Assert.Equal(0, CliRunner.Run("deploy", "--repo", repo, "--build-image", "--yes").ExitCode);
        var head = GitFarm.Git(config, "rev-parse", "HEAD");
        var images = File.ReadAllText(Path.Combine(repo, "deploy", "images", "default.yaml"));

        GitFarm.Git(config, "checkout", "-q", "-b", "side", "main");
        File.AppendAllText(Path.Combine(config, "wmf-config", "CommonSettings.php"), "// a side change\n");
        GitFarm.Git(config, "commit", "-q", "-am", "A side change");
        var side = GitFarm.Git(config, "rev-parse", "HEAD");
        GitFarm.Git(config, "checkout", "-q", "main");

        var offBranch = CliRunner.Run("backport", side, "--repo", repo, "--yes");
        Assert.Equal(2, offBranch.ExitCode);
        Assert.Equal($"capstan: error: {side[..7]} A side change is not on upstream, the branch the config tree is built from: merge it there first\n", offBranch.Err);

        var unknown = CliRunner.Run("backport", "--repo", repo, "--yes", "--", "--upload-pack=touch /tmp/x");
        Assert.Equal(2, unknown.ExitCode);
        Assert.StartsWith("capstan: error: '--upload-pack=touch /tmp/x' is a commit of none of the image's trees (config at ", unknown.Err, StringComparison.Ordinal);

        File.AppendAllText(Path.Combine(config, "wmf-config", "CommonSettings.php"), "// not committed\n");
        var dirty = CliRunner.Run("backport", commit, "--repo", repo, "--yes");
        Assert.Equal(2, dirty.ExitCode);
        Assert.Contains("has uncommitted changes", dirty.Err, StringComparison.Ordinal);
        GitFarm.Git(config, "checkout", "--", ".");

        // Prometheus does not answer: the gate refuses the deploy before anything is applied, and the tree goes back.
        var refused = CliRunner.Run("backport", commit, "--repo", repo, "--yes");
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("does not answer", refused.Err, StringComparison.Ordinal);
        Assert.Contains("capstan: backport: the trees and the images values file are as they were: the backport did not go through", refused.Err, StringComparison.Ordinal);
        Assert.Equal(head, GitFarm.Git(config, "rev-parse", "HEAD"));
        Assert.Equal(string.Empty, GitFarm.Git(config, "status", "--porcelain"));
        Assert.Equal(images, File.ReadAllText(Path.Combine(repo, "deploy", "images", "default.yaml")));
    }

    [Fact]
    public async Task On_a_terminal_the_deployer_is_asked_after_the_test_servers_and_no_rolls_back_and_puts_the_tree_back()
    {
        var (repo, config, commit) = Farm();
        Assert.Equal(0, CliRunner.Run("deploy", "--repo", repo, "--build-image", "--yes").ExitCode);
        var head = GitFarm.Git(config, "rev-parse", "HEAD");

        // A pseudo-terminal answers yes to the plan and no at the test servers.
        var (exit, text) = await OnTerminalAsync("y\nn\n", "backport", commit, "--repo", repo, "--skip-gates", "--reason", "T8");

        Assert.Equal(7, exit);
        Assert.Contains("Check your change on the test servers; continue? [y/N]", text, StringComparison.Ordinal);
        Assert.Contains("the backport did not go through", text, StringComparison.Ordinal);
        Assert.Equal(head, GitFarm.Git(config, "rev-parse", "HEAD"));
        var history = CliRunner.Run("history", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug", "-r", "pinkunicorn");
        Assert.Contains("rollback to revision", history.Out, StringComparison.Ordinal);
        Assert.Contains("the deployer did not continue after the test servers", CliRunner.Run("status", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug").Out, StringComparison.Ordinal);
        Assert.Single(CliRunner.Run("history", "--repo", repo, "--dc", "eqiad", "-n", "mw-web", "-r", "main").Out.Split('\n'), l => l.StartsWith("eqiad/mw-web/main", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_unanswered_pause_continues_after_its_timeout_when_told_to()
    {
        var (repo, config, commit) = Farm();
        Assert.Equal(0, CliRunner.Run("deploy", "--repo", repo, "--build-image", "--yes").ExitCode);

        // Yes to the plan, then nothing: the pause waits two seconds and goes on.
        var (exit, text) = await OnTerminalAsync("y\n", "backport", commit, "--repo", repo, "--skip-gates", "--reason", "T9", "--pause-timeout", "2s", "--on-timeout", "continue");

        Assert.True(exit == 0, text);
        Assert.Contains("Check your change on the test servers; continue? [y/N]", text, StringComparison.Ordinal);
        Assert.Contains("no answer within 2s: continuing (--on-timeout continue)", text, StringComparison.Ordinal);
        Assert.Contains($"(cherry picked from commit {commit})", GitFarm.Git(config, "log", "-1", "--format=%B"), StringComparison.Ordinal);
        Assert.Matches(@"phases: .*pause after testservers [0-9.]+ s, stage canaries", text);
    }

    /// <summary>Runs capstan on a pseudo-terminal (Python's pty module, no shell) that is fed <paramref name="input"/>; its exit code and all it wrote.</summary>
    private static async Task<(int ExitCode, string Text)> OnTerminalAsync(string input, params string[] args)
    {
        var start = new ProcessStartInfo("python3") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { "-c", "import os, pty, sys; sys.exit(os.waitstatus_to_exitcode(pty.spawn(sys.argv[1:])))", "dotnet", Path.Combine(AppContext.BaseDirectory, "capstan.dll") }.Concat(args))
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        process.StandardInput.Write(input);
        process.StandardInput.Close();
        using var patience = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync(patience.Token);
        return (process.ExitCode, await output + await errors);
    }
}
