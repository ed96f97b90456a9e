using System.Text.Json.Nodes;
using Capstan.Core.Planning;
using Capstan.Core.Rendering;
using Capstan.Kubernetes;
using Capstan.Kubernetes.Watching;
using Capstan.LocalCluster;

namespace Capstan.Deploy.Tests;

/// <summary>The plan judged by the server's dry run: removed fields go, canonical forms are no change.</summary>
public sealed class ThreeWayPlanTests
{
    private const string LimitRange = "manifests/limits/limitrange.yaml";
    private static readonly RenderSelection Limits = new("eqiad", "mw-debug", "limits");
    private static readonly ObjectRef Live = new("v1", "LimitRange", "mw-debug", "mw-debug-limits");

    private static async Task<JsonObject> LiveLimitsAsync(FarmHarness farm) =>
        (await farm.Clusters["eqiad"].GetAsync(Live, default))!["spec"]!["limits"]![0]!.AsObject();

    [Fact]
    public async Task A_field_removed_from_a_manifest_is_planned_as_removed_and_disappears_from_the_live_object()
    {
        await using var farm = await FarmHarness.StartAsync();
        Assert.True((await farm.DeployAsync(Limits, includeNeeds: true)).Result!.Succeeded);
        Assert.Equal("8Gi", (await LiveLimitsAsync(farm))["max"]!["memory"]!.GetValue<string>());

        farm.Write(LimitRange, File.ReadAllText(Path.Combine(farm.Root, LimitRange)).Replace("      max:\n        memory: 8Gi\n", string.Empty, StringComparison.Ordinal));
        var (prepared, result) = await farm.DeployAsync(Limits);
        var change = Assert.Single(Assert.Single(prepared.Plan.Actions).Apply);
        Assert.Equal(ObjectAction.Update, change.Action);
        Assert.Equal([".spec.limits"], change.FieldsSet);
        Assert.NotNull(change.Judged);
        Assert.True(result!.Succeeded);
        Assert.Null((await LiveLimitsAsync(farm))["max"]);

        // And the record now holds what is live: the next plan changes nothing.
        Assert.True((await farm.DeployAsync(Limits)).Prepared.Plan.IsNoOp);
    }

    [Fact]
    public async Task Non_canonical_quantities_make_the_second_deploy_a_no_op()
    {
        await using var farm = await FarmHarness.StartAsync();
        farm.Write(LimitRange, File.ReadAllText(Path.Combine(farm.Root, LimitRange))
            .Replace("memory: 8Gi", "memory: 8192Mi", StringComparison.Ordinal)
            .Replace("cpu: 100m", "cpu: 0.1", StringComparison.Ordinal));
        Assert.True((await farm.DeployAsync(Limits, includeNeeds: true)).Result!.Succeeded);
        var live = await LiveLimitsAsync(farm);
        Assert.Equal("8Gi", live["max"]!["memory"]!.GetValue<string>());
        Assert.Equal("100m", live["defaultRequest"]!["cpu"]!.GetValue<string>());

        var (again, second) = await farm.DeployAsync(Limits);
        Assert.True(again.Plan.IsNoOp, string.Join("; ", again.Plan.Actions.SelectMany(a => a.Apply).Select(c => $"{c.Kind}/{c.Name}: {c.Why}")));
        Assert.Null(second);
    }

