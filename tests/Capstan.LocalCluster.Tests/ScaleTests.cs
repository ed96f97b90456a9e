using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Tests;

/// <summary>The /scale subresource, paused Deployments and a HorizontalPodAutoscaler that owns the replicas.</summary>
public sealed class ScaleTests
{
    private static readonly ObjectRef Web = new("apps/v1", "Deployment", "app", "web");

    private static string Deployment(string image, int? replicas, bool? paused = null) => $$$"""
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web, namespace: app}
        spec:
          {{{(replicas is { } r ? $"replicas: {r}" : string.Empty)}}}
          {{{(paused is { } p ? $"paused: {(p ? "true" : "false")}" : string.Empty)}}}
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec:
              containers: [{name: main, image: "{{{image}}}"}]
        """;

    private static async Task<Cluster> StartAsync()
    {
        var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("app");
        return cluster;
    }

    private static async Task<int> ReplicasAsync(Cluster cluster) => (await cluster.Client.GetAsync(Web, default))!["spec"]!["replicas"]!.GetValue<int>();

    [Fact]
    public async Task Scale_reads_and_writes_the_replicas_with_a_resource_version_check()
    {
        await using var cluster = await StartAsync();
        await cluster.ApplyAsync(Deployment("web:1", 2));
        using var http = cluster.Http();
        var scale = (await http.GetFromJsonAsync<JsonObject>("/apis/apps/v1/namespaces/app/deployments/web/scale"))!;
        Assert.Equal("Scale", scale["kind"]!.GetValue<string>());
        Assert.Equal(2, scale["spec"]!["replicas"]!.GetValue<int>());
        Assert.Equal("app=web", scale["status"]!["selector"]!.GetValue<string>());

        scale["spec"]!["replicas"] = 5;
        scale["metadata"]!.AsObject().Remove("resourceVersion");
        using (var put = await http.PutAsync("/apis/apps/v1/namespaces/app/deployments/web/scale?fieldManager=ops", new StringContent(scale.ToJsonString(), Encoding.UTF8, "application/json")))
        {
            Assert.Equal(200, (int)put.StatusCode);
        }

        Assert.Equal(5, await ReplicasAsync(cluster));
        scale["metadata"]!["resourceVersion"] = "1";
        using (var stale = await http.PutAsync("/apis/apps/v1/namespaces/app/deployments/web/scale", new StringContent(scale.ToJsonString(), Encoding.UTF8, "application/json")))
        {
            Assert.Equal(409, (int)stale.StatusCode);
        }

        using var missing = await http.GetAsync("/api/v1/namespaces/app/configmaps/x/scale");
        Assert.Equal(404, (int)missing.StatusCode);
    }

    [Fact]
    public async Task A_paused_deployment_rolls_nothing_out_until_resumed()
    {
        await using var cluster = await StartAsync();
        await cluster.ApplyAsync(Deployment("web:1", 2));
        await cluster.RolledOutAsync("app", "web", "first rollout");

        await cluster.ApplyAsync(Deployment("web:2", 3, paused: true));
        var paused = await Cluster.EventuallyAsync(async () =>
        {
            var d = await cluster.Client.GetAsync(Web, default);
            var progressing = d!["status"]!["conditions"]!.AsArray().FirstOrDefault(c => c!["type"]!.GetValue<string>() == "Progressing");
            return progressing?["reason"]?.GetValue<string>() == "DeploymentPaused" && d["status"]!["replicas"]!.GetValue<int>() == 3 ? d : null;
        }, "the paused deployment scaled to 3");
        Assert.Equal("Unknown", paused["status"]!["conditions"]!.AsArray().First(c => c!["type"]!.GetValue<string>() == "Progressing")!["status"]!.GetValue<string>());
        var sets = (await cluster.Client.ListAsync("apps/v1", "ReplicaSet", "app", null, default)).Items;
        Assert.Single(sets);
        Assert.All((await cluster.Client.ListAsync("v1", "Pod", "app", "app=web", default)).Items, p => Assert.Equal("web:1", p["spec"]!["containers"]![0]!["image"]!.GetValue<string>()));

        await cluster.ApplyAsync(Deployment("web:2", 3, paused: false));
        var done = await cluster.RolledOutAsync("app", "web", "rollout after resume");
        Assert.Equal(3, done.Available);
    }

