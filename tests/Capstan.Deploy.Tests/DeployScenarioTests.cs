using System.Text.Json.Nodes;
using Capstan.Core.Planning;
using Capstan.Core.Rendering;
using Capstan.Kubernetes;
using Capstan.Kubernetes.Watching;
using Capstan.LocalCluster;

namespace Capstan.Deploy.Tests;

/// <summary>Deploys of the example farm on the embedded clusters, through the real HTTP client.</summary>
public sealed class DeployScenarioTests
{
    private const string NewCanaryImage = "docker-registry.wikifarm.example/restricted/mediawiki-multiversion:2026-11-22-090000-publish";

    private static string CanaryImageFile(string image) => $"images:\n  mediawiki: {image}\n";

    private static async Task<string?> ImageOfAsync(FarmHarness farm, string dc, string ns, string deployment, string container)
    {
        var live = await farm.Clusters[dc].GetAsync(new ObjectRef("apps/v1", "Deployment", ns, deployment), default);
        return (live?["spec"]?["template"]?["spec"]?["containers"] as JsonArray ?? []).FirstOrDefault(c => c?["name"]?.GetValue<string>() == container)?["image"]?.GetValue<string>();
    }

    [Fact]
    public async Task An_empty_cluster_bootstraps_the_whole_farm_and_a_second_deploy_is_a_no_op()
    {
        await using var farm = await FarmHarness.StartAsync();
        var (prepared, result) = await farm.DeployAsync();
        Assert.NotNull(result);
        Assert.True(result.Succeeded, string.Join("\n", result.Releases.Where(r => r.State != ReleaseState.Done).Select(r => $"{r.Id}: {r.State} {r.Detail}")));
        Assert.Equal(40, result.Releases.Count);
        Assert.All(result.Releases, r => Assert.Equal(ReleaseState.Done, r.State));
        Assert.Equal(14, prepared.Plan.Namespaces.Count);

        var status = await farm.Clusters["codfw"].GetRolloutStatusAsync("mw-web", "mw-web.codfw.main", default);
        Assert.True(status.Done);
        Assert.Equal(300, status.Available);

        var (again, second) = await farm.DeployAsync();
        Assert.Null(second);
        Assert.True(again.Plan.IsNoOp);
    }

    [Fact]
    public async Task A_plan_that_moves_main_to_a_new_image_while_the_canary_stays_pinned_says_the_canary_tests_nothing()
    {
        await using var farm = await FarmHarness.StartAsync();
        var (_, first) = await farm.DeployAsync(new RenderSelection("eqiad", "mw-web"));
        Assert.True(first!.Succeeded, first.Cause);

        var images = Path.Combine(farm.Root, "deploy", "images", "default.yaml");
        File.WriteAllText(images, File.ReadAllText(images).Replace("083015-publish", "101500-publish", StringComparison.Ordinal));
        var (moved, _) = await farm.DeployAsync(new RenderSelection("eqiad", "mw-web"));
        Assert.Equal(
            "eqiad/mw-web/canary runs docker-registry.wikifarm.example/restricted/mediawiki-multiversion:2026-11-21-101204-publish while eqiad/mw-web/main goes to docker-registry.wikifarm.example/restricted/mediawiki-multiversion:2026-11-20-101500-publish: the canary stage tests nothing (the canary's own images file pins it)",
            Assert.Single(moved.Notes));

        // The canary moved too: nothing to say.
        File.WriteAllText(Path.Combine(farm.Root, "deploy", "images", "mw-web", "canary.yaml"), CanaryImageFile("docker-registry.wikifarm.example/restricted/mediawiki-multiversion:2026-11-20-111500-publish"));
        File.WriteAllText(images, File.ReadAllText(images).Replace("101500-publish", "111500-publish", StringComparison.Ordinal));
        Assert.Empty((await farm.DeployAsync(new RenderSelection("eqiad", "mw-web"))).Prepared.Notes);
    }

