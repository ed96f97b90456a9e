using System.Text.Json.Nodes;
using Capstan.Core.Kubernetes;
using Capstan.Core.Rendering;
using Capstan.LocalCluster;

namespace Capstan.Deploy.Tests;

public sealed class ScriptRunnerTests
{
    private static readonly string[] Hostile =
    [
        "'; rm -rf /",
        "$(rm -rf /)",
        "`id`",
        "$(HOSTNAME)",
        "$$(HOSTNAME)",
        "a b\tc\nd",
        "\"quoted\" and 'single'",
        "--wiki=otherwiki",
        "@response-file",
        "*",
        "ünïcödé ✓",
        "",
    ];

    [Fact]
    public async Task Arguments_reach_the_script_exactly_as_given_with_no_shell_and_no_expansion()
    {
        await using var farm = await StartAsync();
        var runner = new ScriptRunner(farm.Model, new FarmRenderer(farm.Model, farm.Files), farm.Clusters);

        var started = await runner.StartAsync(new ScriptRequest("extensions/Foo/maintenance/bar.php", "enwiki", Hostile, null, null, "alice"), farm.State, _ => Task.FromResult(farm.State), default);

        Assert.Equal("eqiad", started.Datacenter);
        Assert.Matches("^[a-z][a-z0-9]{7}$", started.Release);
        Assert.Equal($"mw-script.eqiad.{started.Release}", started.Job);
        var job = (await farm.Clusters["eqiad"].GetAsync(new Kubernetes.ObjectRef("batch/v1", "Job", "mw-script", started.Job), default))!;
        var app = job["spec"]!["template"]!["spec"]!["containers"]!.AsArray().Single(c => c!["name"]!.GetValue<string>() == $"mediawiki-{started.Release}-app")!;

        // No shell: the first word is php itself, and the argv is the script's. Kubernetes expands $(VAR) in commands
        // before the container starts; expanded with the variables the pod has, every argument is back to what was typed.
        var command = app["command"]!.AsArray().Select(a => a!.GetValue<string>()).ToList();
        Assert.Null(app["args"]);
        var env = (app["env"] as JsonArray ?? []).Where(e => e?["value"] is not null).ToDictionary(e => e!["name"]!.GetValue<string>(), e => e!["value"]!.GetValue<string>());
        env["HOSTNAME"] = "the-pod";
        var expanded = command.Select(c => ContainerExpansion.Expand(c, env).Value).ToList();
        Assert.Equal(["php", ScriptRun.MwScript, "extensions/Foo/maintenance/bar.php", "--wiki", "enwiki", .. Hostile], expanded);

        Assert.Equal("0", job["spec"]!["backoffLimit"]!.ToJsonString());
        Assert.Equal("Never", job["spec"]!["template"]!["spec"]!["restartPolicy"]!.GetValue<string>());
        Assert.Equal("bar.php", job["metadata"]!["labels"]!["script"]!.GetValue<string>());
        Assert.Equal("alice", job["metadata"]!["labels"]!["username"]!.GetValue<string>());

        // The run's ConfigMaps belong to the Job, so they go with it.
        var maps = (await farm.Clusters["eqiad"].ListAsync("v1", "ConfigMap", "mw-script", $"capstan.dev/release={started.Release}", default)).Items;
        Assert.NotEmpty(maps);
        Assert.All(maps, m => Assert.Equal(job["metadata"]!["uid"]!.GetValue<string>(), m["metadata"]!["ownerReferences"]![0]!["uid"]!.GetValue<string>()));

        // It runs and finishes; a deploy of the script group afterwards has nothing to do.
        var outcome = await runner.FollowAsync(started, _ => { }, TimeProvider.System, default);
        Assert.True(outcome.Succeeded, outcome.Detail);
        var prepared = await farm.Service().PrepareAsync(new DeployRequest(new RenderSelection(Namespace: "mw-script"), false, false, 20, new ExecutorOptions()), farm.State, default);
        Assert.True(prepared.Plan.IsNoOp);
    }

