using System.Text.Json.Nodes;
using Capstan.Core.Config;
using Capstan.Core.Rendering;
using Capstan.Kubernetes;
using Capstan.LocalCluster;

namespace Capstan.Deploy.Tests;

/// <summary>Warming the nodes with a deploy's new images before its rollout (deploy --pre-pull), on simulated nodes that pull.</summary>
public sealed class PrePullTests
{
    private const string NewImage = "docker-registry.wikifarm.example/restricted/mediawiki-multiversion:2026-11-22-090000-publish";

    /// <summary>Three nodes pulling at 20 MB/s; an image outside the farm's layout counts as one layer of 1 MiB.</summary>
    private static readonly LocalClusterOptions Nodes = new() { Nodes = 3, PullBandwidth = 20_000_000, DefaultImageBytes = 1 << 20 };

    /// <summary>Two nodes at once: 40 MB/s of registry egress at 20 MB/s a node.</summary>
    private static readonly PrePullSettings Settings = new(true, 40_000_000, 20_000_000, TimeSpan.FromMinutes(2));

    private static async Task<List<JsonObject>> PulledEventsAsync(FarmHarness farm, string dc, string image) =>
        [.. (await farm.Clusters[dc].ListAsync("v1", "Event", "mw-debug", null, default)).Items
            .Where(e => e["reason"]?.GetValue<string>() == "Pulled" && e["message"]!.GetValue<string>().Contains($"\"{image}\"", StringComparison.Ordinal))];

    private static string PodOf(JsonObject e) => e["involvedObject"]!["name"]!.GetValue<string>();