    [Fact]
    public async Task Selecting_only_main_on_an_empty_cluster_fails_preflight_and_applies_nothing()
    {
        await using var farm = await FarmHarness.StartAsync();
        var ex = await Assert.ThrowsAsync<PreflightException>(() => farm.DeployAsync(new RenderSelection("eqiad", "mw-web", "main")));
        var problem = Assert.Single(ex.Problems);
        Assert.StartsWith("mw-web/main in eqiad needs mw-web/prometheus, which is not deployed; create it first with 'capstan deploy --repo ", problem, StringComparison.Ordinal);
        Assert.EndsWith("--dc eqiad --namespace mw-web --release prometheus', or add --include-needs", problem, StringComparison.Ordinal);
        Assert.Null(await farm.Clusters["eqiad"].GetAsync(new ObjectRef("v1", "Namespace", null, "mw-web"), default));

        // With --include-needs the support release comes first and main becomes ready.
        var (_, result) = await farm.DeployAsync(new RenderSelection("eqiad", "mw-web", "main"), includeNeeds: true);
        Assert.True(result!.Succeeded);
        Assert.Equal(["eqiad/mw-web/prometheus", "eqiad/mw-web/main"], result.Releases.Select(r => r.Id.ToString()).Order(StringComparer.Ordinal).Reverse());
    }