    [Fact]
    public async Task A_no_change_plan_asks_the_server_nothing_and_a_change_by_hand_is_judged()
    {
        await using var farm = await FarmHarness.StartAsync();
        Assert.True((await farm.DeployAsync(Limits, includeNeeds: true)).Result!.Succeeded);
        var service = farm.Service();
        var renderer = new FarmRenderer(farm.Model, farm.Files);
        var releases = renderer.Render(renderer.Select(Limits).ToList(), farm.State, withNamespaces: false).Releases;
        var live = (await LiveReader.ReadAsync(farm.Clusters["eqiad"], "eqiad", releases, default)).Releases;
        var judged = Assert.Single(await ServerJudge.JudgeAsync(farm.Clusters["eqiad"], releases, live, default)).Value;
        Assert.Equal(0, judged.Asked);
        Assert.All(judged.Verdicts.Values, v => Assert.Equal(VerdictKind.NotAsked, v.Kind));

        // A value another writer changed (and so now owns): the server is asked, the apply would conflict, and the
        // plan updates the object, naming the writer, instead of calling it unchanged.
        await farm.Clusters["eqiad"].PatchAsync(Live, Cluster.Yaml("spec: {limits: [{type: Container, defaultRequest: {cpu: 200m, memory: 64Mi}, max: {memory: 8Gi}}]}"), "kubectl-edit", default);
        live = (await LiveReader.ReadAsync(farm.Clusters["eqiad"], "eqiad", releases, default)).Releases;
        judged = Assert.Single(await ServerJudge.JudgeAsync(farm.Clusters["eqiad"], releases, live, default)).Value;
        Assert.Equal((1, 0), (judged.Asked, judged.Answered));
        Assert.Equal(VerdictKind.NoVerdict, judged.Verdicts[LiveRelease.Key(Live.Kind, Live.Name)].Kind);
        var request = new DeployRequest(Limits, false, false, 20, new ExecutorOptions()) { Preflight = false };
        var change = Assert.Single(Assert.Single((await service.PrepareAsync(request, farm.State, default)).Plan.Actions).Apply);
        Assert.Equal(ObjectAction.Update, change.Action);
        Assert.Contains(LiveProjection.Drift(change.Desired, change.Live!), d => d.Manager == "kubectl-edit");
    }

    [Fact]
    public async Task An_env_var_added_by_hand_shows_as_drift_and_survives_the_next_deploy()
    {
        await using var farm = await FarmHarness.StartAsync();
        var debug = new RenderSelection("eqiad", "mw-debug");
        Assert.True((await farm.DeployAsync(debug)).Result!.Succeeded);

        // What `kubectl set env deployment/… -c mediawiki-pinkunicorn-app TRACING=on` sends: a strategic merge patch.
        var deployment = new ObjectRef("apps/v1", "Deployment", "mw-debug", "mw-debug.eqiad.pinkunicorn");
        farm.Clusters.LocalServer("eqiad")!.Store.StrategicPatch(
            LocalCluster.Store.ResourceTypes.ByKind("Deployment")!, "mw-debug", deployment.Name,
            Cluster.Yaml("spec: {template: {spec: {containers: [{name: mediawiki-pinkunicorn-app, env: [{name: TRACING, value: 'on'}]}]}}}"),
            statusOnly: false, "kubectl-set");

        var (prepared, _) = await farm.DeployAsync(debug);
        Assert.True(prepared.Plan.IsNoOp, "a field another manager added is theirs: applying again keeps it, so nothing changes");
        var drift = Assert.Single(prepared.Plan.Actions.SelectMany(a => a.Drift));
        Assert.Equal(("Deployment", ".spec.template.spec.containers[name=\"mediawiki-pinkunicorn-app\"].env[name=\"TRACING\"]", "kubectl-set"), (drift.Kind, drift.Path, drift.Manager));

        // A real change to the release: the apply merges by key and the hand-added variable survives.
        farm.Write("groups/mw-debug.yaml", File.ReadAllText(Path.Combine(farm.Root, "groups/mw-debug.yaml")).Replace("replicas: 2", "replicas: 3", StringComparison.Ordinal));
        Assert.True((await farm.DeployAsync(debug)).Result!.Succeeded);
        var live = await farm.Clusters["eqiad"].GetAsync(deployment, default);
        var app = (live!["spec"]!["template"]!["spec"]!["containers"] as JsonArray)!.Single(c => c!["name"]!.GetValue<string>() == "mediawiki-pinkunicorn-app")!;
        Assert.Contains(app["env"]!.AsArray(), e => e!["name"]!.GetValue<string>() == "TRACING");
        Assert.Equal(3, live["spec"]!["replicas"]!.GetValue<int>());
    }
}

