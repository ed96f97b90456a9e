using System.Text.Json.Nodes;

namespace Capstan.Cli.Tests;

/// <summary>The deploy commands end to end on a copy of the example farm and its local clusters.</summary>
public sealed class DeployCommandTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void Without_a_terminal_deploy_needs_yes_and_changes_nothing()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        var result = CliRunner.Run("deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug");
        Assert.Equal(2, result.ExitCode);
        Assert.Equal("capstan: error: stdin is not a terminal, so nobody can confirm: pass --yes to deploy\n", result.Err);
        Assert.Contains("plan ", result.Out, StringComparison.Ordinal);
        var status = CliRunner.Run("status", "--repo", repo, "--dc", "eqiad");
        Assert.Equal("no release has been deployed\n", status.Out);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void Deploy_then_diff_status_and_history()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        var dryRun = CliRunner.Run("deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug", "--dry-run");
        Assert.Equal(0, dryRun.ExitCode);
        Assert.Contains("dry run: nothing was applied", dryRun.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("trace:", dryRun.Err, StringComparison.Ordinal);

        // Where a plan's time goes, logged on stderr when asked.
        var traced = CliRunner.Run(new Dictionary<string, string> { ["CAPSTAN_TRACE"] = "1" }, "deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug", "--dry-run");
        Assert.Equal(0, traced.ExitCode);
        Assert.Matches(@"capstan: deploy: trace: render \d+ releases: \d+ ms\n", traced.Err);
        Assert.Matches(@"capstan: deploy: trace: plan: \d+ ms\n", traced.Err);

        var deploy = CliRunner.Run("deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug", "--yes", "--reason", "first");
        Assert.True(deploy.ExitCode == 0, deploy.Err + deploy.Out);
        Assert.Matches(@"eqiad/mw-debug/pinkunicorn\s+deployed\s+1\s", deploy.Out);

        var clean = CliRunner.Run("diff", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug");
        Assert.Equal(0, clean.ExitCode);

        File.WriteAllText(Path.Combine(repo, "groups", "mw-debug.yaml"), File.ReadAllText(Path.Combine(repo, "groups", "mw-debug.yaml")).Replace("replicas: 2", "replicas: 4", StringComparison.Ordinal));
        var diff = CliRunner.Run("diff", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug");
        Assert.Equal(2, diff.ExitCode);
        Assert.Contains("-  replicas: 2\n+  replicas: 4\n", diff.Out, StringComparison.Ordinal);

        // A changed secret shows as a changed fingerprint under the repo's key (0600), never as the value or a plain hash.
        var secrets = Path.Combine(repo, "private", "secrets.yaml");
        var original = File.ReadAllText(secrets);
        File.WriteAllText(secrets, original.Replace("example-not-a-real-password", "rotated-password-4711", StringComparison.Ordinal));
        var secretDiff = CliRunner.Run("diff", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug");
        File.WriteAllText(secrets, original);
        var guess = Convert.ToBase64String("rotated-password-4711"u8);
        Assert.DoesNotContain(guess, secretDiff.Out, StringComparison.Ordinal);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(repo, ".capstan", Core.Security.MaskKey.FileName)));
        var fingerprints = System.Text.RegularExpressions.Regex.Matches(secretDiff.Out, @"^\+.*(<masked hmac:[0-9a-f]{16}>)", System.Text.RegularExpressions.RegexOptions.Multiline)
            .Select(m => m.Groups[1].Value).ToList();
        Assert.NotEmpty(fingerprints);
        Assert.Contains("-  PrivateSettings.php: <masked hmac:", secretDiff.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("sha256", secretDiff.Out, StringComparison.Ordinal);

        Assert.Equal(0, CliRunner.Run("deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug", "--yes", "--reason", "more debug servers").ExitCode);
        var status = CliRunner.Run("status", "--repo", repo, "--dc", "eqiad", "-o", "json");
        Assert.Matches("\"ready\": 4,\\s*\"desired\": 4,", status.Out);
        var history = CliRunner.Run("history", "--repo", repo, "--dc", "eqiad", "-r", "pinkunicorn");
        Assert.Contains("more debug servers", history.Out, StringComparison.Ordinal);
        Assert.Contains("superseded", history.Out, StringComparison.Ordinal);

        var rollback = CliRunner.Run("rollback", "eqiad/mw-debug/pinkunicorn", "--repo", repo, "--yes", "--reason", "back");
        Assert.True(rollback.ExitCode == 0, rollback.Err + rollback.Out);
        var after = CliRunner.Run("status", "--repo", repo, "--dc", "eqiad", "-o", "json");
        Assert.Matches("\"ready\": 2,\\s*\"desired\": 2,", after.Out);
    }

    [Fact(Timeout = 600_000)]
    public async Task Returning_to_an_earlier_pod_template_finishes_by_rollback_or_by_reverting_a_values_edit()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        var values = Path.Combine(repo, "values", "mw-debug.yaml");
        var original = File.ReadAllText(values);
        var edited = original.Replace("workers: 4", "workers: 8", StringComparison.Ordinal);
        Assert.NotEqual(original, edited);
        string[] deploy = ["deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug", "--yes", "--reason", "test"];
        async Task<CliRunner.Result> RunAsync(params string[] args)
        {
            var result = await Task.Run(() => CliRunner.Run(args));
            Assert.True(result.ExitCode == 0, $"{string.Join(' ', args)}: {result.Err}{result.Out}");
            return result;
        }

        await RunAsync(deploy);
        File.WriteAllText(values, edited);
        await RunAsync(deploy);

        // Rollback to revision 1 returns the Deployment to its first pod template (and ReplicaSet).
        await RunAsync("rollback", "eqiad/mw-debug/pinkunicorn", "--repo", repo, "--yes", "--reason", "back");
        var history = await RunAsync("history", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug", "-r", "pinkunicorn", "-o", "json");
        Assert.Matches("\"revision\": 3,[^}]*\"status\": \"deployed\"", history.Out);
        Assert.Equal(2, (await Task.Run(() => CliRunner.Run("diff", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug")).ConfigureAwait(true)).ExitCode);

        // The values edit again (the second template) is the revision the rollback holds: it is refused, naming the
        // release, until the hold is lifted; then reverted (the first): both finish, and nothing is left to do.
        var held = await Task.Run(() => CliRunner.Run(deploy));
        Assert.Equal(5, held.ExitCode);
        Assert.Contains("eqiad/mw-debug/pinkunicorn is held:", held.Err, StringComparison.Ordinal);
        await RunAsync([.. deploy[..^1], "workers are fine after all", "--release-hold", "eqiad/mw-debug/pinkunicorn"]);
        File.WriteAllText(values, original);
        await RunAsync(deploy);
        var diff = await Task.Run(() => CliRunner.Run("diff", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug"));
        Assert.True(diff.ExitCode == 0, diff.Out + diff.Err);
        var status = await RunAsync("status", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug", "-o", "json");
        Assert.Matches("\"ready\": 2,\\s*\"desired\": 2,", status.Out);
        Assert.Contains("\"revision\": 5", status.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void A_rolled_back_image_is_held_until_the_repo_stops_naming_it_or_the_hold_is_lifted()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        string[] deploy = ["deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-web", "--yes", "--reason"];
        Assert.Equal(0, CliRunner.Run([.. deploy, "first"]).ExitCode);
        var images = Path.Combine(repo, "deploy", "images", "default.yaml");
        var good = File.ReadAllText(images);
        File.WriteAllText(images, good.Replace("083015-publish", "101500-publish", StringComparison.Ordinal));
        CliRunner.Publish(repo, "docker-registry.wikifarm.example/restricted/mediawiki-multiversion:2026-11-20-101500-publish");
        Assert.Equal(0, CliRunner.Run([.. deploy, "T123 search ranking"]).ExitCode);

        var rollback = CliRunner.Run("rollback", "eqiad/mw-web/main", "--repo", repo, "--yes", "--reason", "T123 broke search", "--actor", "alice");
        Assert.True(rollback.ExitCode == 0, rollback.Err);
        Assert.Contains("eqiad/mw-web/main is held at revision 2's image", rollback.Err, StringComparison.Ordinal);
        var history = CliRunner.Run("history", "--repo", repo, "--dc", "eqiad", "-n", "mw-web", "-r", "main").Out;
        Assert.Matches(@"eqiad/mw-web/main\s+2\s+superseded.*2026-11-20-101500-publish\s+T123 search ranking", history);
        Assert.Matches(@"eqiad/mw-web/main\s+3\s+deployed.*2026-11-20-083015-publish\s+rollback to revision 1", history);

        // An unrelated deploy of mw-web would apply the bad image again: refused before anything is applied, naming the file and line.
        var refused = CliRunner.Run([.. deploy, "unrelated"]);
        Assert.Equal(5, refused.ExitCode);
        Assert.Contains("eqiad/mw-web/main is held: alice rolled back docker-registry.wikifarm.example/restricted/mediawiki-multiversion:2026-11-20-101500-publish", refused.Err, StringComparison.Ordinal);
        Assert.Contains("(T123 broke search); this deploy would apply it again: the repo still names it at deploy/images/default.yaml:3:", refused.Err, StringComparison.Ordinal);
        Assert.Contains("deploy with --release-hold eqiad/mw-web/main --reason", refused.Err, StringComparison.Ordinal);
        var status = CliRunner.Run("status", "--repo", repo, "--dc", "eqiad", "-n", "mw-web").Out;
        Assert.Matches(@"eqiad/mw-web/main\s+3\s", status);
        Assert.Contains("held: eqiad/mw-web/main is held: alice rolled back", status, StringComparison.Ordinal);

        // A diff says it too, and changes nothing.
        Assert.Contains("eqiad/mw-web/main is held", CliRunner.Run("diff", "--repo", repo, "--dc", "eqiad", "-n", "mw-web").Err, StringComparison.Ordinal);

        // Lifting the hold is deliberate and recorded.
        Assert.Equal(2, CliRunner.Run("deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-web", "--yes", "--release-hold", "eqiad/mw-web/main").ExitCode);
        var lifted = CliRunner.Run([.. deploy, "T123 fixed in the config instead", "--release-hold", "eqiad/mw-web/main"]);
        Assert.True(lifted.ExitCode == 0, lifted.Err);
        Assert.Contains("the hold of eqiad/mw-web/main is lifted", lifted.Err, StringComparison.Ordinal);
        Assert.Contains("(lifts the hold of eqiad/mw-web/main)", CliRunner.Run("history", "--repo", repo, "--dc", "eqiad", "-n", "mw-web", "-r", "main").Out, StringComparison.Ordinal);
        Assert.DoesNotContain("held:", CliRunner.Run("status", "--repo", repo, "--dc", "eqiad", "-n", "mw-web").Out, StringComparison.Ordinal);
    }

    [Fact]
    public void A_whole_plan_is_rolled_back_newest_stage_first_and_every_release_it_changed_is_held()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        string[] deploy = ["deploy", "--repo", repo, "--dc", "eqiad", "--yes", "--reason"];
        Assert.Equal(0, CliRunner.Run("deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-web", "--yes", "--reason", "first").ExitCode);
        Assert.Equal(0, CliRunner.Run("deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug", "--yes", "--reason", "first").ExitCode);

        // One plan through all three stages: the test servers, the canary, production (past the example's gate, which
        // needs a Prometheus: the gates' own tests judge it).
        var images = Path.Combine(repo, "deploy", "images", "default.yaml");
        File.WriteAllText(images, File.ReadAllText(images).Replace("083015-publish", "101500-publish", StringComparison.Ordinal));
        var canary = Path.Combine(repo, "deploy", "images", "mw-web", "canary.yaml");
        File.WriteAllText(canary, File.ReadAllText(canary).Replace("2026-11-21-101204-publish", "2026-11-20-101500-publish", StringComparison.Ordinal));
        CliRunner.Publish(repo, "docker-registry.wikifarm.example/restricted/mediawiki-multiversion:2026-11-20-101500-publish");
        var train = CliRunner.Run([.. deploy, "train", "-o", "json", "--skip-gates"]);
        Assert.True(train.ExitCode == 0, train.Err);
        var planId = System.Text.Json.Nodes.JsonNode.Parse(train.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1])!["plan"]!.GetValue<string>();

        var rollback = CliRunner.Run("rollback", "--plan", planId, "--repo", repo, "--yes", "--reason", "the train breaks search", "--actor", "alice");
        Assert.True(rollback.ExitCode == 0, rollback.Err);
        var order = new[] { "eqiad/mw-web/main ", "eqiad/mw-web/canary ", "eqiad/mw-debug/pinkunicorn " }.Select(r => rollback.Out.IndexOf(r + "  ", StringComparison.Ordinal)).ToList();
        Assert.All(order, i => Assert.True(i >= 0, rollback.Out));
        Assert.Equal(order.Order().ToList(), order);
        var status = CliRunner.Run("status", "--repo", repo, "--dc", "eqiad").Out;
        Assert.Equal(3, status.Split('\n').Count(l => l.StartsWith("held: ", StringComparison.Ordinal)));
        Assert.DoesNotContain("101500-publish  ", status, StringComparison.Ordinal);

        // The repo still names the train's image: the next deploy is refused for every held release.
        var refused = CliRunner.Run([.. deploy, "unrelated"]);
        Assert.Equal(5, refused.ExitCode);
        Assert.All(["eqiad/mw-debug/pinkunicorn", "eqiad/mw-web/canary", "eqiad/mw-web/main"], r => Assert.Contains($"--release-hold {r}", refused.Err, StringComparison.Ordinal));
        Assert.Equal(2, CliRunner.Run("rollback", "--last", "eqiad/mw-web/main", "--repo", repo, "--yes", "--reason", "x").ExitCode);
    }

    [Fact]
    public void A_wiped_state_store_is_not_re_seeded_by_a_deploy_of_cron_releases_deployed_before()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        var dryRun = CliRunner.Run("deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-cron", "--dry-run");
        Assert.Equal(0, dryRun.ExitCode);
        Assert.Contains("is empty; using the state-seed state.yaml", dryRun.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("state-seed", CliRunner.Run("state", "history", "--repo", repo).Out, StringComparison.Ordinal);

        var deploy = CliRunner.Run("deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-cron", "--yes", "--reason", "first");
        Assert.True(deploy.ExitCode == 0, deploy.Err);
        Assert.Contains("was empty: initialised it from the state-seed state.yaml", deploy.Err, StringComparison.Ordinal);
        Assert.Equal(0, CliRunner.Run("state", "set", "primary-dc", "codfw", "--repo", repo, "--reason", "switchover", "--force").ExitCode);

        Directory.Delete(Path.Combine(repo, ".capstan", "state"), recursive: true);
        foreach (var args in new[] { new[] { "--dry-run" }, ["--yes", "--reason", "again"] })
        {
            var again = CliRunner.Run(["deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-cron", .. args]);
            Assert.Equal(1, again.ExitCode);
            Assert.Contains("runs revision 1 that Capstan deployed with a state: the dynamic state existed and vanished, so it is not re-seeded", again.Err, StringComparison.Ordinal);
        }

        Assert.DoesNotContain("state-seed", CliRunner.Run("state", "history", "--repo", repo).Out, StringComparison.Ordinal);
    }

    [Fact(Timeout = 300_000)]
    public async Task Interrupting_a_deploy_says_how_to_resume_it_and_the_same_command_does()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        string[] deploy = ["deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug", "--include-needs", "--yes", "--reason", "test"];
        using var cts = new CancellationTokenSource();
        var (running, output, errors) = CliRunner.Start(new Dictionary<string, string> { ["CAPSTAN_LOCAL_TIMING"] = "realistic" }, cts.Token, deploy);
        while (!output().Contains("waiting for the new revision", StringComparison.Ordinal) && !running.IsCompleted)
        {
            await Task.Delay(20);
        }

        await cts.CancelAsync();
        Assert.Equal(130, await running);
        var plan = System.Text.RegularExpressions.Regex.Match(output(), "plan (\\S+):").Groups[1].Value;
        Assert.Contains($"capstan: interrupted: plan {plan} stopped part-way; run the same command again to resume it", errors(), StringComparison.Ordinal);

        var again = await Task.Run(() => CliRunner.Run(deploy));
        Assert.True(again.ExitCode == 0, again.Err + again.Out);
        Assert.Contains($"the previous deploy {plan} by", again.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void Status_history_diff_rollback_and_maintenance_take_the_options_a_user_tries()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        Assert.Equal(0, CliRunner.Run("deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug", "--yes").ExitCode);
        var history = CliRunner.Run("history", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug", "-r", "pinkunicorn", "-o", "json");
        Assert.Equal("no reason given", JsonNode.Parse(history.Out)![0]!["reason"]!.GetValue<string>());

        var status = CliRunner.Run("status", "--repo", repo, "-r", "pinkunicorn", "-o", "json");
        Assert.Equal(0, status.ExitCode);
        var rows = JsonNode.Parse(status.Out)!["releases"]!.AsArray();
        Assert.Equal("eqiad/mw-debug/pinkunicorn", Assert.Single(rows)!["release"]!.GetValue<string>());
        Assert.Equal(2, rows[0]!["ready"]!.GetValue<int>());
        Assert.Equal(2, rows[0]!["desired"]!.GetValue<int>());

        var unknown = CliRunner.Run("history", "--repo", repo, "-r", "nosuch");
        Assert.Equal(2, unknown.ExitCode);
        Assert.StartsWith("capstan: error: unknown release 'nosuch' (allowed: ", unknown.Err, StringComparison.Ordinal);
        Assert.Equal(2, CliRunner.Run("status", "--repo", repo, "-r", "nosuch").ExitCode);

        var noReason = CliRunner.Run("rollback", "eqiad/mw-debug/pinkunicorn", "--repo", repo, "--yes");
        Assert.Equal(2, noReason.ExitCode);
        Assert.Equal("capstan: error: --reason is required: a rollback records why\n", noReason.Err);

        File.WriteAllText(Path.Combine(repo, "groups", "mw-debug.yaml"), File.ReadAllText(Path.Combine(repo, "groups", "mw-debug.yaml")).Replace("replicas: 2", "replicas: 3", StringComparison.Ordinal));
        var diff = CliRunner.Run("diff", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug", "-o", "json");
        Assert.Equal(2, diff.ExitCode);
        var change = Assert.Single(JsonNode.Parse(diff.Out)!["objects"]!.AsArray())!;
        Assert.Equal("update", change["change"]!.GetValue<string>());
        Assert.Contains("-  replicas: 2\n+  replicas: 3\n", change["diff"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(0, CliRunner.Run("deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug", "--yes", "--reason", "three").ExitCode);

        var rollback = CliRunner.Run("rollback", "eqiad/mw-debug/pinkunicorn", "--repo", repo, "--yes", "--reason", "two was enough", "-o", "json");
        Assert.True(rollback.ExitCode == 0, rollback.Err);
        var result = JsonNode.Parse(rollback.Out.TrimEnd('\n').Split('\n')[^1])!;
        Assert.True(result["succeeded"]!.GetValue<bool>());
        Assert.Equal(3, result["releases"]![0]!["revision"]!.GetValue<int>());

        var disable = CliRunner.Run("maintenance", "disable", "--repo", repo, "--reason", "drill", "-o", "json");
        Assert.True(disable.ExitCode == 0, disable.Err);
        var gate = JsonNode.Parse(disable.Out.TrimEnd('\n').Split('\n')[^1])!;
        Assert.False(gate["maintenance_enabled"]!.GetValue<bool>());
        Assert.Equal(["eqiad", "codfw"], gate["datacenters"]!.AsArray().Select(d => d!["datacenter"]!.GetValue<string>()).Order(StringComparer.Ordinal).Reverse());
        Assert.All(gate["datacenters"]!.AsArray(), d => Assert.Equal(0, d!["cronJobs"]!.GetValue<int>()));
    }

    [Fact]
    public void A_locked_farm_refuses_deploys_with_the_holder()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        Assert.Equal(0, CliRunner.Run("lock", "--repo", repo, "--reason", "switchover in progress", "--actor", "carol").ExitCode);
        var deploy = CliRunner.Run("deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug", "--yes");
        Assert.Equal(4, deploy.ExitCode);
        Assert.Contains("deploys are locked by carol (operator lock)", deploy.Err, StringComparison.Ordinal);
        Assert.Contains("switchover in progress", deploy.Err, StringComparison.Ordinal);
        Assert.Equal(0, CliRunner.Run("unlock", "--repo", repo, "--reason", "done").ExitCode);
        Assert.Equal(0, CliRunner.Run("deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug", "--yes").ExitCode);
    }

    [Theory]
    [InlineData("garbage", "it is not a lock Capstan wrote")]
    [InlineData("{\"actor\":1}", "it is not a lock Capstan wrote")]
    [InlineData("{\"host\":\"x\"}", "it names no actor")]
    public async Task An_unreadable_lock_is_named_with_its_key_and_the_repair_and_only_force_replaces_it(string value, string why)
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        await using (var store = State.StateStoreAddress.Open("file://.capstan/state", repo))
        {
            await store.CommitAsync(new State.StoreTxn([], [new State.StoreOp.Put("wikifarm/deploy-lock", value)]), default);
        }

        foreach (var args in new[] { new[] { "unlock", "--reason", "stuck" }, ["lock", "--reason", "mine now"], ["deploy", "--dc", "eqiad", "-n", "mw-debug", "--yes"] })
        {
            var refused = CliRunner.Run([.. args, "--repo", repo]);
            Assert.True(refused.ExitCode == 1, $"{args[0]}: {refused.ExitCode} {refused.Err}");
            Assert.StartsWith($"capstan: error: the deploy lock at wikifarm/deploy-lock holds a value Capstan cannot read ({why}", refused.Err, StringComparison.Ordinal);
            Assert.Contains("'capstan unlock --force --reason WHY' removes it", refused.Err, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", refused.Err, StringComparison.Ordinal);
        }

        await using (var store = State.StateStoreAddress.Open("file://.capstan/state", repo))
        {
            Assert.Equal(value, (await store.GetAsync("wikifarm/deploy-lock", default))!.Value);
        }

        var forced = CliRunner.Run("unlock", "--repo", repo, "--reason", "stuck", "--force");
        Assert.True(forced.ExitCode == 0, forced.Err);
        Assert.Equal("removed the deploy lock's unreadable value\n", forced.Out);
        Assert.Equal(0, CliRunner.Run("lock", "--repo", repo, "--reason", "mine now").ExitCode);
    }

    [Fact]
    public async Task A_no_op_deploy_removes_the_lock_of_a_deploy_of_this_host_whose_process_died()
    {
        // Found by the chaos run: a deploy killed after its last write left its lock to its lease, and the next
        // deploy, with nothing to do, never took the lock, so it stayed.
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        Assert.Equal(0, CliRunner.Run("deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug", "--yes").ExitCode);
        using var gone = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("true") { UseShellExecute = false })!;
        await gone.WaitForExitAsync();
        var dead = new JsonObject
        {
            ["actor"] = "root", ["host"] = Environment.MachineName, ["pid"] = gone.Id, ["since"] = "2026-12-07T01:04:06Z", ["reason"] = "killed", ["manual"] = false,
        };
        await using (var store = State.StateStoreAddress.Open("file://.capstan/state", repo))
        {
            await store.CommitAsync(new State.StoreTxn([], [new State.StoreOp.Put("wikifarm/deploy-lock", dead.ToJsonString())]), default);
        }

        var again = CliRunner.Run("deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug", "--yes");

        Assert.Equal(0, again.ExitCode);
        Assert.Contains($"capstan: note: removed the deploy lock of root (pid {gone.Id} on {Environment.MachineName})", again.Err, StringComparison.Ordinal);
        Assert.Equal("deploys were not locked\n", CliRunner.Run("unlock", "--repo", repo, "--reason", "check").Out);

        // An operator's lock is never taken for abandoned.
        Assert.Equal(0, CliRunner.Run("lock", "--repo", repo, "--reason", "hands off").ExitCode);
        Assert.Equal(0, CliRunner.Run("deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug", "--yes").ExitCode);
        Assert.Contains("removed the lock of", CliRunner.Run("unlock", "--repo", repo, "--reason", "check").Out, StringComparison.Ordinal);
    }

    [Fact]
    public void A_reason_or_owner_with_control_characters_is_refused_and_nothing_is_written()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        var lockRefused = CliRunner.Run("lock", "--repo", repo, "--reason", "fine\n\u001b[2Jfake row");
        Assert.Equal(2, lockRefused.ExitCode);
        Assert.Equal("capstan: error: the reason holds the control character U+000A at position 5; free text must be one line of printable characters\n", lockRefused.Err);
        var deployRefused = CliRunner.Run("deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-debug", "--yes", "--reason", "x\u202Eevil");
        Assert.Equal(2, deployRefused.ExitCode);
        Assert.Contains("U+202E", deployRefused.Err, StringComparison.Ordinal);
        var stateRefused = CliRunner.Run("state", "set", "maintenance", "false", "--repo", repo, "--reason", "a\rb");
        Assert.Equal(2, stateRefused.ExitCode);
        Assert.Contains("U+000D", stateRefused.Err, StringComparison.Ordinal);
        Assert.Contains("deploys were not locked", CliRunner.Run("unlock", "--repo", repo, "--reason", "check").Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_deploy_killed_half_way_is_resumed_by_the_next_run()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        using var child = CliRunner.StartChild(new Dictionary<string, string> { ["CAPSTAN_LOCAL_TIMING"] = "realistic" }, "deploy", "--repo", repo, "--dc", "eqiad", "--yes");
        await child.WaitForAsync("done (revision 1)", 60);
        await child.KillAsync();

        var again = CliRunner.Run("deploy", "--repo", repo, "--dc", "eqiad", "--yes");
        Assert.True(again.ExitCode == 0, again.Err + again.Out);
        Assert.Contains("was interrupted; this deploy continues from what the clusters hold now", again.Err, StringComparison.Ordinal);
        var status = CliRunner.Run("status", "--repo", repo, "--dc", "eqiad", "-o", "json");
        Assert.DoesNotContain("\"missing\": true", status.Out, StringComparison.Ordinal);
        Assert.Equal(20, status.Out.Split("\"release\":").Length - 1);

        // The journal is gone and the lock is free: a third run is a no-op.
        var third = CliRunner.Run("deploy", "--repo", repo, "--dc", "eqiad", "--yes");
        Assert.Equal(0, third.ExitCode);
        Assert.Contains("nothing to do", third.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("interrupted", third.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void Disabling_maintenance_removes_every_cron_job_and_stops_running_jobs_in_both_datacenters()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        Assert.Equal(0, CliRunner.Run("deploy", "--repo", repo, "-n", "mw-cron", "--yes").ExitCode);
        Assert.Equal(0, CliRunner.Run("deploy", "--repo", repo, "-n", "mw-script", "--yes").ExitCode);
        var eqiad = CliRunner.Run("status", "--repo", repo, "--dc", "eqiad", "-n", "mw-cron", "-o", "json");
        Assert.Contains("eqiad/mw-cron/main", eqiad.Out, StringComparison.Ordinal);

        var disable = CliRunner.Run("maintenance", "disable", "--repo", repo, "--reason", "switchover");
        Assert.True(disable.ExitCode == 0, disable.Err + disable.Out);
        Assert.Contains("maintenance_enabled: true -> false", disable.Out, StringComparison.Ordinal);
        Assert.Contains("eqiad: 0 CronJobs", disable.Out, StringComparison.Ordinal);
        Assert.Contains("codfw: 0 CronJobs", disable.Out, StringComparison.Ordinal);

        var enable = CliRunner.Run("maintenance", "enable", "--repo", repo, "--reason", "switchover done");
        Assert.True(enable.ExitCode == 0, enable.Err + enable.Out);
        Assert.Contains("eqiad: 6 CronJobs", enable.Out, StringComparison.Ordinal);
        Assert.Contains("codfw: 0 CronJobs", enable.Out, StringComparison.Ordinal);
    }
}

/// <summary><c>capstan maintenance reconcile --watch</c> follows changes written by anyone.</summary>
public sealed class MaintenanceReconcileTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task The_reconciler_removes_cron_jobs_when_the_state_is_written_directly()
    {
        var repo = CliRunner.CopyFarm(Path.Combine(_temp.Path, "farm"));
        Assert.Equal(0, CliRunner.Run("deploy", "--repo", repo, "--dc", "eqiad", "-n", "mw-cron", "--yes").ExitCode);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var (running, output) = CliRunner.Start(cts.Token, "maintenance", "reconcile", "--watch", "--repo", repo);
        while (!output().Contains("eqiad: 6 CronJobs", StringComparison.Ordinal))
        {
            await Task.Delay(100, cts.Token);
        }

        // Someone writes the state without running the gate.
        Assert.Equal(0, CliRunner.Run("state", "set", "maintenance", "false", "--repo", repo, "--reason", "by hand").ExitCode);
        while (!output().Contains("eqiad: 0 CronJobs", StringComparison.Ordinal))
        {
            await Task.Delay(100, cts.Token);
        }

        await cts.CancelAsync();
        await running;
        Assert.Contains("state changed (maintenance_enabled: true -> false); applying the gate", output(), StringComparison.Ordinal);
    }
}

/// <summary>How a deploy's result prints.</summary>
public sealed class PlanViewTests
{
    [Fact]
    public void A_failed_deploy_names_its_cause_in_the_summary_and_in_json()
    {
        var id = new Capstan.Core.Planning.ReleaseId("eqiad", "mw-debug", "pinkunicorn");
        const string Cause = "eqiad/mw-debug/pinkunicorn: Apply failed with 1 conflict: conflict with \"kubectl\": .spec.replicas (changed outside Capstan; --force-conflicts takes the fields back)";
        var result = new Capstan.Deploy.DeployResult("p1", false, [new Capstan.Deploy.ReleaseOutcome(id, Capstan.Deploy.ReleaseState.RolledBack, 3, "x; rolled back: back to revision 1 (as revision 3)")], TimeSpan.FromSeconds(2), Cause);
        var summary = Commands.PlanView.Summary(result);
        Assert.Contains("FAILED: plan p1 in 2.0 s\ncause: " + Cause + "\n", summary, StringComparison.Ordinal);
        Assert.Equal(Cause, Capstan.Deploy.Json.PlanJson.Of(result)["cause"]!.GetValue<string>());
    }
}
