namespace Capstan.Cli.Tests;

/// <summary><c>capstan env</c> on a copy of the example farm and its embedded cluster.</summary>
public sealed class EnvCommandTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void An_environment_is_created_listed_shown_refused_to_others_and_deleted()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        Directory.CreateDirectory(Path.Combine(repo, "environments"));
        Testing.FarmCopy.WriteEnvironmentSecrets(repo, "alice-test");

        var missing = CliRunner.Run("env", "create", "alice-test", "--repo", repo, "--purpose", "feature", "--expires", "7d", "--group", "mw-web");
        Assert.Equal(2, missing.ExitCode);
        Assert.EndsWith("capstan: error: an environment needs an owner (--owner): who answers for it; a feature environment needs a link to its task or patch (--link URL)\n", missing.Err, StringComparison.Ordinal);

        var created = CliRunner.Run("env", "create", "alice-test", "--repo", repo, "--purpose", "feature", "--expires", "7d", "--owner", "alice", "--actor", "alice",
            "--link", "https://phabricator.example/T1", "--group", "mw-web", "-o", "json");
        Assert.True(created.ExitCode == 0, created.Err);
        Assert.Contains("\"owner\": \"alice\"", created.Out, StringComparison.Ordinal);
        Assert.Contains("eqiad/alice-test--mw-web/main: done (revision 1)", created.Err, StringComparison.Ordinal);
        Assert.Contains("\"mw-web\": \"https://alice-test.mw-web.env.wikifarm.example/\"", created.Out, StringComparison.Ordinal);

        var list = CliRunner.Run("env", "list", "--repo", repo);
        Assert.Equal(0, list.ExitCode);
        Assert.Matches(@"alice-test\s+alice\s+feature\s+\d+m\s+6d23h\s+6/6\s+\d+\s+production's\s+eqiad\s+mw-web\s+follows\s+awake", list.Out);
        Assert.Contains("https://alice-test.mw-web.env.wikifarm.example/", list.Out, StringComparison.Ordinal);
        var show = CliRunner.Run("env", "show", "alice-test", "--repo", repo).Out;
        Assert.Contains("url (mw-web): https://alice-test.mw-web.env.wikifarm.example/", show, StringComparison.Ordinal);
        Assert.Contains("namespaces: eqiad/alice-test--mw-web, eqiad/alice-test--backends", show, StringComparison.Ordinal);
        Assert.Contains("backends: memcached own, redis own, mathoid shared:staging,", show, StringComparison.Ordinal);
        Assert.DoesNotContain("behind", show, StringComparison.Ordinal);

        // Production moves to a new image: the environment, which follows it, is behind until refreshed, by its owner or with --force.
        var images = Path.Combine(repo, "deploy", "images", "default.yaml");
        File.WriteAllText(images, File.ReadAllText(images).Replace("083015-publish", "101500-publish", StringComparison.Ordinal));
        CliRunner.Publish(repo, "docker-registry.wikifarm.example/restricted/mediawiki-multiversion:2026-11-20-101500-publish");
        Assert.Matches(@"alice-test\s.*\sfollows, behind\s+awake", CliRunner.Run("env", "list", "--repo", repo).Out);
        Assert.Contains("behind: eqiad/mw-web/main: container mediawiki-main-app runs docker-registry.wikifarm.example/restricted/mediawiki-multiversion:2026-11-20-083015-publish; the repo now gives docker-registry.wikifarm.example/restricted/mediawiki-multiversion:2026-11-20-101500-publish",
            CliRunner.Run("env", "show", "alice-test", "--repo", repo).Out, StringComparison.Ordinal);
        var notBobs = CliRunner.Run("env", "refresh", "alice-test", "--repo", repo, "--actor", "bob");
        Assert.Equal(2, notBobs.ExitCode);
        Assert.Contains("to refresh it as bob, add --force (recorded in its history)", notBobs.Err, StringComparison.Ordinal);
        var refreshed = CliRunner.Run("env", "refresh", "--all-behind", "--repo", repo, "--actor", "bob");
        Assert.True(refreshed.ExitCode == 0, refreshed.Err);
        Assert.Equal("alice-test: refreshed, 1 release changed\n", refreshed.Out);
        Assert.Contains("bob: refresh (behind the repo) (forced)", CliRunner.Run("env", "show", "alice-test", "--repo", repo, "--no-health").Out, StringComparison.Ordinal);
        Assert.Matches(@"alice-test\s.*\sfollows\s+awake", CliRunner.Run("env", "list", "--repo", repo).Out);
        Assert.Equal("alice-test: up to date with the repo\n", CliRunner.Run("env", "refresh", "--all-behind", "--repo", repo, "--actor", "bob").Out);

        // --environment names a test environment for status, history and rollback: its own revisions, in its namespaces.
        Assert.Matches(@"eqiad/alice-test--mw-web/main\s+2\s+Synced\s+Healthy\s+1/1", CliRunner.Run("status", "--repo", repo, "--environment", "alice-test").Out);
        Assert.Contains("eqiad/alice-test--mw-web/main         1          superseded", CliRunner.Run("history", "--repo", repo, "--environment", "alice-test", "-n", "mw-web").Out, StringComparison.Ordinal);
        var rolledBack = CliRunner.Run("rollback", "eqiad/mw-web/main", "--repo", repo, "--environment", "alice-test", "--reason", "the new image breaks search", "--yes", "--actor", "alice");
        Assert.True(rolledBack.ExitCode == 0, rolledBack.Err);
        Assert.Contains("eqiad/alice-test--mw-web/main   deployed   3", rolledBack.Out, StringComparison.Ordinal);
        Assert.Contains("083015-publish", CliRunner.Run("status", "--repo", repo, "--environment", "alice-test", "-n", "mw-web", "-r", "main").Out, StringComparison.Ordinal);
        Assert.Contains("behind: eqiad/mw-web/main: container mediawiki-main-app runs docker-registry.wikifarm.example/restricted/mediawiki-multiversion:2026-11-20-083015-publish;",
            CliRunner.Run("env", "show", "alice-test", "--repo", repo).Out, StringComparison.Ordinal);

        var tooFar = CliRunner.Run("env", "extend", "alice-test", "--repo", repo, "--by", "30d", "--actor", "alice");
        Assert.Equal(2, tooFar.ExitCode);
        Assert.Contains("a feature environment lives at most 30 days;", tooFar.Err, StringComparison.Ordinal);
        var extended = CliRunner.Run("env", "extend", "alice-test", "--repo", repo, "--by", "7d", "--actor", "alice");
        Assert.True(extended.ExitCode == 0, extended.Err);
        Assert.StartsWith("environment alice-test now expires ", extended.Out, StringComparison.Ordinal);
        Assert.Matches(@"alice-test\s+alice\s+feature\s+\d+m\s+13d23h", CliRunner.Run("env", "list", "--repo", repo, "--no-health").Out);

        var refused = CliRunner.Run("env", "delete", "alice-test", "--repo", repo, "--yes", "--actor", "bob");
        Assert.Equal(2, refused.ExitCode);
        Assert.Equal("capstan: error: environment 'alice-test' belongs to alice; to delete it as bob, add --force (recorded)\n", refused.Err);

        var unconfirmed = CliRunner.Run("env", "delete", "alice-test", "--repo", repo, "--actor", "alice");
        Assert.Equal(2, unconfirmed.ExitCode);
        Assert.Equal("capstan: error: stdin is not a terminal, so nobody can confirm: pass --yes to delete environment alice-test\n", unconfirmed.Err);
        var deleted = CliRunner.Run("env", "delete", "alice-test", "--repo", repo, "--yes", "--actor", "alice");
        Assert.Equal(0, deleted.ExitCode);
        Assert.Equal("environment alice-test is deleted: its namespaces are gone\n", deleted.Out);
        Assert.Equal("[]\n", CliRunner.Run("env", "list", "--repo", repo, "-o", "json").Out);
    }

    [Fact]
    public void An_environment_from_a_developers_tree_runs_an_image_of_it_and_a_refresh_rebuilds_it()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        var tree = Path.Combine(_temp.Path, "alice-src");
        Testing.FarmCopy.To(Path.Combine(repo, "code", "php-1.44"), tree);
        File.AppendAllText(Path.Combine(tree, "index.php"), "// search ranking change, first try\n");
        Assert.Equal(0, CliRunner.Run("env", "secrets", "init", "dev-tree", "--repo", repo).ExitCode);

        var created = CliRunner.Run("env", "create", "dev-tree", "--repo", repo, "--purpose", "ci", "--expires", "12h", "--owner", "alice", "--actor", "alice",
            "--group", "mw-debug", "--source", $"php-1.44={tree}", "-o", "json");
        Assert.True(created.ExitCode == 0, created.Err);
        Assert.Contains("capstan: image: built sha256:", created.Err, StringComparison.Ordinal);
        var image = System.Text.Json.Nodes.JsonNode.Parse(created.Out)!["image"]!.GetValue<string>();
        Assert.StartsWith("capstan.local/mediawiki:env-dev-tree-", image, StringComparison.Ordinal);
        Assert.Contains($"built from: php-1.44={tree}", CliRunner.Run("env", "show", "dev-tree", "--repo", repo, "--no-health").Out, StringComparison.Ordinal);

        // The pods run that image, and the image holds the developer's file as it was.
        Assert.Contains(image, CliRunner.Run("status", "--repo", repo, "--environment", "dev-tree", "-n", "mw-debug").Out, StringComparison.Ordinal);
        Assert.Contains("first try", IndexPhp(repo, image), StringComparison.Ordinal);

        // A refresh rebuilds from the same tree, and the environment then runs the change.
        File.AppendAllText(Path.Combine(tree, "index.php"), "// second try\n");
        var refreshed = CliRunner.Run("env", "refresh", "dev-tree", "--repo", repo, "--actor", "alice");
        Assert.True(refreshed.ExitCode == 0, refreshed.Err);
        var rebuilt = System.Text.Json.Nodes.JsonNode.Parse(CliRunner.Run("env", "show", "dev-tree", "--repo", repo, "--no-health", "-o", "json").Out)!["image"]!.GetValue<string>();
        Assert.NotEqual(image, rebuilt);
        Assert.Contains("second try", IndexPhp(repo, rebuilt), StringComparison.Ordinal);
        Assert.Contains(rebuilt, CliRunner.Run("status", "--repo", repo, "--environment", "dev-tree", "-n", "mw-debug").Out, StringComparison.Ordinal);
    }

    /// <summary>The index.php of php-1.44 in an image of the farm's layout, unpacked as a node would (capstan image prep).</summary>
    private string IndexPhp(string repo, string image)
    {
        var tag = image[(image.IndexOf(':', StringComparison.Ordinal) + 1)..image.IndexOf('@', StringComparison.Ordinal)];
        var into = Path.Combine(_temp.Path, "prep-" + tag);
        var prep = CliRunner.Run("image", "prep", $"oci-layout://{Path.Combine(repo, ".capstan", "images")}:{tag}", "--repo", repo, "--into", into);
        Assert.True(prep.ExitCode == 0, prep.Err);
        return File.ReadAllText(Directory.EnumerateFiles(into, "index.php", SearchOption.AllDirectories).Single(f => f.Contains("php-1.44", StringComparison.Ordinal)));
    }

    [Fact]
    public void A_two_datacenter_environment_has_its_own_state_and_runs_a_live_test_switchover_inside_itself_without_touching_production()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        Directory.CreateDirectory(Path.Combine(repo, "environments"));
        Testing.FarmCopy.WriteEnvironmentSecrets(repo, "rehearsal");
        Assert.Equal(0, CliRunner.Run("state", "init", "--repo", repo, "--primary-dc", "eqiad", "--reason", "first state", "--actor", "ops").ExitCode);

        var created = CliRunner.Run("env", "create", "rehearsal", "--repo", repo, "--purpose", "ci", "--expires", "12h", "--owner", "alice", "--actor", "alice",
            "--dc", "eqiad", "--dc", "codfw", "--group", "mw-web", "--group", "mw-cron", "--set", "php.workers=3");
        Assert.True(created.ExitCode == 0, created.Err);
        Assert.Contains("eqiad/rehearsal--mw-web/main: done", created.Err, StringComparison.Ordinal);
        Assert.Contains("codfw/rehearsal--mw-web/main: done", created.Err, StringComparison.Ordinal);
        Assert.Contains("rehearsal is ready in eqiad/rehearsal--mw-web, eqiad/rehearsal--mw-cron, codfw/rehearsal--mw-web, codfw/rehearsal--mw-cron", created.Out, StringComparison.Ordinal);

        var production = CliRunner.Run("state", "history", "--repo", repo, "-o", "json").Out;
        var cloned = CliRunner.Run("state", "get", "--repo", repo, "--environment", "rehearsal");
        Assert.True(cloned.ExitCode == 0, cloned.Err);
        Assert.Matches(@"primary_dc\s+eqiad", cloned.Out);

        // The whole runbook runs inside the environment: its state, its lock, its namespaces.
        var live = CliRunner.Run("switchover", "--live-test", "--environment", "rehearsal", "--repo", repo, "--yes", "--reason", "rehearse the runbook", "--actor", "alice");
        Assert.True(live.ExitCode == 0, live.Err);
        var history = CliRunner.Run("state", "history", "--repo", repo, "--environment", "rehearsal");
        Assert.Contains("cloned from production's state", history.Out, StringComparison.Ordinal);
        Assert.Contains("read_only", history.Out, StringComparison.Ordinal);
        Assert.Equal(production, CliRunner.Run("state", "history", "--repo", repo, "-o", "json").Out);

        // Maintenance inside the environment is its own too, and drift says so next to the --set value.
        // The environment's CronJobs, in its primary only, go and come back with its own maintenance switch.
        var disabled = CliRunner.Run("maintenance", "disable", "--environment", "rehearsal", "--repo", repo, "--reason", "quiet", "--actor", "alice", "-o", "json");
        Assert.True(disabled.ExitCode == 0, disabled.Err);
        // An environment keeps its CronJobs in its primary, suspended while its maintenance is off.
        Assert.Matches("\"datacenter\":\"eqiad\",\"cronJobs\":[1-9],\"activeCronJobs\":0", disabled.Out);
        var enabled = CliRunner.Run("maintenance", "enable", "--environment", "rehearsal", "--repo", repo, "--reason", "back", "--actor", "alice", "-o", "json");
        Assert.True(enabled.ExitCode == 0, enabled.Err);
        Assert.Matches("\"datacenter\":\"eqiad\",\"cronJobs\":[1-9],\"activeCronJobs\":[1-9]", enabled.Out);
        Assert.Contains("\"datacenter\":\"codfw\",\"cronJobs\":0", enabled.Out, StringComparison.Ordinal);
        Assert.Equal(0, CliRunner.Run("maintenance", "disable", "--environment", "rehearsal", "--repo", repo, "--reason", "quiet", "--actor", "alice").ExitCode);
        Assert.Matches(@"maintenance_enabled\s+true", CliRunner.Run("state", "get", "--repo", repo).Out);
        var drift = CliRunner.Run("env", "drift", "rehearsal", "--repo", repo);
        Assert.True(drift.ExitCode == 0, drift.Err);
        Assert.Contains("dynamic state: maintenance_enabled is false here, true in production", drift.Out, StringComparison.Ordinal);
        Assert.Matches(@"mw-web/main in eqiad\s+php\.workers\s+3\s+\(--set php\.workers\):1:\d+\s+12\s+values/mw-web\.yaml:3:12", drift.Out);

        var unknown = CliRunner.Run("state", "get", "--repo", repo, "--environment", "nosuch");
        Assert.Equal(2, unknown.ExitCode);
        Assert.Equal("capstan: error: there is no test environment 'nosuch' ('capstan env list' shows them)\n", unknown.Err);

        Assert.Equal(0, CliRunner.Run("env", "delete", "rehearsal", "--repo", repo, "--yes", "--actor", "alice").ExitCode);
        Assert.Equal(2, CliRunner.Run("state", "get", "--repo", repo, "--environment", "rehearsal").ExitCode);
    }
}