/// <summary>Rollback and records when things go wrong.</summary>
public sealed class SafeRollbackTests
{
    [Fact]
    public async Task A_corrupt_release_record_is_an_error_naming_the_secret_not_a_fresh_install()
    {
        await using var farm = await FarmHarness.StartAsync();
        var limits = new RenderSelection("eqiad", "mw-debug", "limits");
        Assert.True((await farm.DeployAsync(limits, includeNeeds: true)).Result!.Succeeded);
        var record = new ObjectRef("v1", "Secret", "mw-debug", ReleaseRecords.Name("limits", 1));
        await farm.Clusters["eqiad"].PatchAsync(record, new JsonObject { ["data"] = new JsonObject { ["release"] = Convert.ToBase64String("not a record"u8.ToArray()) } }, "test", default);

        var error = await Assert.ThrowsAsync<ReleaseRecordException>(() => farm.DeployAsync(limits));
        Assert.StartsWith("the release record Secret mw-debug/capstan.release.limits.v1 in eqiad cannot be read", error.Message, StringComparison.Ordinal);

        // A record that reads as JSON but lacks a field says which.
        using var buffer = new MemoryStream();
        using (var gzip = new System.IO.Compression.GZipStream(buffer, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write("""{"revision":1,"status":"deployed","manifestHash":"x","manifest":[]}"""u8);
        }

        await farm.Clusters["eqiad"].PatchAsync(record, new JsonObject { ["data"] = new JsonObject { ["release"] = Convert.ToBase64String(buffer.ToArray()) } }, "test", default);
        var missing = await Assert.ThrowsAsync<ReleaseRecordException>(() => farm.DeployAsync(limits));
        Assert.Contains("cannot be read (InvalidDataException: the record has no actor)", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Rolling_back_a_first_install_keeps_the_objects_that_existed_before_the_plan()
    {
        var clock = new FastClock(300);
        await using var farm = await FarmHarness.StartAsync(new LocalClusterOptions { Time = clock });
        farm.Write("values/mw-debug.yaml", "php:\n  display-errors: true\nrollout:\n  progress-deadline-s: 36000\n");
        var selection = new RenderSelection("eqiad", "mw-debug");
        Assert.True((await farm.DeployAsync(selection)).Result!.Succeeded);

        // An install whose records were never written (interrupted): its objects are live, its history is empty.
        var client = farm.Clusters["eqiad"];
        foreach (var secret in (await client.ListAsync("v1", "Secret", "mw-debug", $"{ReleaseRecords.RecordOfLabel}=pinkunicorn", default)).Items)
        {
            await client.DeleteAsync(new ObjectRef("v1", "Secret", "mw-debug", secret["metadata"]!["name"]!.GetValue<string>()), Propagation.Background, default);
        }

        // The next attempt fails (its new image cannot be pulled) and is rolled back as a first install.
        farm.Write("values/mw-debug.yaml", "php:\n  display-errors: true\nrollout:\n  progress-deadline-s: 30\n");
        await farm.OnlyCurrentImagesPullableAsync("eqiad", "mw-debug");
        farm.Write("deploy/images/default.yaml", File.ReadAllText(Path.Combine(farm.Root, "deploy/images/default.yaml")).Replace("publish", "publish-unpullable", StringComparison.Ordinal));
        var (_, result) = await farm.DeployAsync(selection);
        var failed = result!.Releases.Single(r => r.Id.Release == "pinkunicorn");
        Assert.Equal(ReleaseState.RolledBack, failed.State);
        Assert.Contains("it was a first install", failed.Detail, StringComparison.Ordinal);
        Assert.NotNull(await client.GetAsync(new ObjectRef("apps/v1", "Deployment", "mw-debug", "mw-debug.eqiad.pinkunicorn"), default));
    }
}

/// <summary>Rollouts waited for as kubectl judges them: progress, not a fixed cap; API outages paused through.</summary>
public sealed class RolloutWaitTests
{
    private const string NewImage = "docker-registry.wikifarm.example/restricted/mediawiki-multiversion:2026-11-25-090000-publish";

    [Fact]
    public async Task A_rollout_without_progress_fails_after_the_no_progress_timeout_naming_the_pod_problem()
    {
        await using var farm = await FarmHarness.StartAsync();
        farm.Write("values/mw-debug.yaml", "php:\n  display-errors: true\nrollout:\n  progress-deadline-s: 36000\n");
        Assert.True((await farm.DeployAsync(new RenderSelection("eqiad", "mw-debug"))).Result!.Succeeded);

        // The new image cannot be pulled and the server's deadline is ten hours away: the executor's own measure of
        // progress (no new ready replica for the timeout) ends the wait, not a fixed cap on the whole rollout.
        var client = farm.Clusters["eqiad"];
        await farm.OnlyCurrentImagesPullableAsync("eqiad", "mw-debug");
        farm.Write("deploy/images/default.yaml", $"images:\n  mediawiki: {NewImage}\n");
        var options = new ExecutorOptions { Actor = "test", Reason = "test", Wait = new WaitLimits { NoProgressTimeout = TimeSpan.FromSeconds(1) } };
        var (_, result) = await farm.DeployAsync(new RenderSelection("eqiad", "mw-debug", "pinkunicorn"), includeNeeds: true, options: options);
        var failed = result!.Releases.Single(r => r.Id.Release == "pinkunicorn");
        Assert.Equal(ReleaseState.RolledBack, failed.State);
        Assert.Matches(@"^Deployment mw-debug\.eqiad\.pinkunicorn: no progress for 1 s \(\d/2 ready\): (ErrImagePull|ImagePullBackOff) on mediawiki-pinkunicorn-app", failed.Detail);
    }

    [Fact]
    public async Task A_twenty_minute_rollout_that_keeps_progressing_succeeds()
    {
        // Simulated time runs 300 times faster, for the cluster and the executor alike; each pod takes five minutes to
        // become ready, and the rollout goes one pod at a time: four waves, twenty minutes, longer than both the server's
        // progress deadline (ten minutes) and the executor's no-progress timeout (fifteen), neither of which it exceeds.
        var clock = new FastClock(300);
        await using var farm = await FarmHarness.StartAsync(new LocalClusterOptions { Time = clock, Timing = SimulationTiming.Instant with { PodReady = TimeSpan.FromMinutes(5) } });
        farm.Write("groups/mw-debug.yaml", File.ReadAllText(Path.Combine(farm.Root, "groups/mw-debug.yaml")).Replace("replicas: 2", "replicas: 4", StringComparison.Ordinal));
        farm.Write("values/mw-debug.yaml", "php:\n  display-errors: true\nrollout:\n  max-surge: 1\n  max-unavailable: 0\n  progress-deadline-s: 600\n");
        var options = new ExecutorOptions { Actor = "test", Reason = "test", LockTtl = TimeSpan.FromDays(1) };
        async Task<DeployResult> DeployAsync()
        {
            var service = farm.Service(clock);
            var request = new DeployRequest(new RenderSelection("eqiad", "mw-debug"), false, false, 20, options);
            var prepared = await service.PrepareAsync(request, farm.State, default);
            return await service.RunAsync(prepared.Plan, options, new EventLog(), default);
        }

        var first = await DeployAsync();
        Assert.True(first.Succeeded, first.Cause);
        farm.Write("deploy/images/default.yaml", $"images:\n  mediawiki: {NewImage}\n");
        var started = clock.GetUtcNow();
        var result = await DeployAsync();
        Assert.True(result.Succeeded, result.Cause);
        Assert.True(clock.GetUtcNow() - started >= TimeSpan.FromMinutes(19), $"the rollout took {(clock.GetUtcNow() - started).TotalMinutes:0} simulated minutes, not the twenty this test is about");
    }

    [Fact]
    public async Task Rollouts_are_waited_for_on_one_watch_per_namespace_and_kind_shared_by_the_releases_not_by_polling()
    {
        await using var farm = await FarmHarness.StartAsync();
        var metrics = farm.Clusters.LocalServer("eqiad")!.Metrics;

        // Three releases (canary, main, prometheus) roll out in one namespace, 363 pods between them.
        var (_, result) = await farm.DeployAsync(new RenderSelection("eqiad", "mw-web"));
        Assert.True(result!.Succeeded, result.Cause);
        Assert.Equal(3, result.Releases.Count(r => r.State == ReleaseState.Done));
        // A watch is counted when it ends, as kube-apiserver counts it: the deploy's end stopped them.
        await Cluster.EventuallyAsync(
            () => Task.FromResult(metrics.Total("WATCH", "deployments") + metrics.Total("WATCH", "replicasets") + metrics.Total("WATCH", "pods") >= 3 ? "ended" : null),
            "the deploy's watches to end");
        Assert.Equal(1, metrics.Total("WATCH", "deployments"));
        Assert.Equal(1, metrics.Total("WATCH", "replicasets"));
        Assert.Equal(1, metrics.Total("WATCH", "pods"));
        // Nothing is read again while waiting: one list per watch (and the plan's own lists), no Deployment fetched.
        Assert.Equal(0, metrics.Total("GET", "deployments"));
        Assert.Equal(1, metrics.Total("LIST", "pods"));
        Assert.InRange(metrics.Total("LIST", "replicasets"), 1, 2);
    }

    [Fact]
    public async Task An_api_outage_while_a_rollout_is_waited_for_pauses_the_deploy_and_it_resumes()
    {
        await using var farm = await FarmHarness.StartAsync();
        Assert.True((await farm.DeployAsync(new RenderSelection("eqiad", "mw-debug"))).Result!.Succeeded);
        farm.Write("groups/mw-debug.yaml", File.ReadAllText(Path.Combine(farm.Root, "groups/mw-debug.yaml")).Replace("replicas: 2", "replicas: 3", StringComparison.Ordinal));

        // Every request for ReplicaSets fails for a while: the applies go through, the rollout checks do not.
        farm.Clusters.LocalServer("eqiad")!.Faults.Add(new FaultInjector.HttpFault(503, 12, TimeSpan.Zero, null, "/replicasets"));
        var events = new EventLog();
        var (_, result) = await farm.DeployAsync(new RenderSelection("eqiad", "mw-debug", "pinkunicorn"), includeNeeds: true, observer: events);
        Assert.True(result!.Succeeded, result.Cause);
        Assert.Contains(events.Events, e => e.Message.StartsWith("the cluster's API is unreachable", StringComparison.Ordinal));
        Assert.Contains(events.Events, e => e.Message.Contains("answers again", StringComparison.Ordinal));
        Assert.DoesNotContain(result.Releases, r => r.State == ReleaseState.RolledBack);
    }

    [Fact]
    public async Task An_api_outage_longer_than_the_tolerance_stops_the_deploy_without_rolling_back_and_the_next_run_continues()
    {
        await using var farm = await FarmHarness.StartAsync();
        Assert.True((await farm.DeployAsync(new RenderSelection("eqiad", "mw-debug"))).Result!.Succeeded);
        farm.Write("groups/mw-debug.yaml", File.ReadAllText(Path.Combine(farm.Root, "groups/mw-debug.yaml")).Replace("replicas: 2", "replicas: 3", StringComparison.Ordinal));
        var server = farm.Clusters.LocalServer("eqiad")!;
        server.Faults.Add(new FaultInjector.HttpFault(503, 100_000, TimeSpan.Zero, null, "/replicasets"));
        var options = new ExecutorOptions { Actor = "test", Reason = "test", Wait = new WaitLimits { ApiOutageTolerance = TimeSpan.FromSeconds(1) } };
        var selection = new RenderSelection("eqiad", "mw-debug", "pinkunicorn");

        var stopped = await Assert.ThrowsAsync<DeployStoppedException>(() => farm.DeployAsync(selection, includeNeeds: true, options: options));
        Assert.StartsWith("eqiad/mw-debug/pinkunicorn: the cluster's API was unreachable for ", stopped.Message, StringComparison.Ordinal);
        Assert.Contains("Nothing was rolled back", stopped.Message, StringComparison.Ordinal);
        var deployment = new ObjectRef("apps/v1", "Deployment", "mw-debug", "mw-debug.eqiad.pinkunicorn");
        Assert.Equal(3, (await farm.Clusters["eqiad"].GetAsync(deployment, default))!["spec"]!["replicas"]!.GetValue<int>());

        // The API is back: the next run says the last one was interrupted, and finishes it.
        server.Faults.Clear();
        var (prepared, result) = await farm.DeployAsync(selection, includeNeeds: true);
        Assert.Contains(prepared.Notes, n => n.Contains("was interrupted", StringComparison.Ordinal));
        Assert.True(result!.Succeeded, result.Cause);
        Assert.Equal(3, (await farm.Clusters["eqiad"].GetAsync(deployment, default))!["spec"]!["replicas"]!.GetValue<int>());
    }
}

/// <summary>A release whose replicas an autoscaler owns.</summary>
public sealed class AutoscalingTests
{
    [Fact]
    public async Task An_autoscaled_release_renders_an_hpa_and_its_replicas_are_not_reset_by_a_deploy()
    {
        await using var farm = await FarmHarness.StartAsync();
        farm.Write("values/mw-debug.yaml", "php:\n  display-errors: true\nautoscaling:\n  min: 2\n  max: 8\n  target-cpu-percent: 60\n");
        var debug = new RenderSelection("eqiad", "mw-debug");
        var (prepared, result) = await farm.DeployAsync(debug);
        Assert.True(result!.Succeeded, result.Cause);
        var pinkunicorn = prepared.Plan.Actions.Single(a => a.Id.Release == "pinkunicorn");
        var hpa = Assert.Single(pinkunicorn.Desired, o => o["kind"]!.GetValue<string>() == "HorizontalPodAutoscaler");
        Assert.Equal(60, hpa["spec"]!["metrics"]![0]!["resource"]!["target"]!["averageUtilization"]!.GetValue<int>());
        Assert.Null(pinkunicorn.Desired.Single(o => o["kind"]!.GetValue<string>() == "Deployment")["spec"]!["replicas"]);

        // The autoscaler decides 5; a later deploy of the release changes its pods, not their number.
        var server = farm.Clusters.LocalServer("eqiad")!;
        using (var http = Cluster.TrustingHttp(server.Url, server.CertificateAuthorityPem!, server.AdminToken))
        {
            using var body = new StringContent("""{"namespace": "mw-debug", "name": "mw-debug.eqiad.pinkunicorn", "replicas": 5}""", System.Text.Encoding.UTF8, "application/json");
            (await http.PostAsync("/capstan/autoscale", body)).EnsureSuccessStatusCode();
        }

        var deployment = new ObjectRef("apps/v1", "Deployment", "mw-debug", "mw-debug.eqiad.pinkunicorn");
        await Cluster.EventuallyAsync(async () => (await farm.Clusters["eqiad"].GetAsync(deployment, default))?["spec"]?["replicas"]?.GetValue<int>() == 5 ? "5" : null, "the autoscaler's 5 replicas");
        farm.Write("values/mw-debug.yaml", "php:\n  display-errors: false\nautoscaling:\n  min: 2\n  max: 8\n  target-cpu-percent: 60\n");
        Assert.True((await farm.DeployAsync(debug)).Result!.Succeeded);
        Assert.Equal(5, (await farm.Clusters["eqiad"].GetAsync(deployment, default))!["spec"]!["replicas"]!.GetValue<int>());
    }

    [Fact]
    public async Task Turning_autoscaling_on_for_a_running_release_hands_its_replicas_over_without_a_dip()
    {
        await using var farm = await FarmHarness.StartAsync();
        farm.Write("groups/mw-debug.yaml", File.ReadAllText(Path.Combine(farm.Root, "groups/mw-debug.yaml")).Replace("replicas: 2", "replicas: 4", StringComparison.Ordinal));
        var debug = new RenderSelection("eqiad", "mw-debug");
        Assert.True((await farm.DeployAsync(debug)).Result!.Succeeded);

        // Every version of the Deployment the server stores while autoscaling is turned on is watched.
        var client = farm.Clusters["eqiad"];
        var deployment = new ObjectRef("apps/v1", "Deployment", "mw-debug", "mw-debug.eqiad.pinkunicorn");
        var from = (await client.GetAsync(deployment, default))!["metadata"]!["resourceVersion"]!.GetValue<string>();
        var seen = new List<int>();
        var versions = new HashSet<string>(StringComparer.Ordinal);
        using var stop = new CancellationTokenSource();
        var watching = Task.Run(async () =>
        {
            try
            {
                await foreach (var e in client.WatchAsync("apps/v1", "Deployment", "mw-debug", null, from, stop.Token))
                {
                    if (e.Object["metadata"]?["name"]?.GetValue<string>() == deployment.Name && e.Object["spec"]?["replicas"] is { } replicas)
                    {
                        lock (seen)
                        {
                            seen.Add(replicas.GetValue<int>());
                            versions.Add(e.ResourceVersion!);
                        }
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        });

        farm.Write("values/mw-debug.yaml", "php:\n  display-errors: true\nautoscaling:\n  min: 3\n  max: 8\n  target-cpu-percent: 60\n");
        var events = new EventLog();
        var (_, result) = await farm.DeployAsync(debug, observer: events);
        Assert.True(result!.Succeeded, result.Cause);
        var live = (await client.GetAsync(deployment, default))!;
        var lastVersion = live["metadata"]!["resourceVersion"]!.GetValue<string>();
        await Cluster.EventuallyAsync(() => { lock (seen) { return Task.FromResult(versions.Contains(lastVersion) ? "seen" : null); } }, "the watch's events up to the live version");
        await stop.CancelAsync();
        await watching;

        // The count never fell below the autoscaler's minimum (without the handover the server sets 1 for a moment).
        Assert.All(seen, r => Assert.True(r >= 3, $"replicas went to {r}: {string.Join(" → ", seen)}"));
        var owners = (live["metadata"]!["managedFields"] as System.Text.Json.Nodes.JsonArray)!
            .Where(e => e?["fieldsV1"]?["f:spec"]?["f:replicas"] is not null).Select(e => e!["manager"]!.GetValue<string>()).ToList();
        Assert.DoesNotContain("capstan", owners);
        Assert.Contains(events.Events, e => e.Message == "handing Deployment mw-debug.eqiad.pinkunicorn's replicas (4) over to its autoscaler");
    }

    [Theory]
    [InlineData("autoscaling:\n  min: 4\n  max: 2\n", "values/mw-debug.yaml:3:", "autoscaling.max (2) must not be below autoscaling.min (4)")]
    [InlineData("autoscaling:\n  min: 2\n", "values/mw-debug.yaml:2:3: error:", "autoscaling needs both min and max")]
    public async Task Bad_autoscaling_values_are_refused_with_file_and_line(string values, string where, string message)
    {
        await using var farm = await FarmHarness.StartAsync();
        farm.Write("values/mw-debug.yaml", values);
        var error = await Assert.ThrowsAsync<Core.Diagnostics.RepoValidationException>(() => farm.DeployAsync(new RenderSelection("eqiad", "mw-debug")));
        Assert.Contains(error.Diagnostics, d => d.ToString().Contains(where, StringComparison.Ordinal) && d.ToString().Contains(message, StringComparison.Ordinal));
    }
}

/// <summary>manifests releases with kinds the renderer has no type for.</summary>
public sealed class ManifestsKindTests
{
    [Fact]
    public async Task A_cluster_scoped_object_in_a_manifests_release_is_deployed_found_again_and_pruned()
    {
        await using var farm = await FarmHarness.StartAsync();
        var limits = new RenderSelection("eqiad", "mw-debug", "limits");
        farm.Write("manifests/limits/reader.yaml", "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: mw-debug-reader\nrules:\n- apiGroups: [\"\"]\n  resources: [pods]\n  verbs: [get, list]\n");
        var (_, first) = await farm.DeployAsync(limits);
        Assert.True(first!.Succeeded, first.Cause);
        var role = new ObjectRef("rbac.authorization.k8s.io/v1", "ClusterRole", null, "mw-debug-reader");
        var live = await farm.Clusters["eqiad"].GetAsync(role, default);
        Assert.Equal("limits", live!["metadata"]!["labels"]![ObjectLabels.ReleaseLabel]!.GetValue<string>());
        Assert.Null(live["metadata"]!["namespace"]);

        // Found again as the release's (it has no namespace): the next plan changes nothing.
        var (again, result) = await farm.DeployAsync(limits);
        Assert.True(again.Plan.IsNoOp, string.Join("; ", again.Plan.Actions.Select(a => $"{a.Id}: {a.Change} {string.Join(",", a.Apply.Select(c => $"{c.Kind}/{c.Name} {c.Action} {c.Why}"))}")));
        Assert.Null(result);

        File.Delete(Path.Combine(farm.Root, "manifests/limits/reader.yaml"));
        var (pruned, _) = await farm.DeployAsync(limits);
        Assert.Contains(pruned.Plan.Actions.Single().Prune, p => p.Kind == "ClusterRole" && p.Name == "mw-debug-reader");
        Assert.Null(await farm.Clusters["eqiad"].GetAsync(role, default));
    }

    [Fact]
    public async Task A_custom_resource_is_deployed_with_its_definition_found_again_and_pruned()
    {
        await using var farm = await FarmHarness.StartAsync();
        var limits = new RenderSelection("eqiad", "mw-debug", "limits");
        farm.Write("manifests/limits/crd.yaml", """
            apiVersion: apiextensions.k8s.io/v1
            kind: CustomResourceDefinition
            metadata: {name: widgets.example.org}
            spec:
              group: example.org
              scope: Namespaced
              names: {plural: widgets, kind: Widget}
              versions:
              - name: v1
                served: true
                storage: true
                schema:
                  openAPIV3Schema:
                    type: object
                    properties:
                      spec:
                        type: object
                        properties:
                          size: {type: integer}
                          colour: {type: string, default: red}
            """);
        // Sorted before the definition's file: the definition is still applied (and established) first.
        farm.Write("manifests/limits/a-widget.yaml", "apiVersion: example.org/v1\nkind: Widget\nmetadata:\n  name: blue\nspec:\n  size: 3\n");
        var (_, first) = await farm.DeployAsync(limits);
        Assert.True(first!.Succeeded, first.Cause);
        var eqiad = farm.Clusters["eqiad"];
        var widget = new ObjectRef("example.org/v1", "Widget", "mw-debug", "blue");
        var live = await eqiad.GetAsync(widget, default);
        Assert.Equal("limits", live!["metadata"]!["labels"]![ObjectLabels.ReleaseLabel]!.GetValue<string>());
        Assert.Equal("red", live["spec"]!["colour"]!.GetValue<string>());

        // Found again (its server-set default is no change): the next plan changes nothing.
        var (again, result) = await farm.DeployAsync(limits);
        Assert.True(again.Plan.IsNoOp, string.Join("; ", again.Plan.Actions.Select(a => $"{a.Id}: {a.Change} {string.Join(",", a.Apply.Select(c => $"{c.Kind}/{c.Name} {c.Action} {c.Why}"))}")));
        Assert.Null(result);

        File.Delete(Path.Combine(farm.Root, "manifests/limits/a-widget.yaml"));
        var (pruned, prunedResult) = await farm.DeployAsync(limits);
        Assert.True(prunedResult!.Succeeded, prunedResult.Cause);
        Assert.Contains(pruned.Plan.Actions.Single().Prune, p => p.Kind == "Widget" && p.Name == "blue");
        Assert.Null(await eqiad.GetAsync(widget, default));
        Assert.NotNull(await eqiad.GetAsync(new ObjectRef("apiextensions.k8s.io/v1", "CustomResourceDefinition", null, "widgets.example.org"), default));
    }

    [Fact]
    public async Task A_kind_the_cluster_does_not_serve_is_a_clear_error_before_anything_is_applied()
    {
        await using var farm = await FarmHarness.StartAsync();
        farm.Write("manifests/limits/widget.yaml", "apiVersion: widgets.example.org/v1\nkind: Widget\nmetadata:\n  name: blue\nspec:\n  size: 3\n");
        var error = await Assert.ThrowsAsync<Core.Diagnostics.UserInputException>(() => farm.DeployAsync(new RenderSelection("eqiad", "mw-debug", "limits")));
        Assert.Equal(
            $"eqiad/mw-debug/limits: Widget blue has apiVersion widgets.example.org/v1, which the cluster at {farm.Clusters["eqiad"].Server} does not serve (for a custom resource, install its CustomResourceDefinition first, or deploy it with the resource)",
            error.Message);
        Assert.DoesNotContain((await farm.Clusters["eqiad"].ListAsync("v1", "Namespace", null, null, default)).Items, n => n["metadata"]!["name"]!.GetValue<string>() == "mw-debug");
    }
}
