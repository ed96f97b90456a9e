using System.Text.Json.Nodes;

namespace Capstan.Cli.Tests;

/// <summary>
/// Sync and health in <c>capstan status</c>: a change by kubectl (on a served cluster) is Drifted and names the writer,
/// a change of the repo is OutOfSync and says what, everything else Synced; <c>--out-of-sync</c> lists what differs.
/// </summary>
public sealed class SyncStatusTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    private static JsonObject Row(JsonNode status, string release) =>
        status["releases"]!.AsArray().Single(r => r!["release"]!.GetValue<string>() == release)!.AsObject();

    /// <summary>The name of the Deployment of a group's main release in eqiad, as the repo renders it.</summary>
    private static string DeploymentOf(string repo, string group) =>
        JsonNode.Parse(CliRunner.Run("render", "--repo", repo, "--dc", "eqiad", "-n", group, "-r", "main", "-o", "json").Out)!["items"]!
            .AsArray().First(o => o!["kind"]!.GetValue<string>() == "Deployment")!["metadata"]!["name"]!.GetValue<string>();

    [Fact(Timeout = 300_000)]
    public async Task Kubectl_changes_are_drifted_with_their_writer_repo_changes_out_of_sync_and_the_rest_synced()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        var kubeconfig = Path.Combine(_temp.Path, "kubeconfig");
        using var eqiad = CliRunner.StartChild(new Dictionary<string, string>(), "local", "serve", "--dc", "eqiad", "--repo", repo, "--kubeconfig", kubeconfig);
        await eqiad.WaitForAsync("https://127.0.0.1:", 120);
        var deploy = CliRunner.Run("deploy", "--repo", repo, "--yes");
        Assert.True(deploy.ExitCode == 0, deploy.Err + deploy.Out);

        var clean = CliRunner.Run("status", "--repo", repo, "--out-of-sync");
        Assert.True(clean.ExitCode == 0, clean.Err + clean.Out);
        Assert.Equal("every release is Synced: it runs what the repo says\n", clean.Out);
        var first = JsonNode.Parse(CliRunner.Run("status", "--repo", repo, "-o", "json").Out)!;
        Assert.All(first["releases"]!.AsArray(), r => Assert.Equal("Synced", r!["sync"]!.GetValue<string>()));
        Assert.All(first["releases"]!.AsArray(), r => Assert.Equal("Healthy", r!["health"]!.GetValue<string>()));

        // kubectl scales one Deployment and sets an env var on another; the repo changes a third release's image.
        var webName = DeploymentOf(repo, "mw-web");
        var scaled = await Testing.Kubectl.RunAsync(kubeconfig, "-n", "mw-web", "scale", "deployment/" + webName, "--replicas=10");
        Assert.True(scaled.Code == 0, scaled.Err);
        var apiName = DeploymentOf(repo, "mw-api-int");
        var env = await Testing.Kubectl.RunAsync(kubeconfig, "-n", "mw-api-int", "set", "env", "deployment/" + apiName, "TRACING=1");
        Assert.True(env.Code == 0, env.Err);
        Directory.CreateDirectory(Path.Combine(repo, "deploy", "images", "mw-debug"));
        File.WriteAllText(Path.Combine(repo, "deploy", "images", "mw-debug", "pinkunicorn.yaml"),
            "images:\n  mediawiki: docker-registry.wikifarm.example/restricted/mediawiki-multiversion:2026-12-01-090000-publish\n");
        CliRunner.Publish(repo, "docker-registry.wikifarm.example/restricted/mediawiki-multiversion:2026-12-01-090000-publish");

        var status = JsonNode.Parse(CliRunner.Run("status", "--repo", repo, "-o", "json").Out)!;
        var web = Row(status, "eqiad/mw-web/main");
        Assert.Equal("Drifted", web["sync"]!.GetValue<string>());
        Assert.Matches(@"^Deployment \S+ \.spec\.replicas changed by kubectl", web["syncDetail"]!.GetValue<string>());
        var api = Row(status, "eqiad/mw-api-int/main");
        Assert.Equal("Drifted", api["sync"]!.GetValue<string>());
        Assert.Contains("env[name=\"TRACING\"] changed by kubectl", api["syncDetail"]!.GetValue<string>(), StringComparison.Ordinal);
        foreach (var dc in new[] { "eqiad", "codfw" })
        {
            var debug = Row(status, $"{dc}/mw-debug/pinkunicorn");
            Assert.Equal("OutOfSync", debug["sync"]!.GetValue<string>());
            Assert.Contains("image mediawiki-multiversion:", debug["syncDetail"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.Contains("→ mediawiki-multiversion:2026-12-01-090000-publish", debug["syncDetail"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        Assert.Equal("Synced", Row(status, "codfw/mw-web/main")["sync"]!.GetValue<string>());

        // --out-of-sync lists exactly those, and exits 2 as diff does.
        var differing = CliRunner.Run("status", "--repo", repo, "--out-of-sync");
        Assert.Equal(2, differing.ExitCode);
        var rows = differing.Out.Split('\n').Where(l => l.StartsWith("eqiad/", StringComparison.Ordinal) || l.StartsWith("codfw/", StringComparison.Ordinal)).Select(l => l.Split(' ')[0].TrimEnd(':')).Distinct().Order(StringComparer.Ordinal);
        Assert.Equal(["codfw/mw-debug/pinkunicorn", "eqiad/mw-api-int/main", "eqiad/mw-debug/pinkunicorn", "eqiad/mw-web/main"], rows);
        Assert.Contains("eqiad/mw-web/main: Drifted: Deployment", differing.Out, StringComparison.Ordinal);

        // A deploy takes the repo's word again (taking back kubectl's fields); what kubectl added beside Capstan's
        // fields stays, as server-side apply leaves another manager's fields, until kubectl takes it away.
        var again = CliRunner.Run("deploy", "--repo", repo, "--yes", "--force-conflicts", "--reason", "back to the repo");
        Assert.True(again.ExitCode == 0, again.Err + again.Out);
        var after = CliRunner.Run("status", "--repo", repo, "--out-of-sync");
        Assert.True(after.ExitCode == 2, after.Out);
        Assert.Equal(["eqiad/mw-api-int/main"], after.Out.Split('\n').Where(l => l.StartsWith("eqiad/", StringComparison.Ordinal) || l.StartsWith("codfw/", StringComparison.Ordinal)).Select(l => l.Split(' ')[0].TrimEnd(':')).Distinct());
        var unset = await Testing.Kubectl.RunAsync(kubeconfig, "-n", "mw-api-int", "set", "env", "deployment/" + apiName, "TRACING-");
        Assert.True(unset.Code == 0, unset.Err);
        var synced = CliRunner.Run("status", "--repo", repo, "--out-of-sync");
        Assert.True(synced.ExitCode == 0, synced.Out);
    }

    [Fact]
    public void Moving_the_primary_by_hand_is_refused_naming_the_switchover_and_a_forced_move_is_flagged_until_the_clusters_follow()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        Assert.Equal(0, CliRunner.Run("deploy", "--repo", repo, "--yes").ExitCode);

        var refused = CliRunner.Run("state", "set", "primary-dc", "codfw", "--repo", repo, "--reason", "oops");
        Assert.Equal(2, refused.ExitCode);
        Assert.Equal(
            "capstan: error: moving the primary datacenter from eqiad to codfw is a step of a switchover, which makes the primary read-only first, then moves the primary, " +
            "makes the CronJobs follow and lifts read-only: run 'capstan switchover --from DC --to DC' instead, or add --force to do only this step (recorded as forced and announced); nothing was written\n",
            refused.Err);
        var readOnly = CliRunner.Run("state", "set", "read-only", "eqiad", "db work", "--repo", repo, "--reason", "oops");
        Assert.Equal(2, readOnly.ExitCode);
        Assert.Contains("making the primary datacenter eqiad read-only is a step of a switchover", readOnly.Err, StringComparison.Ordinal);
        Assert.Equal(0, CliRunner.Run("state", "set", "read-only", "codfw", "db work", "--repo", repo, "--reason", "T1").ExitCode);
        Assert.Empty(JsonNode.Parse(CliRunner.Run("state", "get", "--repo", repo, "-o", "json").Out)!["clusterMismatches"]!.AsArray());

        var forced = CliRunner.Run("state", "set", "primary-dc", "codfw", "--repo", repo, "--reason", "eqiad is on fire", "--force");
        Assert.True(forced.ExitCode == 0, forced.Err);
        Assert.Contains("(forced)", CliRunner.Run("state", "history", "--repo", repo).Out, StringComparison.Ordinal);
        var announced = File.ReadAllLines(Path.Combine(repo, ".capstan", "announcements.jsonl")).Select(l => JsonNode.Parse(l)!).Last();
        Assert.Equal("state.forced", announced["event"]!.GetValue<string>());
        Assert.Contains("eqiad is on fire", announced["text"]!.GetValue<string>(), StringComparison.Ordinal);

        // The CronJobs are still in eqiad, and codfw (now primary, but read-only) has none: state get says so.
        var get = CliRunner.Run("state", "get", "--repo", repo);
        Assert.Matches(@"capstan: warning: the clusters do not reflect the state: \d+ active CronJobs? in eqiad, where maintenance should not run \(eqiad is not the primary datacenter \(codfw is\)\): 'capstan maintenance reconcile'", get.Err);
        Assert.Equal(0, CliRunner.Run("state", "set", "read-only", "codfw", "false", "--repo", repo, "--reason", "T1 done").ExitCode);
        var mismatches = JsonNode.Parse(CliRunner.Run("state", "get", "--repo", repo, "-o", "json").Out)!["clusterMismatches"]!.AsArray().Select(m => m!.GetValue<string>()).ToList();
        Assert.Equal(2, mismatches.Count);
        Assert.StartsWith("maintenance should run in codfw, but no active CronJob is there", mismatches[0], StringComparison.Ordinal);

        var reconcile = CliRunner.Run("maintenance", "reconcile", "--repo", repo);
        Assert.True(reconcile.ExitCode == 0, reconcile.Err + reconcile.Out);
        Assert.Empty(JsonNode.Parse(CliRunner.Run("state", "get", "--repo", repo, "-o", "json").Out)!["clusterMismatches"]!.AsArray());
    }
}