    [Fact]
    public async Task An_autoscaler_owns_the_replicas_and_an_apply_without_them_does_not_reset_them()
    {
        await using var cluster = await StartAsync();
        await cluster.ApplyAsync(Deployment("web:1", 2));
        await cluster.ApplyAsync("""
            apiVersion: autoscaling/v2
            kind: HorizontalPodAutoscaler
            metadata: {name: web, namespace: app}
            spec:
              scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
              minReplicas: 3
              maxReplicas: 4
            """);
        await Cluster.EventuallyAsync(async () => await ReplicasAsync(cluster) == 3 ? "ok" : null, "the autoscaler's minimum");

        // Applying the Deployment without replicas leaves them to the autoscaler; applying them fights it.
        await cluster.ApplyAsync(Deployment("web:2", replicas: null));
        Assert.Equal(3, await ReplicasAsync(cluster));
        var fight = await Assert.ThrowsAsync<KubeConflictException>(() => cluster.ApplyAsync(Deployment("web:2", 2)));
        Assert.Contains("conflict with \"horizontal-pod-autoscaler\"", fight.Message, StringComparison.Ordinal);
        Assert.Equal(".spec.replicas", Assert.Single(fight.Causes).Field);

        using var http = cluster.Http();
        (await http.PostAsync("/capstan/autoscale", new StringContent("""{"namespace": "app", "name": "web", "replicas": 9}""", Encoding.UTF8, "application/json"))).EnsureSuccessStatusCode();
        await Cluster.EventuallyAsync(async () => await ReplicasAsync(cluster) == 4 ? "ok" : null, "the autoscaler's maximum");
        // The controller scales the target, then writes its own status: a read between the two sees the old status.
        await Cluster.EventuallyAsync(
            async () => (await cluster.Client.GetAsync(new ObjectRef("autoscaling/v2", "HorizontalPodAutoscaler", "app", "web"), default))!["status"]?["desiredReplicas"]?.GetValue<int>() == 4 ? "ok" : null,
            "the autoscaler's status at its maximum");

        // Settled (the rollout of web:2 done, so no surge pod moves currentReplicas), its status is not written again:
        // passes of every controller leave its resourceVersion alone, and its conditions carry only autoscaling/v2's fields.
        await cluster.RolledOutAsync("app", "web", "the rollout of web:2 at 4 replicas");
        var settled = await Cluster.EventuallyAsync(
            async () => (await cluster.Client.GetAsync(new ObjectRef("autoscaling/v2", "HorizontalPodAutoscaler", "app", "web"), default)) is { } h && h["status"]?["currentReplicas"]?.GetValue<int>() == 4 ? h : null,
            "the autoscaler's target at 4 replicas");
        for (var pass = 0; pass < 5; pass++)
        {
            cluster.Server.RunControllers();
        }

        var later = (await cluster.Client.GetAsync(new ObjectRef("autoscaling/v2", "HorizontalPodAutoscaler", "app", "web"), default))!;
        Assert.Equal(settled["metadata"]!["resourceVersion"]!.GetValue<string>(), later["metadata"]!["resourceVersion"]!.GetValue<string>());
        Assert.All(later["status"]!["conditions"]!.AsArray(), c => Assert.Null(c!["lastUpdateTime"]));
    }

    [Fact]
    public async Task An_autoscaler_looks_again_at_a_spec_it_has_seen_once_per_sync_period()
    {
        var clock = new ManualClock(DateTimeOffset.Parse("2026-12-07T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        await using var cluster = await Cluster.StartAsync(new LocalClusterOptions { Time = clock, Timing = SimulationTiming.Instant with { AutoscalerSync = TimeSpan.FromSeconds(15) } });
        await cluster.NamespaceAsync("app");
        await cluster.ApplyAsync(Deployment("web:1", 2));
        await cluster.RolledOutAsync("app", "web", "web at 2 replicas");

        // A new spec is acted on at once: the target goes to the minimum of 3, and the status says 2 were running.
        await cluster.ApplyAsync("""
            apiVersion: autoscaling/v2
            kind: HorizontalPodAutoscaler
            metadata: {name: web, namespace: app}
            spec:
              scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
              minReplicas: 3
              maxReplicas: 4
            """);
        var hpa = new ObjectRef("autoscaling/v2", "HorizontalPodAutoscaler", "app", "web");
        await Cluster.EventuallyAsync(async () => (await cluster.Client.GetAsync(hpa, default))?["status"]?["desiredReplicas"]?.GetValue<int>() == 3 ? "seen" : null, "the autoscaler's first pass");
        await cluster.RolledOutAsync("app", "web", "web at 3 replicas");

        // Until the sync period has passed on the clock, the status is not looked at again.
        for (var pass = 0; pass < 5; pass++)
        {
            cluster.Server.RunControllers();
        }

        Assert.Equal(2, (await cluster.Client.GetAsync(hpa, default))!["status"]!["currentReplicas"]!.GetValue<int>());
        clock.Advance(TimeSpan.FromSeconds(15));
        await Cluster.EventuallyAsync(async () => (await cluster.Client.GetAsync(hpa, default))?["status"]?["currentReplicas"]?.GetValue<int>() == 3 ? "synced" : null, "the next sync");
    }
}