    [Theory]
    [InlineData("read-only", "eqiad is read-only")]
    [InlineData("maintenance-off", "maintenance is disabled (switchover)")]
    [InlineData("secondary", "codfw is not the primary datacenter (eqiad is)")]
    [InlineData("secondary-with-image", null)]
    public async Task The_state_refuses_runs_before_anything_is_created(string situation, string? refusal)
    {
        await using var farm = await StartAsync();
        var runner = new ScriptRunner(farm.Model, new FarmRenderer(farm.Model, farm.Files), farm.Clusters);
        var (state, dc, image) = situation switch
        {
            "read-only" => (farm.State with { ReadOnly = farm.State.ReadOnly.SetItem("eqiad", "db maintenance") }, (string?)null, (string?)null),
            "maintenance-off" => (farm.State with { MaintenanceEnabled = false, MaintenanceReason = "switchover" }, null, null),
            "secondary" => (farm.State, "codfw", null),
            _ => (farm.State, "codfw", "docker-registry.example/mediawiki:2026-11-20"),
        };
        var request = new ScriptRequest("showJobs.php", "enwiki", [], dc, image, "bob");

        if (refusal is null)
        {
            var started = await runner.StartAsync(request, state, _ => Task.FromResult(state), default);
            var job = await farm.Clusters["codfw"].GetAsync(new Kubernetes.ObjectRef("batch/v1", "Job", "mw-script", started.Job), default);
            Assert.Equal(image, job!["spec"]!["template"]!["spec"]!["containers"]![0]!["image"]!.GetValue<string>());
            return;
        }

        var ex = await Assert.ThrowsAsync<ScriptNotAllowedException>(() => runner.StartAsync(request, state, _ => Task.FromResult(state), default));
        Assert.Contains(refusal, ex.Message, StringComparison.Ordinal);
        foreach (var d in new[] { "eqiad", "codfw" })
        {
            Assert.Empty((await farm.Clusters[d].ListAsync("batch/v1", "Job", "mw-script", null, default)).Items);
        }
    }

    [Fact]
    public async Task A_run_that_loses_the_race_with_a_maintenance_stop_is_cancelled()
    {
        await using var farm = await StartAsync();
        var runner = new ScriptRunner(farm.Model, new FarmRenderer(farm.Model, farm.Files), farm.Clusters);
        var stopped = farm.State with { MaintenanceEnabled = false, MaintenanceReason = "switchover" };
        var ex = await Assert.ThrowsAsync<ScriptNotAllowedException>(() => runner.StartAsync(
            new ScriptRequest("showJobs.php", "enwiki", [], null, null, "bob"), farm.State, _ => Task.FromResult(stopped), default));
        Assert.Contains("the run was cancelled", ex.Message, StringComparison.Ordinal);
        await WaitUntilAsync(async () => (await farm.Clusters["eqiad"].ListAsync("batch/v1", "Job", "mw-script", null, default)).Items.Count == 0);
        await WaitUntilAsync(async () => (await farm.Clusters["eqiad"].ListAsync("v1", "ConfigMap", "mw-script", "app.kubernetes.io/name=mediawiki", default)).Items.Count == 0);
    }

    [Fact]
    public async Task A_failing_script_is_not_retried_and_its_failure_is_reported()
    {
        await using var farm = await StartAsync();
        farm.Clusters.LocalServer("eqiad")!.Faults.Add(new FaultInjector.PodFault(FaultInjector.PodFaultKind.FailJob, "mw-script", LocalCluster.Store.LabelQuery.Parse("app=mediawiki"), "app=mediawiki", TimeSpan.Zero));
        var runner = new ScriptRunner(farm.Model, new FarmRenderer(farm.Model, farm.Files), farm.Clusters);
        var started = await runner.StartAsync(new ScriptRequest("showJobs.php", "enwiki", [], null, null, "bob"), farm.State, _ => Task.FromResult(farm.State), default);
        var lines = new List<string>();
        var outcome = await runner.FollowAsync(started, lines.Add, TimeProvider.System, default);
        Assert.False(outcome.Succeeded);
        Assert.NotEqual(0, outcome.ExitCode);
        Assert.Contains(lines, l => l.Contains("no log", StringComparison.Ordinal) || l.Contains("Failed", StringComparison.Ordinal));
        Assert.Single((await farm.Clusters["eqiad"].ListAsync("v1", "Pod", "mw-script", $"job-name={started.Job}", default)).Items);
    }

    [Fact]
    public async Task A_run_needs_the_script_groups_support_releases()
    {
        await using var farm = await FarmHarness.StartAsync();
        var runner = new ScriptRunner(farm.Model, new FarmRenderer(farm.Model, farm.Files), farm.Clusters);
        var ex = await Assert.ThrowsAsync<PreflightException>(() => runner.StartAsync(new ScriptRequest("showJobs.php", "enwiki", [], null, null, "bob"), farm.State, _ => Task.FromResult(farm.State), default));
        Assert.Contains(ex.Problems, p => p.Contains("mw-script/prometheus, which is not deployed", StringComparison.Ordinal) && p.Contains("capstan deploy", StringComparison.Ordinal));
        Assert.DoesNotContain((await farm.Clusters["eqiad"].ListAsync("v1", "Namespace", null, null, default)).Items, n => n["metadata"]!["name"]!.GetValue<string>() == "mw-script");
    }

    private static async Task<FarmHarness> StartAsync()
    {
        var farm = await FarmHarness.StartAsync();
        Assert.True((await farm.DeployAsync(new RenderSelection(Namespace: "mw-script"))).Result!.Succeeded);
        return farm;
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting");
            await Task.Delay(20);
        }
    }
}
