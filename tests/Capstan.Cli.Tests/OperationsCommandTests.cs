using System.Text.Json.Nodes;

namespace Capstan.Cli.Tests;

/// <summary><c>switchover</c>, <c>mwscript</c> and <c>repl</c> end to end on a copy of the example farm.</summary>
public sealed class OperationsCommandTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task A_switchover_killed_after_the_read_only_step_is_finished_by_resume()
    {
        var repo = Farm("mw-cron", "mw-script", "mw-jobrunner");
        // Realistic pod timing: restarting the job runners takes seconds, so the kill lands inside the runbook.
        using var child = CliRunner.StartChild(
            new Dictionary<string, string> { ["CAPSTAN_LOCAL_TIMING"] = "realistic" },
            "switchover", "--repo", repo, "--from", "eqiad", "--to", "codfw", "--reason", "test", "--yes");
        await child.WaitForAsync("set-read-only: done", 90);
        await child.KillAsync();

        // Killed half-way: read-only, deploys locked, and a plain re-run is told to resume.
        var state = CliRunner.Run("state", "get", "--repo", repo, "-o", "json");
        Assert.Contains("switchover eqiad → codfw", state.Out, StringComparison.Ordinal);
        Assert.Equal(4, CliRunner.Run("deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug", "--yes").ExitCode);
        var again = CliRunner.Run("switchover", "--repo", repo, "--from", "eqiad", "--to", "codfw", "--reason", "test", "--yes");
        Assert.Equal(2, again.ExitCode);
        Assert.Contains("run 'capstan switchover --resume'", again.Err, StringComparison.Ordinal);

        var resumed = CliRunner.Run("switchover", "--repo", repo, "--resume", "-o", "json");
        Assert.True(resumed.ExitCode == 0, resumed.Err + resumed.Out);
        var summary = JsonNode.Parse(resumed.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1])!;
        Assert.True(summary["complete"]!.GetValue<bool>());
        Assert.Equal(["done", "done", "done", "done", "done", "done", "done", "done"], summary["steps"]!.AsArray().Select(s => s!["status"]!.GetValue<string>()));
        Assert.True(summary["readOnlySeconds"]!.GetValue<double>() > 0);

        var after = JsonNode.Parse(CliRunner.Run("state", "get", "--repo", repo, "-o", "json").Out)!;
        Assert.Equal("codfw", after["primary_dc"]!.GetValue<string>());
        Assert.True(after["maintenance_enabled"]!.GetValue<bool>());
        Assert.Equal(0, CliRunner.Run("deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug", "--yes").ExitCode);
    }

    [Fact]
    public void A_dry_run_lists_the_steps_and_changes_nothing_and_confirmation_is_required()
    {
        var repo = Farm("mw-cron");
        var dry = CliRunner.Run("switchover", "--repo", repo, "--from", "eqiad", "--to", "codfw", "--dry-run");
        Assert.True(dry.ExitCode == 0, dry.Err);
        Assert.Contains("4. switch-primary", dry.Out, StringComparison.Ordinal);
        Assert.Contains("primary_dc eqiad → codfw", dry.Out, StringComparison.Ordinal);
        Assert.Contains("delete CronJobs (0 in codfw, 6 in eqiad)", dry.Out, StringComparison.Ordinal);

        var unconfirmed = CliRunner.Run("switchover", "--repo", repo, "--from", "eqiad", "--to", "codfw", "--reason", "test");
        Assert.Equal(2, unconfirmed.ExitCode);
        Assert.Contains("pass --yes", unconfirmed.Err, StringComparison.Ordinal);
        var noReason = CliRunner.Run("switchover", "--repo", repo, "--from", "eqiad", "--to", "codfw", "--yes");
        Assert.Equal(2, noReason.ExitCode);
        var wrong = CliRunner.Run("switchover", "--repo", repo, "--from", "codfw", "--to", "eqiad", "--reason", "test", "--yes");
        Assert.Equal(2, wrong.ExitCode);
        Assert.Contains("the primary datacenter is eqiad, not codfw", wrong.Err, StringComparison.Ordinal);

        var state = JsonNode.Parse(CliRunner.Run("state", "get", "--repo", repo, "-o", "json").Out)!;
        Assert.Equal("eqiad", state["primary_dc"]!.GetValue<string>());
        Assert.True(state["maintenance_enabled"]!.GetValue<bool>());
        Assert.Equal(0, CliRunner.Run("diff", "--repo", repo, "--dc", "eqiad", "-n", "mw-cron").ExitCode);
    }

    [Fact]
    public void Mwscript_runs_in_the_primary_and_refuses_when_the_state_does_not_allow_it()
    {
        var repo = Farm("mw-script");
        var run = CliRunner.Run("mwscript", "--repo", repo, "-o", "json", "--wiki", "enwiki", "--follow", "purgeList.php", "--", "'; rm -rf /", "$(HOSTNAME)", "@file", "--all");
        Assert.True(run.ExitCode == 0, run.Err + run.Out);
        var started = JsonNode.Parse(run.Out.Split('\n')[0])!;
        Assert.Equal("eqiad", started["datacenter"]!.GetValue<string>());
        Assert.Equal(
            ["php", "/srv/mediawiki/multiversion/MWScript.php", "purgeList.php", "--wiki", "enwiki", "'; rm -rf /", "$(HOSTNAME)", "@file", "--all"],
            started["argv"]!.AsArray().Select(a => a!.GetValue<string>()));
        Assert.Contains("the script finished", run.Err, StringComparison.Ordinal);

        var secondary = CliRunner.Run("mwscript", "--repo", repo, "--dc", "codfw", "showJobs.php");
        Assert.Equal(5, secondary.ExitCode);
        Assert.Contains("codfw is not the primary datacenter (eqiad is)", secondary.Err, StringComparison.Ordinal);

        Assert.Equal(0, CliRunner.Run("maintenance", "disable", "--repo", repo, "--reason", "switchover", "--state-only").ExitCode);
        var refused = CliRunner.Run("mwscript", "--repo", repo, "showJobs.php", "--wiki", "enwiki");
        Assert.Equal(5, refused.ExitCode);
        Assert.Equal("capstan: not allowed: maintenance is disabled (switchover): maintenance scripts cannot run now\n", refused.Err);
        var skipped = CliRunner.Run("mwscript", "--repo", repo, "--skip-if-not-allowed", "showJobs.php", "--wiki", "enwiki");
        Assert.Equal(0, skipped.ExitCode);
        Assert.StartsWith("capstan: skipped: maintenance is disabled", skipped.Err, StringComparison.Ordinal);

        Assert.Equal(0, CliRunner.Run("maintenance", "enable", "--repo", repo, "--reason", "back", "--state-only").ExitCode);
        Assert.Equal(0, CliRunner.Run("state", "set", "read-only", "eqiad", "db switch", "--repo", repo, "--reason", "db", "--force").ExitCode);
        var readOnly = CliRunner.Run("mwscript", "--repo", repo, "showJobs.php", "--wiki", "enwiki");
        Assert.Equal(5, readOnly.ExitCode);
        Assert.Contains("eqiad is read-only (db switch)", readOnly.Err, StringComparison.Ordinal);

        // An unreadable state refuses too (fail closed), naming the store.
        var unreadable = CliRunner.Run("mwscript", "--repo", repo, "--state", "etcd://127.0.0.1:1", "showJobs.php", "--wiki", "enwiki");
        Assert.Equal(1, unreadable.ExitCode);
        Assert.Contains("127.0.0.1:1", unreadable.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void Repl_explains_its_usage_without_a_wiki_and_says_when_the_cluster_cannot_exec()
    {
        var usage = CliRunner.Run("repl", "--repo", CliRunner.ExampleFarm);
        Assert.Equal(2, usage.ExitCode);
        Assert.StartsWith("capstan: error: a wiki should be provided on the command line", usage.Err, StringComparison.Ordinal);
        Assert.Contains("Usage: capstan repl", usage.Err, StringComparison.Ordinal);

        var repo = Farm("mw-debug");
        var local = CliRunner.Run("repl", "--repo", repo, "enwiki");
        Assert.Equal(1, local.ExitCode);
        Assert.Contains("Finding a mw-debug pod in eqiad...", local.Err, StringComparison.Ordinal);
        Assert.Contains("there is no shell to enter", local.Err, StringComparison.Ordinal);
        Assert.Contains("-c mediawiki-pinkunicorn-app -- php /srv/mediawiki/multiversion/MWScript.php shell.php --wiki=enwiki", local.Err, StringComparison.Ordinal);
        var eval = CliRunner.Run("repl", "--repo", repo, "-e", "--wiki", "itwiki");
        Assert.Contains("eval.php --wiki=itwiki", eval.Err, StringComparison.Ordinal);
    }

    private string Farm(params string[] namespaces)
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        foreach (var ns in namespaces)
        {
            var deploy = CliRunner.Run("deploy", "--repo", repo, "-n", ns, "--yes");
            Assert.True(deploy.ExitCode == 0, deploy.Err + deploy.Out);
        }

        return repo;
    }
}
