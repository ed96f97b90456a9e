using System.Collections.Immutable;
using System.Text.Json.Nodes;
using Capstan.Core.Config;
using Capstan.Core.Kubernetes;
using Capstan.Core.Rendering;
using Capstan.Core.State;

namespace Capstan.LocalCluster.Tests;

/// <summary>Rendered releases of the example farm on the local cluster: the failure modes of the real system.</summary>
public sealed class ScenarioTests
{
    private static readonly Lazy<(FarmModel Model, DirectoryRepoFiles Files)> Farm = new(() =>
    {
        var files = new DirectoryRepoFiles(Path.Combine(Root(), "examples", "wikifarm"));
        return (RepoLoader.Load(files).Model, files);
    });

    private static IReadOnlyList<JsonObject> Render(string ns, string release)
    {
        var state = new DynamicState("eqiad", ImmutableSortedDictionary<string, string?>.Empty.WithComparers(StringComparer.Ordinal), true);
        var rendered = new FarmRenderer(Farm.Value.Model, Farm.Value.Files).Render(new RenderSelection("eqiad", ns, release), state);
        return [.. Assert.Single(rendered.Releases).Objects.Select(KubeSerializer.ToNode)];
    }

    private static async Task ApplyAllAsync(Cluster cluster, IEnumerable<JsonObject> objects)
    {
        foreach (var obj in objects)
        {
            await cluster.Client.ApplyAsync(obj, false, false, default);
        }
    }

    private static async Task<List<JsonObject>> PodsAsync(Cluster cluster, string ns, string selector) =>
        [.. (await cluster.Client.ListAsync("v1", "Pod", ns, selector, default)).Items];

    private static string? Waiting(JsonObject pod, string container) =>
        (pod["status"]?["containerStatuses"] as JsonArray ?? []).FirstOrDefault(c => c?["name"]?.GetValue<string>() == container)?["state"]?["waiting"]?["reason"]?.GetValue<string>();

    /// <summary>Deployment app/web with one container of the given image.</summary>
    private static string WebDeployment(int replicas, string image, string strategy = "") => $$$"""
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web, namespace: app}
        spec:
          replicas: {{{replicas}}}
          {{{strategy}}}
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec:
              containers: [{name: main, image: "{{{image}}}"}]
        """;

    [Fact]
    public async Task A_mediawiki_release_without_its_statsd_service_crash_loops()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("mw-web");
        await ApplyAllAsync(cluster, Render("mw-web", "canary"));
        var pods = await Cluster.EventuallyAsync(async () =>
        {
            var list = await PodsAsync(cluster, "mw-web", "release=canary");
            return list.Count == 11 && list.All(p => Waiting(p, "mediawiki-canary-app") == "CrashLoopBackOff") ? list : null;
        }, "canary pods crash-looping");
        var message = pods[0]["status"]!["containerStatuses"]!.AsArray().First(c => c!["name"]!.GetValue<string>() == "mediawiki-canary-app")!["state"]!["waiting"]!["message"]!.GetValue<string>();
        Assert.Contains("unresolved $(STATSD_EXPORTER_PROMETHEUS_SERVICE_HOST)", message, StringComparison.Ordinal);

        var status = await cluster.Client.GetRolloutStatusAsync("mw-web", "mw-web.eqiad.canary", default);
        Assert.False(status.Done);
        Assert.StartsWith("CrashLoopBackOff on mediawiki-canary-app", status.PodProblem, StringComparison.Ordinal);

