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

    private static string Git(string dir, params string[] args)
    {
        var start = new ProcessStartInfo("git") { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"git {string.Join(' ', args)}: {error}");
        return output.Trim();
    }

    /// <summary>The example farm whose config tree is a repository on 'main', following 'upstream', with one commit on upstream not yet deployed.</summary>
    private (string Repo, string Config, string Commit) Farm(bool prometheusAnswers = true)
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        if (!prometheusAnswers)
        {
            var yaml = Path.Combine(repo, "capstan.yaml");
            File.WriteAllText(yaml, File.ReadAllText(yaml).Replace("http://127.0.0.1:9090", $"http://127.0.0.1:{Testing.EtcdServer.FreePort()}", StringComparison.Ordinal));
        }

        var config = Path.Combine(repo, "mediawiki-config");
        Git(config, "init", "-q", "-b", "main");
        Git(config, "config", "user.name", "Deployer");
        Git(config, "config", "user.email", "deployer@example.org");
        Git(config, "add", "-A");
        Git(config, "commit", "-q", "-m", "Base");
        Git(config, "branch", "upstream");
        Git(config, "branch", "-q", "--set-upstream-to=upstream");
        Git(config, "checkout", "-q", "upstream");
        File.AppendAllText(Path.Combine(config, "wmf-config", "InitialiseSettings.php"), "// raise the upload limit\n");
        Git(config, "commit", "-q", "-am", "Raise the upload limit");
        var commit = Git(config, "rev-parse", "HEAD");
        Git(config, "checkout", "-q", "main");
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
        Assert.Contains($"(cherry picked from commit {commit})", Git(config, "log", "-1", "--format=%B"), StringComparison.Ordinal);
        var result = JsonNode.Parse(backport.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1])!;
        Assert.True(result["succeeded"]!.GetValue<bool>());
        var phases = result["phases"]!.AsArray().Select(p => p!["name"]!.GetValue<string>()).ToList();
        Assert.Equal(["build", "plan", "stage testservers", "stage canaries", "stage production"], phases);
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

        var revert = CliRunner.Run("backport", "--revert", Git(config, "rev-parse", "HEAD"), "--repo", repo, "--yes", "--skip-gates", "--reason", "T7 broke uploads");
        Assert.True(revert.ExitCode == 0, revert.Err + revert.Out);
        Assert.DoesNotContain("raise the upload limit", File.ReadAllText(Path.Combine(config, "wmf-config", "InitialiseSettings.php")), StringComparison.Ordinal);
        Assert.Equal(Layers(repo, before), Layers(repo, ImageOf(repo)));
    }

    [Fact]
    public void Commits_that_may_not_ship_are_refused_and_a_refused_deploy_puts_the_tree_back()
    {
        var (repo, config, commit) = Farm(prometheusAnswers: false);
        Assert.Equal(0, CliRunner.Run("deploy", "--repo", repo, "--build-image", "--yes").ExitCode);
        var head = Git(config, "rev-parse", "HEAD");
        var images = File.ReadAllText(Path.Combine(repo, "deploy", "images", "default.yaml"));

        Git(config, "checkout", "-q", "-b", "side", "main");
        File.AppendAllText(Path.Combine(config, "wmf-config", "CommonSettings.php"), "// a side change\n");
        Git(config, "commit", "-q", "-am", "A side change");
        var side = Git(config, "rev-parse", "HEAD");
        Git(config, "checkout", "-q", "main");

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
        Git(config, "checkout", "--", ".");

        // Prometheus does not answer: the gate refuses the deploy before anything is applied, and the tree goes back.
        var refused = CliRunner.Run("backport", commit, "--repo", repo, "--yes");
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("does not answer", refused.Err, StringComparison.Ordinal);
        Assert.Contains("capstan: backport: the trees and the images values file are as they were: the backport did not go through", refused.Err, StringComparison.Ordinal);
        Assert.Equal(head, Git(config, "rev-parse", "HEAD"));
        Assert.Equal(string.Empty, Git(config, "status", "--porcelain"));
        Assert.Equal(images, File.ReadAllText(Path.Combine(repo, "deploy", "images", "default.yaml")));
    }

    [Fact]
    public async Task On_a_terminal_the_deployer_is_asked_after_the_test_servers_and_no_rolls_back_and_puts_the_tree_back()
    {
        var (repo, config, commit) = Farm();
        Assert.Equal(0, CliRunner.Run("deploy", "--repo", repo, "--build-image", "--yes").ExitCode);
        var head = Git(config, "rev-parse", "HEAD");

        // A pseudo-terminal (Python's pty module, no shell) answers yes to the plan and no at the test servers.
        var start = new ProcessStartInfo("python3") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { "-c", "import os, pty, sys; sys.exit(os.waitstatus_to_exitcode(pty.spawn(sys.argv[1:])))", "dotnet", Path.Combine(AppContext.BaseDirectory, "capstan.dll"),
                     "backport", commit, "--repo", repo, "--skip-gates", "--reason", "T8" })
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        process.StandardInput.Write("y\nn\n");
        process.StandardInput.Flush();
        using var patience = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync(patience.Token);
        var text = await output;

        Assert.Equal(7, process.ExitCode);
        Assert.Contains("Check your change on the test servers; continue? [y/N]", text, StringComparison.Ordinal);
        Assert.Contains("the backport did not go through", text, StringComparison.Ordinal);
        Assert.Equal(head, Git(config, "rev-parse", "HEAD"));
        var history = CliRunner.Run("history", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug", "-r", "pinkunicorn");
        Assert.Contains("rollback to revision", history.Out, StringComparison.Ordinal);
        Assert.Contains("the deployer did not continue after the test servers", CliRunner.Run("status", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug").Out, StringComparison.Ordinal);
        Assert.Single(CliRunner.Run("history", "--repo", repo, "--dc", "eqiad", "-n", "mw-web", "-r", "main").Out.Split('\n'), l => l.StartsWith("eqiad/mw-web/main", StringComparison.Ordinal));
    }
}