    [Fact]
    public async Task A_crash_looping_canary_is_rolled_back_and_production_is_not_touched()
    {
        var clock = new FastClock(300);
        await using var farm = await FarmHarness.StartAsync(new LocalClusterOptions { Time = clock });
        // The first rollout gets a generous deadline (a loaded machine must not fail it); the crashing one gets 2 s real time.
        farm.Write("values/mw-web.yaml", "php:\n  workers: 12\ntls:\n  node-port: 30450\nrollout:\n  progress-deadline-s: 36000\n");
        var first = await farm.DeployAsync(new RenderSelection("eqiad", "mw-web"));
        Assert.True(first.Result!.Succeeded);
        farm.Write("values/mw-web.yaml", "php:\n  workers: 12\ntls:\n  node-port: 30450\nrollout:\n  progress-deadline-s: 600\n");
        var oldImage = await ImageOfAsync(farm, "eqiad", "mw-web", "mw-web.eqiad.canary", "mediawiki-canary-app");

        // A new image for both releases; the canary's pods crash.
        farm.Write("deploy/images/mw-web/canary.yaml", CanaryImageFile(NewCanaryImage));
        farm.Write("deploy/images/default.yaml", CanaryImageFile(NewCanaryImage));
        farm.Clusters.LocalServer("eqiad")!.Faults.Add(new FaultInjector.PodFault(FaultInjector.PodFaultKind.CrashLoop, "mw-web", LocalCluster.Store.LabelQuery.Parse("release=canary"), "release=canary", TimeSpan.Zero));
        // The crash stays, so the rollback's own rollout cannot finish either: it is waited for until it stops
        // progressing (5 s here), and the outcome says so.
        var options = new ExecutorOptions { Actor = "test", Reason = "test", Wait = new WaitLimits { NoProgressTimeout = TimeSpan.FromSeconds(5) } };
        var (_, result) = await farm.DeployAsync(new RenderSelection("eqiad", "mw-web"), options: options);
        Assert.False(result!.Succeeded);
        var canary = result.Releases.Single(r => r.Id.Release == "canary");
        Assert.Equal(ReleaseState.RollbackFailed, canary.State);
        Assert.True(result.RollbackFailed);
        Assert.Matches(@"; rolled back: back to revision 1 \(as revision 2; its rollout did not finish: Deployment mw-web\.eqiad\.canary: (no progress for 5 s|progress deadline exceeded)", canary.Detail);
        Assert.Equal(ReleaseState.NotStarted, result.Releases.Single(r => r.Id.Release == "main").State);
        Assert.Equal(oldImage, await ImageOfAsync(farm, "eqiad", "mw-web", "mw-web.eqiad.canary", "mediawiki-canary-app"));
        Assert.NotEqual(NewCanaryImage, await ImageOfAsync(farm, "eqiad", "mw-web", "mw-web.eqiad.main", "mediawiki-main-app"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_job_in_a_manifests_release_is_waited_for_and_a_failed_one_fails_the_release(bool fails)
    {
        await using var farm = await FarmHarness.StartAsync();
        farm.Write("manifests/limits/migrate.yaml", """
            apiVersion: batch/v1
            kind: Job
            metadata: {name: migrate-schema}
            spec:
              backoffLimit: 0
              template:
                metadata: {labels: {job: migrate}}
                spec:
                  restartPolicy: Never
                  containers: [{name: migrate, image: registry.example/tools:1, command: [/bin/true]}]
            """);
        if (fails)
        {
            farm.Clusters.LocalServer("eqiad")!.Faults.Add(new FaultInjector.PodFault(FaultInjector.PodFaultKind.FailJob, "mw-debug", LocalCluster.Store.LabelQuery.Parse("job=migrate"), "job=migrate", TimeSpan.Zero));
        }

        var (_, result) = await farm.DeployAsync(new RenderSelection("eqiad", "mw-debug", "limits"));

        var limits = result!.Releases.Single(r => r.Id.Release == "limits");
        var job = await farm.Clusters["eqiad"].GetAsync(new ObjectRef("batch/v1", "Job", "mw-debug", "migrate-schema"), default);
        if (fails)
        {
            Assert.False(result.Succeeded);
            Assert.Matches("^Job migrate-schema: failed: BackoffLimitExceeded", limits.Detail);
            Assert.Null(job);
        }
        else
        {
            // Done only once the Job completed: its condition says so when the deploy returns.
            Assert.True(result.Succeeded, limits.Detail);
            Assert.Contains((job!["status"]!["conditions"] as JsonArray)!, c => c!["type"]!.GetValue<string>() == "Complete" && c["status"]!.GetValue<string>() == "True");
        }
    }

    [Fact]
    public async Task A_rollback_the_api_refuses_is_a_failed_rollback_not_a_success()
    {
        await using var farm = await DebugWithUnpullableImageAsync();

        // As soon as the release fails, every write to the cluster is refused: its rollback cannot apply anything.
        var server = farm.Clusters.LocalServer("eqiad")!;
        var observer = new FaultOnFailure(() => server.Faults.Add(new FaultInjector.HttpFault(500, 100_000, TimeSpan.Zero, null, "/namespaces/mw-debug/")));
        var (_, result) = await farm.DeployAsync(new RenderSelection("eqiad", "mw-debug"), observer: observer);

        Assert.False(result!.Succeeded);
        Assert.True(result.RollbackFailed);
        var release = result.Releases.Single(r => r.Id.Release == "pinkunicorn");
        Assert.Equal(ReleaseState.RollbackFailed, release.State);
        Assert.Matches("progress deadline exceeded.*; rollback failed: ", release.Detail);
    }

    [Fact]
    public async Task A_missing_image_fails_the_release_with_the_pull_error_and_rolls_back()
    {
        await using var farm = await DebugWithUnpullableImageAsync();
        var (_, result) = await farm.DeployAsync(new RenderSelection("eqiad", "mw-debug"));
        Assert.False(result!.Succeeded);
        var failed = result.Releases.Single(r => r.Id.Release == "pinkunicorn");
        Assert.Equal(ReleaseState.RolledBack, failed.State);
        var events = result.Releases;
        Assert.DoesNotContain(events, r => r.State == ReleaseState.Failed);
        Assert.NotEqual(NewCanaryImage, await ImageOfAsync(farm, "eqiad", "mw-debug", "mw-debug.eqiad.pinkunicorn", "mediawiki-pinkunicorn-app"));

        // The cause stays with the outcome, the history and the plan's record, not only in the progress events.
        Assert.Matches("^eqiad/mw-debug/pinkunicorn: Deployment mw-debug.eqiad.pinkunicorn: progress deadline exceeded: (ErrImagePull|ImagePullBackOff) on mediawiki-pinkunicorn-app", result.Cause);
        Assert.StartsWith(result.Cause!["eqiad/mw-debug/pinkunicorn: ".Length..], failed.Detail, StringComparison.Ordinal);
        Assert.EndsWith("; rolled back: back to revision 1 (as revision 2; rolled out)", failed.Detail, StringComparison.Ordinal);
        var history = (await ReleaseRecords.ListAsync(farm.Clusters["eqiad"], "eqiad", "mw-debug", default))[failed.Id];
        var latest = history.MaxBy(r => r.Revision)!;
        Assert.Equal($"rollback to revision 1 after plan {result.PlanId} failed: {result.Cause}", latest.Reason);
        var (plans, _) = await farm.Store.ListAsync($"{farm.Model.Project}/deploys/", default);
        var record = JsonNode.Parse(plans.Single(p => p.Key.EndsWith(result.PlanId, StringComparison.Ordinal)).Value)!;
        Assert.False(record["succeeded"]!.GetValue<bool>());
        Assert.Equal(result.Cause, record["cause"]!.GetValue<string>());
    }

    [Fact]
    public async Task The_pull_error_is_reported_in_the_failure()
    {
        var clock = new FastClock(300);
        await using var farm = await FarmHarness.StartAsync(new LocalClusterOptions { Time = clock });
        farm.Write("values/mw-debug.yaml", "rollout:\n  progress-deadline-s: 30\n");
        farm.Clusters.LocalServer("eqiad")!.Images.Set(["none"]);
        var log = new EventLog();
        var (_, result) = await farm.DeployAsync(new RenderSelection("eqiad", "mw-debug", "prometheus"), options: new ExecutorOptions { Actor = "t", Reason = "t" }, observer: log);
        Assert.False(result!.Succeeded);
        var failure = log.Events.First(e => e.State == ReleaseState.Failed);
        Assert.Contains("progress deadline exceeded: ImagePullBackOff on statsd-exporter: Back-off pulling image \"docker-registry.wikifarm.example/prometheus-statsd-exporter:0.26.1-1\"", failure.Message, StringComparison.Ordinal);
        Assert.Equal(ReleaseState.RolledBack, Assert.Single(result.Releases).State);
        Assert.Null(await farm.Clusters["eqiad"].GetAsync(new ObjectRef("apps/v1", "Deployment", "mw-debug", "statsd-exporter-prometheus"), default));
    }

    [Fact]
    public async Task A_storm_of_server_errors_is_retried_and_the_deploy_succeeds()
    {
        await using var farm = await FarmHarness.StartAsync();
        farm.Clusters.LocalServer("eqiad")!.Faults.Add(new FaultInjector.HttpFault(500, 4, TimeSpan.Zero, null, null));
        farm.Clusters.LocalServer("eqiad")!.Faults.Add(new FaultInjector.HttpFault(503, 4, TimeSpan.Zero, null, "/apps/"));
        var (_, result) = await farm.DeployAsync(new RenderSelection("eqiad", "mw-api-int"));
        Assert.True(result!.Succeeded);
        Assert.Empty(farm.Clusters.LocalServer("eqiad")!.Faults.Describe()["http"]!.AsArray());
    }

    [Fact]
    public async Task A_second_deploy_while_one_runs_refuses_and_names_the_holder()
    {
        await using var farm = await FarmHarness.StartAsync();
        await using var held = await DeployLock.AcquireAsync(farm.Store, farm.Model.Project, "alice", "train deploy", default);
        var ex = await Assert.ThrowsAsync<DeployLockedException>(() => farm.DeployAsync(new RenderSelection("eqiad", "mw-debug")));
        Assert.Equal("alice", ex.Holder.Actor);
        Assert.Contains("train deploy", ex.Message, StringComparison.Ordinal);
        Assert.Null(await farm.Clusters["eqiad"].GetAsync(new ObjectRef("v1", "Namespace", null, "mw-debug"), default));
    }

    [Fact]
    public async Task Objects_no_longer_rendered_are_pruned()
    {
        await using var farm = await FarmHarness.StartAsync();
        Assert.True((await farm.DeployAsync(new RenderSelection("eqiad", "mw-web", "canary"), includeNeeds: true)).Result!.Succeeded);
        Assert.NotNull(await farm.Clusters["eqiad"].GetAsync(new ObjectRef("v1", "Secret", "mw-web", "mediawiki-canary-private-settings"), default));
        farm.Write("private/secrets.yaml", File.ReadAllText(Path.Combine(farm.Root, "private/secrets.yaml")).Split("  private:")[0]);
        var (prepared, result) = await farm.DeployAsync(new RenderSelection("eqiad", "mw-web", "canary"));
        var action = prepared.Plan.Actions.Single(a => a.Id.Release == "canary");
        Assert.Contains(action.Prune, p => p.Name == "mediawiki-canary-private-settings");
        Assert.True(result!.Succeeded);
        Assert.Null(await farm.Clusters["eqiad"].GetAsync(new ObjectRef("v1", "Secret", "mw-web", "mediawiki-canary-private-settings"), default));
    }

    [Fact]
    public async Task Records_keep_every_revision()
    {
        await using var farm = await FarmHarness.StartAsync();
        Assert.True((await farm.DeployAsync(new RenderSelection("eqiad", "mw-debug"))).Result!.Succeeded);
        farm.Write("groups/mw-debug.yaml", File.ReadAllText(Path.Combine(farm.Root, "groups/mw-debug.yaml")).Replace("replicas: 2", "replicas: 3", StringComparison.Ordinal));
        Assert.True((await farm.DeployAsync(new RenderSelection("eqiad", "mw-debug"))).Result!.Succeeded);
        var records = await ReleaseRecords.ListAsync(farm.Clusters["eqiad"], "eqiad", "mw-debug", default);
        var history = records[new ReleaseId("eqiad", "mw-debug", "pinkunicorn")];
        Assert.Equal([2, 1], history.Select(r => r.Revision));
        Assert.Equal(["deployed", "superseded"], history.Select(r => r.Status));
        Assert.Equal("test", history[0].Actor);
        Assert.Contains("mediawiki-pinkunicorn-app", history[0].Images.Keys);
        Assert.Equal(3, history[0].Manifest.Single(o => o["kind"]!.GetValue<string>() == "Deployment")["spec"]!["replicas"]!.GetValue<int>());
    }

    /// <summary>
    /// A farm whose mw-debug was deployed and whose image file now names an image no node can pull: the next deploy of
    /// mw-debug fails at its progress deadline.
    /// </summary>
    private static async Task<FarmHarness> DebugWithUnpullableImageAsync()
    {
        var farm = await FarmHarness.StartAsync(new LocalClusterOptions { Time = new FastClock(300) });
        farm.Write("values/mw-debug.yaml", "php:\n  display-errors: true\nrollout:\n  progress-deadline-s: 36000\n");
        Assert.True((await farm.DeployAsync(new RenderSelection("eqiad", "mw-debug"))).Result!.Succeeded);
        // Ten simulated minutes (2 s at this clock): room for the kubelet to report the pull error before the deadline,
        // even on a loaded machine.
        farm.Write("values/mw-debug.yaml", "php:\n  display-errors: true\nrollout:\n  progress-deadline-s: 600\n");
        await farm.OnlyCurrentImagesPullableAsync("eqiad", "mw-debug");
        farm.Write("deploy/images/default.yaml", CanaryImageFile(NewCanaryImage));
        return farm;
    }

    /// <summary>Runs an action once, at the first release that fails.</summary>
    private sealed class FaultOnFailure(Action inject) : IDeployObserver
    {
        private int _done;

        public void OnEvent(DeployEvent e)
        {
            if (e.State == ReleaseState.Failed && Interlocked.Exchange(ref _done, 1) == 0)
            {
                inject();
            }
        }
    }
}