        // Creating the Service afterwards does not mend the pods that exist: their environment was fixed at start.
        await ApplyAllAsync(cluster, Render("mw-web", "prometheus"));
        await cluster.Server.QuietAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.All(await PodsAsync(cluster, "mw-web", "release=canary"), p => Assert.Equal("CrashLoopBackOff", Waiting(p, "mediawiki-canary-app")));
    }

    [Fact]
    public async Task With_the_statsd_service_first_the_release_becomes_ready()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("mw-web");
        await ApplyAllAsync(cluster, Render("mw-web", "prometheus"));
        await ApplyAllAsync(cluster, Render("mw-web", "canary"));
        var status = await Cluster.EventuallyAsync(async () =>
        {
            var s = await cluster.Client.GetRolloutStatusAsync("mw-web", "mw-web.eqiad.canary", default);
            return s.Done ? s : null;
        }, "canary rolled out");
        Assert.Equal(11, status.Available);
        Assert.Null(status.PodProblem);
    }

    [Fact]
    public async Task A_missing_config_map_leaves_pods_in_create_container_config_error()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("mw-web");
        await ApplyAllAsync(cluster, Render("mw-web", "prometheus"));
        await ApplyAllAsync(cluster, Render("mw-web", "canary").Where(o => o["metadata"]!["name"]!.GetValue<string>() != "mediawiki-canary-php-envvars"));
        var status = await Cluster.EventuallyAsync(async () =>
        {
            var s = await cluster.Client.GetRolloutStatusAsync("mw-web", "mw-web.eqiad.canary", default);
            return s.PodProblem is not null ? s : null;
        }, "pod problem");
        Assert.Equal("CreateContainerConfigError on mediawiki-canary-tls-proxy: configmap \"mediawiki-canary-php-envvars\" not found", status.PodProblem);
    }

    [Fact]
    public async Task A_missing_image_gives_image_pull_back_off_and_the_rollout_fails_at_its_deadline()
    {
        var clock = new ManualClock(new DateTimeOffset(2026, 11, 21, 12, 0, 0, TimeSpan.Zero));
        await using var cluster = await Cluster.StartAsync(new LocalClusterOptions { Time = clock });
        cluster.Server.Images.Set(["registry.example/proxy:1"]);
        await cluster.NamespaceAsync("app");
        await cluster.ApplyAsync("""
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web, namespace: app}
            spec:
              replicas: 2
              progressDeadlineSeconds: 60
              selector: {matchLabels: {app: web}}
              template:
                metadata: {labels: {app: web}}
                spec:
                  containers: [{name: proxy, image: registry.example/proxy:1}, {name: main, image: registry.example/web:missing}]
            """);
        await Cluster.EventuallyAsync(async () => (await cluster.Client.GetRolloutStatusAsync("app", "web", default)).PodProblem?.StartsWith("ErrImagePull", StringComparison.Ordinal) == true ? "ok" : null, "ErrImagePull");
        clock.Advance(TimeSpan.FromSeconds(5));
        cluster.Server.RunControllers();
        clock.Advance(TimeSpan.FromSeconds(61));
        cluster.Server.RunControllers();
        var status = await Cluster.EventuallyAsync(async () =>
        {
            cluster.Server.RunControllers();
            var s = await cluster.Client.GetRolloutStatusAsync("app", "web", default);
            return s.Failed ? s : null;
        }, "progress deadline exceeded");
        Assert.StartsWith("ImagePullBackOff on main: Back-off pulling image \"registry.example/web:missing\"", status.PodProblem, StringComparison.Ordinal);
        Assert.Contains("exceeded its progress deadline", status.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_cluster_of_a_directory_pulls_only_the_images_its_list_names_and_reads_the_list_again_when_it_changes()
    {
        var dir = Path.Combine(Path.GetTempPath(), "capstan-images-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            await using (var cluster = await Cluster.StartAsync(new LocalClusterOptions { DataDirectory = dir, SeedImages = () => ["registry.example/proxy:1"] }))
            {
                var list = Path.Combine(dir, ImageCatalog.FileName);
                Assert.Equal(["registry.example/proxy:1"], ImageCatalog.Read(list));
                if (!OperatingSystem.IsWindows())
                {
                    Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(list));
                }
                await cluster.NamespaceAsync("app");
                await cluster.ApplyAsync("""
                    apiVersion: apps/v1
                    kind: Deployment
                    metadata: {name: web, namespace: app}
                    spec:
                      replicas: 1
                      selector: {matchLabels: {app: web}}
                      template:
                        metadata: {labels: {app: web}}
                        spec:
                          containers: [{name: proxy, image: registry.example/proxy:1}, {name: main, image: "registry.example/web:2026-12-01"}]
                    """);
                var failing = await Cluster.EventuallyAsync(async () => (await cluster.Client.GetRolloutStatusAsync("app", "web", default)).PodProblem is { } problem ? problem : null, "a pull error");
                Assert.Contains("main: rpc error: code = Unknown desc = reading manifest 2026-12-01 in registry.example/web: manifest unknown", failing, StringComparison.Ordinal);

                // Published: the list names it (capstan local images add writes the same file); the pod starts.
                ImageCatalog.Write(list, ["registry.example/proxy:1", "registry.example/web:2026-12-01"]);
                await Cluster.EventuallyAsync(async () => (await cluster.Client.GetRolloutStatusAsync("app", "web", default)).Done ? "done" : null, "the rollout after the image was published");
            }

            // The list is kept: a cluster started again does not seed it again.
            await using var again = await Cluster.StartAsync(new LocalClusterOptions { DataDirectory = dir, SeedImages = () => throw new InvalidOperationException("seeded twice") });
            Assert.True(again.Server.Images.Exists("registry.example/web:2026-12-01"));
            Assert.False(again.Server.Images.Exists("registry.example/web:2026-12-02"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task A_rolling_update_moves_every_replica_to_the_new_revision()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("app");
        const string Strategy = "strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}";
        await cluster.ApplyAsync(WebDeployment(6, "web:1", Strategy));
        await cluster.RolledOutAsync("app", "web", "first rollout");
        await cluster.ApplyAsync(WebDeployment(6, "web:2", Strategy));
        var status = await cluster.RolledOutAsync("app", "web", "second rollout");
        var pods = await PodsAsync(cluster, "app", "app=web");
        Assert.Equal(6, pods.Count);
        Assert.All(pods, p => Assert.Equal("web:2", p["spec"]!["containers"]![0]!["image"]!.GetValue<string>()));
        Assert.StartsWith("web-", status.NewReplicaSet, StringComparison.Ordinal);
        var sets = (await cluster.Client.ListAsync("apps/v1", "ReplicaSet", "app", null, default)).Items;
        Assert.Equal(2, sets.Count);
        Assert.Contains(sets, rs => rs["spec"]!["replicas"]!.GetValue<int>() == 0);
    }

    [Fact]
    public async Task Returning_to_an_earlier_template_reuses_its_replica_set_and_the_deployment_follows_its_revision()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("app");
        await cluster.ApplyAsync(WebDeployment(3, "web:1"));
        var first = await cluster.RolledOutAsync("app", "web", "first rollout");
        await cluster.ApplyAsync(WebDeployment(3, "web:2"));
        var second = await cluster.RolledOutAsync("app", "web", "second rollout");
        Assert.NotEqual(first.NewReplicaSet, second.NewReplicaSet);

        await cluster.ApplyAsync(WebDeployment(3, "web:1"));
        var back = await cluster.RolledOutAsync("app", "web", "rollout back to the first template");
        Assert.Equal(first.NewReplicaSet, back.NewReplicaSet);
        Assert.Equal(3, back.Available);
        var deployment = (await cluster.Client.GetAsync(new ObjectRef("apps/v1", "Deployment", "app", "web"), default))!;
        var reused = (await cluster.Client.GetAsync(new ObjectRef("apps/v1", "ReplicaSet", "app", first.NewReplicaSet!), default))!;
        Assert.Equal("3", deployment["metadata"]!["annotations"]!["deployment.kubernetes.io/revision"]!.GetValue<string>());
        Assert.Equal("3", reused["metadata"]!["annotations"]!["deployment.kubernetes.io/revision"]!.GetValue<string>());
        Assert.All(await PodsAsync(cluster, "app", "app=web"), p =>
        {
            Assert.Equal("web:1", p["spec"]!["containers"]![0]!["image"]!.GetValue<string>());
            Assert.True(
                p["status"]!["startTime"]!.GetValue<DateTimeOffset>() >= p["metadata"]!["creationTimestamp"]!.GetValue<DateTimeOffset>(),
                $"a pod starts after it is created: {p["status"]!["startTime"]} < {p["metadata"]!["creationTimestamp"]}");
        });
    }

    [Fact]
    public async Task Deletion_propagates_to_dependents_as_asked()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("app");
        foreach (var (name, propagation) in new[] { ("bg", Propagation.Background), ("fg", Propagation.Foreground), ("orphan", Propagation.Orphan) })
        {
            await cluster.ApplyAsync($$$"""
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: {{{name}}}, namespace: app}
                spec:
                  replicas: 2
                  selector: {matchLabels: {app: {{{name}}}}}
                  template:
                    metadata: {labels: {app: {{{name}}}}}
                    spec: {containers: [{name: main, image: x}]}
                """);
            await Cluster.EventuallyAsync(async () => (await PodsAsync(cluster, "app", $"app={name}")).Count == 2 ? "ok" : null, $"{name} pods");
            Assert.True(await cluster.Client.DeleteAsync(new ObjectRef("apps/v1", "Deployment", "app", name), propagation, default));
        }

        await Cluster.EventuallyAsync(async () => (await PodsAsync(cluster, "app", "app=bg")).Count == 0 ? "ok" : null, "background dependents gone");
        await Cluster.EventuallyAsync(async () => (await PodsAsync(cluster, "app", "app=fg")).Count == 0 && await cluster.Client.GetAsync(new ObjectRef("apps/v1", "Deployment", "app", "fg"), default) is null ? "ok" : null, "foreground deletion finished");
        await cluster.Server.QuietAsync().WaitAsync(TimeSpan.FromSeconds(30));
        var orphans = (await cluster.Client.ListAsync("apps/v1", "ReplicaSet", "app", "app=orphan", default)).Items;
        var orphan = Assert.Single(orphans);
        Assert.Empty(orphan["metadata"]!["ownerReferences"] as JsonArray ?? []);
        Assert.Equal(2, (await PodsAsync(cluster, "app", "app=orphan")).Count);
    }

    [Fact]
    public async Task Jobs_run_to_completion_or_fail_by_injection()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("mw-script");
        const string Job = """
            apiVersion: batch/v1
            kind: Job
            metadata: {name: NAME, namespace: mw-script, labels: {script: NAME}}
            spec:
              backoffLimit: 0
              template:
                metadata: {labels: {script: NAME}}
                spec: {restartPolicy: Never, containers: [{name: main, image: x}]}
            """;
        cluster.Server.Faults.Add(new FaultInjector.PodFault(FaultInjector.PodFaultKind.FailJob, "mw-script", LocalCluster.Store.LabelQuery.Parse("script=bad"), "script=bad", TimeSpan.Zero));
        await cluster.ApplyAsync(Job.Replace("NAME", "good", StringComparison.Ordinal));
        await cluster.ApplyAsync(Job.Replace("NAME", "bad", StringComparison.Ordinal));
        await Cluster.EventuallyAsync(async () => Condition(await cluster.Client.GetAsync(new ObjectRef("batch/v1", "Job", "mw-script", "good"), default), "Complete"), "good job complete");
        var failed = await Cluster.EventuallyAsync(async () => Condition(await cluster.Client.GetAsync(new ObjectRef("batch/v1", "Job", "mw-script", "bad"), default), "Failed"), "bad job failed");
        Assert.Equal("BackoffLimitExceeded", failed["reason"]!.GetValue<string>());
    }

    [Fact]
    public async Task Cron_jobs_start_jobs_on_schedule_and_honour_suspend_and_replace()
    {
        var clock = new ManualClock(new DateTimeOffset(2026, 11, 21, 12, 0, 30, TimeSpan.Zero));
        await using var cluster = await Cluster.StartAsync(new LocalClusterOptions { Time = clock, Timing = SimulationTiming.Instant with { JobRun = TimeSpan.FromHours(1) } });
        await cluster.NamespaceAsync("mw-cron");
        const string CronJob = """
            apiVersion: batch/v1
            kind: CronJob
            metadata: {name: NAME, namespace: mw-cron}
            spec:
              schedule: "*/5 * * * *"
              concurrencyPolicy: Replace
              suspend: SUSPEND
              jobTemplate:
                spec:
                  backoffLimit: 0
                  template:
                    metadata: {labels: {cronjob: NAME}}
                    spec: {restartPolicy: Never, containers: [{name: main, image: x}]}
            """;
        await cluster.ApplyAsync(CronJob.Replace("NAME", "purge", StringComparison.Ordinal).Replace("SUSPEND", "false", StringComparison.Ordinal));
        await cluster.ApplyAsync(CronJob.Replace("NAME", "held", StringComparison.Ordinal).Replace("SUSPEND", "true", StringComparison.Ordinal));
        cluster.Server.RunControllers();
        Assert.Empty((await cluster.Client.ListAsync("batch/v1", "Job", "mw-cron", null, default)).Items);

        clock.Advance(TimeSpan.FromMinutes(5));
        cluster.Server.RunControllers();
        var first = Assert.Single((await cluster.Client.ListAsync("batch/v1", "Job", "mw-cron", null, default)).Items);
        Assert.Equal("purge-29921045", first["metadata"]!["name"]!.GetValue<string>());

        // The first job still runs (an hour-long job); Replace deletes it when the next run is due.
        clock.Advance(TimeSpan.FromMinutes(5));
        cluster.Server.RunControllers();
        cluster.Server.RunControllers();
        var jobs = await Cluster.EventuallyAsync(async () =>
        {
            var items = (await cluster.Client.ListAsync("batch/v1", "Job", "mw-cron", null, default)).Items;
            return items.Count == 1 && items[0]["metadata"]!["name"]!.GetValue<string>() == "purge-29921050" ? items : null;
        }, "replaced job");
        Assert.DoesNotContain(jobs, j => j["metadata"]!["name"]!.GetValue<string>().StartsWith("held", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Objects_survive_a_restart_of_the_server()
    {
        var dir = Path.Combine(Path.GetTempPath(), "capstan-cluster-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using (var cluster = await Cluster.StartAsync(new LocalClusterOptions { DataDirectory = dir }))
            {
                await cluster.NamespaceAsync("app");
                await cluster.ApplyAsync("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kept, namespace: app}\ndata: {a: b}\n");
            }

            await using (var again = await Cluster.StartAsync(new LocalClusterOptions { DataDirectory = dir }))
            {
                var kept = await again.Client.GetAsync(new ObjectRef("v1", "ConfigMap", "app", "kept"), default);
                Assert.Equal("b", kept!["data"]!["a"]!.GetValue<string>());
                var created = await again.ApplyAsync("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: new, namespace: app}\n");
                Assert.True(long.Parse(created["metadata"]!["resourceVersion"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture) >
                            long.Parse(kept["metadata"]!["resourceVersion"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture));
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task A_second_process_on_the_same_cluster_talks_to_the_first_ones_server()
    {
        var dir = Path.Combine(Path.GetTempPath(), "capstan-host-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using var first = await LocalClusterHost.OpenAsync(dir, new LocalClusterOptions(), requireOwnServer: true, default);
            await using var second = await LocalClusterHost.OpenAsync(dir, new LocalClusterOptions(), requireOwnServer: false, default);
            Assert.Null(second.Server);
            Assert.Equal(first.Url, second.Url);
            var ex = await Assert.ThrowsAsync<Core.Diagnostics.UserInputException>(() => LocalClusterHost.OpenAsync(dir, new LocalClusterOptions(), requireOwnServer: true, default));
            Assert.Contains("already runs", ex.Message, StringComparison.Ordinal);
            Assert.Throws<Core.Diagnostics.UserInputException>(() => LocalClusterHost.Reset(dir));
        }
        finally
        {
            LocalClusterHost.Reset(dir);
        }
    }

    private static JsonObject? Condition(JsonObject? obj, string type) =>
        (obj?["status"]?["conditions"] as JsonArray ?? []).FirstOrDefault(c => c?["type"]?.GetValue<string>() == type && c["status"]?.GetValue<string>() == "True") as JsonObject;

    private static string Root()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Capstan.slnx")))
        {
            dir = dir.Parent;
        }

        return dir!.FullName;
    }
}
