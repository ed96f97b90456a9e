using System.Text;
using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Tests;

/// <summary>Graceful termination, finalizers and Recreate rollouts, on a manual clock so each step is observed.</summary>
public sealed class LifecycleTests
{
    private static readonly ObjectRef Web = new("apps/v1", "Deployment", "app", "web");

    private static async Task<(Cluster Cluster, ManualClock Clock)> StartAsync()
    {
        var clock = new ManualClock(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var cluster = await Cluster.StartAsync(new LocalClusterOptions { Time = clock, Timing = SimulationTiming.Instant with { PodTerminate = TimeSpan.FromHours(1) } });
        await cluster.NamespaceAsync("app");
        return (cluster, clock);
    }

    private static async Task<List<JsonObject>> PodsAsync(Cluster cluster) => [.. (await cluster.Client.ListAsync("v1", "Pod", "app", "app=web", default)).Items];

    private static string Image(JsonObject pod) => pod["spec"]!["containers"]![0]!["image"]!.GetValue<string>();

    private static bool Terminating(JsonObject pod) => pod["metadata"]!["deletionTimestamp"] is not null;

    private static string Recreate(string image) => $$$"""
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web, namespace: app}
        spec:
          replicas: 2
          strategy: {type: Recreate}
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec:
              terminationGracePeriodSeconds: 30
              containers: [{name: main, image: "{{{image}}}"}]
        """;

    [Fact]
    public async Task A_recreate_rollout_waits_until_the_old_pods_have_terminated()
    {
        var (cluster, clock) = await StartAsync();
        await using var _ = cluster;
        await cluster.ApplyAsync(Recreate("web:1"));
        await cluster.RolledOutAsync("app", "web", "first rollout");

        await cluster.ApplyAsync(Recreate("web:2"));
        var terminating = await Cluster.EventuallyAsync(async () =>
        {
            var pods = await PodsAsync(cluster);
            return pods.Count == 2 && pods.All(Terminating) ? pods : null;
        }, "the old pods terminating");
        Assert.All(terminating, p => Assert.Equal("web:1", Image(p)));
        Assert.All(terminating, p => Assert.Equal(30, p["metadata"]!["deletionGracePeriodSeconds"]!.GetValue<int>()));
        Assert.All(terminating, p => Assert.Equal("False", p["status"]!["conditions"]!.AsArray().First(c => c!["type"]!.GetValue<string>() == "Ready")!["status"]!.GetValue<string>()));

        // However often the controllers run, no new pod starts while the old ones are still terminating.
        for (var i = 0; i < 5; i++)
        {
            cluster.Server.RunControllers();
        }

        Assert.DoesNotContain(await PodsAsync(cluster), p => Image(p) == "web:2");
        Assert.False((await cluster.Client.GetRolloutStatusAsync("app", "web", default)).Done);

        clock.Advance(TimeSpan.FromSeconds(31));
        await cluster.RolledOutAsync("app", "web", "second rollout");
        var pods = await PodsAsync(cluster);
        Assert.Equal(2, pods.Count);
        Assert.All(pods, p => Assert.Equal("web:2", Image(p)));
        Assert.All(pods, p => Assert.False(Terminating(p)));
    }

    [Fact]
    public async Task A_deleted_pod_terminates_for_its_grace_period_and_a_zero_grace_delete_removes_it_at_once()
    {
        var (cluster, clock) = await StartAsync();
        await using var _ = cluster;
        foreach (var name in new[] { "slow", "fast" })
        {
            await cluster.ApplyAsync($"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: app}}\nspec: {{terminationGracePeriodSeconds: 10, containers: [{{name: main, image: x}}]}}\n");
        }

        var deleted = await cluster.Client.DeleteAsync(new ObjectRef("v1", "Pod", "app", "slow"), Propagation.Background, default);
        Assert.True(deleted);
        var slow = (await cluster.Client.GetAsync(new ObjectRef("v1", "Pod", "app", "slow"), default))!;
        Assert.Equal("2026-01-01T00:00:10Z", slow["metadata"]!["deletionTimestamp"]!.GetValue<string>());

        using var http = cluster.Http();
        using var request = new HttpRequestMessage(HttpMethod.Delete, "/api/v1/namespaces/app/pods/fast") { Content = new StringContent("""{"gracePeriodSeconds": 0}""", Encoding.UTF8, "application/json") };
        (await http.SendAsync(request)).EnsureSuccessStatusCode();
        Assert.Null(await cluster.Client.GetAsync(new ObjectRef("v1", "Pod", "app", "fast"), default));

        cluster.Server.RunControllers();
        Assert.NotNull(await cluster.Client.GetAsync(new ObjectRef("v1", "Pod", "app", "slow"), default));
        clock.Advance(TimeSpan.FromSeconds(10));
        cluster.Server.RunControllers();
        Assert.Null(await cluster.Client.GetAsync(new ObjectRef("v1", "Pod", "app", "slow"), default));
    }

    [Fact]
    public async Task Finalizers_hold_a_deletion_until_they_are_removed()
    {
        var (cluster, _) = await StartAsync();
        await using var __ = cluster;
        var held = new ObjectRef("v1", "ConfigMap", "app", "held");
        await cluster.ApplyAsync("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: held, namespace: app, finalizers: [example.com/backup]}\ndata: {a: b}\n");
        Assert.True(await cluster.Client.DeleteAsync(held, Propagation.Background, default));
        for (var i = 0; i < 3; i++)
        {
            cluster.Server.RunControllers();
        }

        var terminating = (await cluster.Client.GetAsync(held, default))!;
        Assert.NotNull(terminating["metadata"]!["deletionTimestamp"]);

        async Task<int> PatchAsync(string json) =>
            (await cluster.PatchAsync("/api/v1/namespaces/app/configmaps/held", "application/merge-patch+json", json)).Code;

        Assert.Equal(422, await PatchAsync("""{"metadata": {"finalizers": ["example.com/backup", "example.com/another"]}}"""));
        Assert.Equal(200, await PatchAsync("""{"metadata": {"finalizers": null}}"""));
        Assert.Null(await cluster.Client.GetAsync(held, default));
    }
}

/// <summary>Controllers notice writes after a latency, so a status lags its spec as on a real cluster.</summary>
public sealed class ControllerLatencyTests
{
    [Fact]
    public async Task Observed_generation_lags_a_write_until_the_controller_has_seen_it()
    {
        await using var cluster = await Cluster.StartAsync(new LocalClusterOptions { Timing = SimulationTiming.Instant with { ControllerLatency = TimeSpan.FromSeconds(2) } });
        await cluster.NamespaceAsync("app");
        const string Yaml = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: app}\nspec: {replicas: 1, selector: {matchLabels: {app: web}}, template: {metadata: {labels: {app: web}}, spec: {containers: [{name: main, image: \"web:1\"}]}}}\n";
        await cluster.ApplyAsync(Yaml);
        await cluster.RolledOutAsync("app", "web", "first rollout");

        var written = await cluster.ApplyAsync(Yaml.Replace("web:1", "web:2", StringComparison.Ordinal));
        Assert.Equal(2, written["metadata"]!["generation"]!.GetValue<int>());
        Assert.Equal(1, written["status"]!["observedGeneration"]!.GetValue<int>());
        Assert.False((await cluster.Client.GetRolloutStatusAsync("app", "web", default)).Done);
        await cluster.RolledOutAsync("app", "web", "second rollout");
    }
}

/// <summary>Controllers work on what a write touches, not on every object of the cluster.</summary>
public sealed class ControllerWorkTests
{
    [Fact]
    public async Task A_write_to_one_deployment_makes_the_controllers_look_at_it_and_not_at_the_others()
    {
        var clock = new ManualClock(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        await using var cluster = await Cluster.StartAsync(new LocalClusterOptions { Time = clock });
        await cluster.NamespaceAsync("app");
        static string Web(int i, string image) =>
            $"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web-{i}, namespace: app}}\nspec: {{replicas: 2, selector: {{matchLabels: {{app: web-{i}}}}}, template: {{metadata: {{labels: {{app: web-{i}}}}}, spec: {{containers: [{{name: main, image: \"{image}\"}}]}}}}}}\n";
        for (var i = 0; i < 30; i++)
        {
            await cluster.ApplyAsync(Web(i, "web:1"));
        }

        for (var i = 0; i < 30; i++)
        {
            await cluster.RolledOutAsync("app", $"web-{i}", $"web-{i} rolled out");
        }

        // Let every pass the rollouts caused run out, then change one Deployment.
        for (var i = 0; i < 5; i++)
        {
            cluster.Server.RunControllers();
        }

        var before = cluster.Server.Reconciliations;
        await cluster.ApplyAsync(Web(7, "web:2"));
        await cluster.RolledOutAsync("app", "web-7", "web-7 rolled out again");
        for (var i = 0; i < 5; i++)
        {
            cluster.Server.RunControllers();
        }

        var after = cluster.Server.Reconciliations;

        // The rollout of web-7 takes a handful of passes over web-7 and its two ReplicaSets; a pass over all thirty
        // Deployments (and their ReplicaSets) would cost thirty per pass, and one over every pod sixty.
        Assert.InRange(after.Deployments - before.Deployments, 1, 25);
        Assert.InRange(after.ReplicaSets - before.ReplicaSets, 1, 50);
        Assert.InRange(after.Pods - before.Pods, 1, 60);
    }
}