    [Fact]
    public async Task After_a_pre_pull_the_rollouts_pods_find_the_new_image_on_their_node_and_without_one_they_pull_it()
    {
        await using var farm = await FarmHarness.StartAsync(Nodes);
        Assert.True((await farm.DeployAsync(new RenderSelection(null, "mw-debug"))).Result!.Succeeded);
        farm.Write("deploy/images/default.yaml", $"images:\n  mediawiki: {NewImage}\n");

        // eqiad warms its nodes first, two at a time; codfw rolls out cold.
        farm.Clusters.LocalServer("eqiad")!.TakeRegistryEgress();
        var log = new EventLog();
        var (prepared, warm) = await farm.DeployAsync(new RenderSelection("eqiad", "mw-debug"), options: new ExecutorOptions { Actor = "test", Reason = "test", PrePull = Settings }, observer: log);
        Assert.True(warm!.Succeeded, warm.Cause);
        var (_, cold) = await farm.DeployAsync(new RenderSelection("codfw", "mw-debug"));
        Assert.True(cold!.Succeeded, cold.Cause);

        Assert.Contains(log.Events, e => e.Message == "pre-pull eqiad: 3 nodes to warm with 7 images (1 new), 2 at a time (registry egress at most 40 MB/s)");
        Assert.Contains(log.Events, e => e.Message.StartsWith("pre-pull eqiad: 3 nodes warmed in ", StringComparison.Ordinal));
        // Never more than two nodes pulled at once (20 MB/s each); the rollout after it pulled nothing.
        var (sent, peak) = farm.Clusters.LocalServer("eqiad")!.TakeRegistryEgress()!.Value;
        Assert.InRange(sent, 3 << 20, 3 * 7 << 20);
        Assert.InRange(peak, 1, 40_000_000 * 1.001);

        // In eqiad only the pull pods pulled; every pod of the rollout found the image there.
        var eqiad = await PulledEventsAsync(farm, "eqiad", NewImage);
        var rollout = eqiad.Where(e => !PodOf(e).StartsWith("capstan-pre-pull-", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, rollout.Select(PodOf).Distinct().Count());
        Assert.All(rollout, e => Assert.Equal($"Container image \"{NewImage}\" already present on machine", e["message"]!.GetValue<string>()));
        Assert.Equal(3, eqiad.Where(e => PodOf(e).StartsWith("capstan-pre-pull-", StringComparison.Ordinal)).Count(e => e["message"]!.GetValue<string>().StartsWith("Successfully pulled", StringComparison.Ordinal)));

        // In codfw the rollout's pods pulled it themselves.
        var codfw = await PulledEventsAsync(farm, "codfw", NewImage);
        Assert.Contains(codfw, e => e["message"]!.GetValue<string>().StartsWith($"Successfully pulled image \"{NewImage}\"", StringComparison.Ordinal));

        // The nodes report the image, no pull pod is left running, and a second pre-pull finds every node warm.
        foreach (var node in (await farm.Clusters["eqiad"].ListAsync("v1", "Node", null, null, default)).Items)
        {
            Assert.Contains(NewImage, (node["status"]!["images"] as JsonArray)!.SelectMany(i => i!["names"]!.AsArray()).Select(n => n!.GetValue<string>()));
        }

        Assert.All((await farm.Clusters["eqiad"].ListAsync("v1", "Pod", "mw-debug", PrePuller.Label, default)).Items, p => Assert.NotNull(p["metadata"]!["deletionTimestamp"]));
        var again = await new PrePuller(farm.Clusters, new EventLog(), TimeProvider.System).RunAsync(prepared.Plan, Settings, default);
        Assert.Equal(new PrePullReport("eqiad", 0, 3, 0, again.Single().Duration), again.Single());
    }

    [Fact]
    public async Task An_image_the_nodes_cannot_pull_stops_the_deploy_before_anything_is_applied()
    {
        await using var farm = await FarmHarness.StartAsync(Nodes);
        Assert.True((await farm.DeployAsync(new RenderSelection("eqiad", "mw-debug"))).Result!.Succeeded);
        await farm.OnlyCurrentImagesPullableAsync("eqiad", "mw-debug");
        var before = await farm.Clusters["eqiad"].GetAsync(new ObjectRef("apps/v1", "Deployment", "mw-debug", "mw-debug.eqiad.pinkunicorn"), default);
        farm.Write("deploy/images/default.yaml", $"images:\n  mediawiki: {NewImage}\n");

        var failure = await Assert.ThrowsAsync<PrePullException>(() => farm.DeployAsync(new RenderSelection("eqiad", "mw-debug"), options: new ExecutorOptions { Actor = "test", Reason = "test", PrePull = Settings }));
        Assert.Matches($"^pre-pull: node local-node-[123] in eqiad cannot pull {System.Text.RegularExpressions.Regex.Escape(NewImage)}: (ErrImagePull|ImagePullBackOff): .*; nothing was applied$", failure.Message);
        var after = await farm.Clusters["eqiad"].GetAsync(new ObjectRef("apps/v1", "Deployment", "mw-debug", "mw-debug.eqiad.pinkunicorn"), default);
        Assert.Equal(before!["metadata"]!["generation"]!.GetValue<long>(), after!["metadata"]!["generation"]!.GetValue<long>());

        // The first refusal stopped the rest: of three nodes, two at a time, the third never got a pull pod.
        var pulled = (await farm.Clusters["eqiad"].ListAsync("v1", "Event", "mw-debug", null, default)).Items
            .Select(PodOf).Where(p => p.StartsWith("capstan-pre-pull-", StringComparison.Ordinal)).Distinct().Count();
        Assert.InRange(pulled, 1, 2);
        Assert.All((await farm.Clusters["eqiad"].ListAsync("v1", "Pod", "mw-debug", PrePuller.Label, default)).Items, p => Assert.NotNull(p["metadata"]!["deletionTimestamp"]));
    }

    [Theory]
    [InlineData("reg.example/mw:1.0", "reg.example/mw:1.0", true)]
    [InlineData("reg.example/mw:1.0", "reg.example/mw:2.0", false)]
    [InlineData("reg.example/mw@sha256:abc", "reg.example:5000/mw:2.0@sha256:abc", false)]
    [InlineData("reg.example:5000/mw@sha256:abc", "reg.example:5000/mw:2.0@sha256:abc", true)]
    [InlineData("reg.example:5000/mw@sha256:abd", "reg.example:5000/mw:2.0@sha256:abc", false)]
    public void A_node_holds_an_image_by_its_reference_or_its_digest(string held, string image, bool holds) =>
        Assert.Equal(holds, ImageChanges.Holds(new HashSet<string> { held }, image));
}
