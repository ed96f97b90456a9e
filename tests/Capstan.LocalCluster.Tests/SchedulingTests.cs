using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Tests;

/// <summary>Nodes and the scheduler: pods bound to nodes with room, the rest Pending with kube-scheduler's message.</summary>
public sealed class SchedulingTests
{
    private static string Web(int replicas, string cpu, string? toleration = null) => $$$$"""
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web, namespace: app}
        spec:
          replicas: {{{{replicas}}}}
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec:
              {{{{(toleration is null ? string.Empty : $"tolerations: [{toleration}]")}}}}
              containers: [{name: main, image: "web:1", resources: {requests: {cpu: "{{{{cpu}}}}", memory: 1Gi}}}]
        """;

    private static async Task<List<JsonObject>> PodsAsync(Cluster cluster) => [.. (await cluster.Client.ListAsync("v1", "Pod", "app", "app=web", default)).Items];

    [Fact]
    public async Task Pods_are_bound_to_nodes_with_room_and_the_rest_stay_pending_with_the_schedulers_message()
    {
        await using var cluster = await Cluster.StartAsync(new LocalClusterOptions
        {
            Nodes = 3,
            NodeCapacity = new Dictionary<string, string> { ["cpu"] = "4", ["memory"] = "16Gi", ["pods"] = "110" },
        });
        await cluster.NamespaceAsync("app");
        var nodes = (await cluster.Client.ListAsync("v1", "Node", null, null, default)).Items;
        Assert.Equal(["local-node-1", "local-node-2", "local-node-3"], nodes.Select(n => n["metadata"]!["name"]!.GetValue<string>()).Order(StringComparer.Ordinal));

        // 3 nodes × 4 CPUs hold 4 pods of 3 CPUs? No: one each (a second would need 6 of 4). The fourth stays Pending.
        await cluster.ApplyAsync(Web(4, "3"));
        var pods = await Cluster.EventuallyAsync(async () =>
        {
            var all = await PodsAsync(cluster);
            return all.Count == 4 && all.Count(p => p["spec"]!["nodeName"] is not null) == 3
                && all.Any(p => p["status"]?["conditions"]?.AsArray().Any(c => c!["reason"]?.GetValue<string>() == "Unschedulable") == true) ? all : null;
        }, "three pods bound, one unschedulable");
        Assert.Equal(3, pods.Where(p => p["spec"]!["nodeName"] is not null).Select(p => p["spec"]!["nodeName"]!.GetValue<string>()).Distinct().Count());
        var pending = pods.Single(p => p["spec"]!["nodeName"] is null);
        Assert.Equal("Pending", pending["status"]!["phase"]!.GetValue<string>());
        var condition = pending["status"]!["conditions"]!.AsArray().Single(c => c!["type"]!.GetValue<string>() == "PodScheduled")!;
        Assert.Equal("False", condition["status"]!.GetValue<string>());
        Assert.Equal("0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.", condition["message"]!.GetValue<string>());
        var events = (await cluster.Client.ListAsync("v1", "Event", "app", null, default)).Items;
        Assert.Contains(events, e => e["reason"]!.GetValue<string>() == "FailedScheduling" && e["type"]!.GetValue<string>() == "Warning"
            && e["involvedObject"]!["name"]!.GetValue<string>() == pending["metadata"]!["name"]!.GetValue<string>());
        Assert.Equal(3, events.Count(e => e["reason"]!.GetValue<string>() == "Scheduled"));

        // A bigger node registers (as its kubelet would, status included): the pending pod is bound to it.
        cluster.Server.Store.Create(Store.ResourceTypes.ByKind("Node")!, null, new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = "big-node" },
            ["status"] = new JsonObject { ["allocatable"] = new JsonObject { ["cpu"] = "32", ["memory"] = "64Gi", ["pods"] = "110" } },
        }, "kubelet");
        await Cluster.EventuallyAsync(async () => (await PodsAsync(cluster)).All(p => p["spec"]!["nodeName"] is not null) ? "bound" : null, "the last pod bound to the new node");
        await cluster.RolledOutAsync("app", "web", "every pod scheduled and ready");
    }

    [Fact]
    public async Task A_taint_keeps_pods_off_unless_they_tolerate_it()
    {
        await using var cluster = await Cluster.StartAsync(new LocalClusterOptions { Nodes = 2 });
        await cluster.NamespaceAsync("app");
        foreach (var node in new[] { "local-node-1", "local-node-2" })
        {
            await cluster.Client.PatchAsync(new ObjectRef("v1", "Node", null, node), new JsonObject { ["spec"] = new JsonObject { ["taints"] = new JsonArray(new JsonObject { ["key"] = "dedicated", ["value"] = "mediawiki", ["effect"] = "NoSchedule" }) } }, "test", default);
        }

        await cluster.ApplyAsync(Web(1, "1"));
        var pending = await Cluster.EventuallyAsync(async () => (await PodsAsync(cluster)).FirstOrDefault(p => p["status"]?["conditions"]?.AsArray().Any(c => c!["reason"]?.GetValue<string>() == "Unschedulable") == true), "the pod unschedulable");
        Assert.Equal(
            "0/2 nodes are available: 2 node(s) had untolerated taint {dedicated: mediawiki}. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.",
            pending["status"]!["conditions"]!.AsArray().Single(c => c!["type"]!.GetValue<string>() == "PodScheduled")!["message"]!.GetValue<string>());

        await cluster.ApplyAsync(Web(1, "1", "{key: dedicated, operator: Equal, value: mediawiki, effect: NoSchedule}"));
        await cluster.RolledOutAsync("app", "web", "the tolerating pod scheduled and ready");
        Assert.All(await PodsAsync(cluster), p => Assert.StartsWith("local-node-", p["spec"]!["nodeName"]!.GetValue<string>(), StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_node_selector_and_required_node_affinity_keep_pods_to_the_nodes_they_match()
    {
        await using var cluster = await Cluster.StartAsync(new LocalClusterOptions { Nodes = 2 });
        await cluster.NamespaceAsync("app");
        await cluster.Client.PatchAsync(new ObjectRef("v1", "Node", null, "local-node-2"), new JsonObject { ["metadata"] = new JsonObject { ["labels"] = new JsonObject { ["pool"] = "mediawiki" } } }, "test", default);
        string Placed(string spec) => $$$$"""
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web, namespace: app}
            spec:
              replicas: 2
              selector: {matchLabels: {app: web}}
              template:
                metadata: {labels: {app: web}}
                spec:
                  {{{{spec}}}}
                  containers: [{name: main, image: "web:1", resources: {requests: {cpu: "1", memory: 1Gi}}}]
            """;

        // Matching only node 2, by selector: both pods go there.
        await cluster.ApplyAsync(Placed("nodeSelector: {pool: mediawiki}"));
        await cluster.RolledOutAsync("app", "web", "both pods on the matching node");
        Assert.All(await PodsAsync(cluster), p => Assert.Equal("local-node-2", p["spec"]!["nodeName"]!.GetValue<string>()));

        // Matching no node, by required affinity: pending with kube-scheduler's words.
        await cluster.ApplyAsync(Placed("affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: pool, operator: In, values: [jobrunner]}]}]}}}"));
        var pending = await Cluster.EventuallyAsync(async () => (await PodsAsync(cluster)).FirstOrDefault(p => p["status"]?["conditions"]?.AsArray().Any(c => c!["reason"]?.GetValue<string>() == "Unschedulable") == true), "a pod unschedulable");
        Assert.Equal(
            "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.",
            pending["status"]!["conditions"]!.AsArray().Single(c => c!["type"]!.GetValue<string>() == "PodScheduled")!["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_node_pulls_only_the_layers_it_lacks_at_its_bandwidth_and_keeps_them()
    {
        // Two versions of an image in the farm's layout: v2 differs from v1 in one file, so in one layer.
        var root = Directory.CreateTempSubdirectory("capstan-pulls-").FullName;
        try
        {
            var tree = Path.Combine(root, "tree");
            foreach (var (path, text) in new[] { ("index.php", "<?php // index"), ("includes/Setup.php", "<?php // setup"), ("vendor/lib.php", Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(150_000))) })
            {
                Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(tree, path))!);
                File.WriteAllText(Path.Combine(tree, path), text);
            }

            var layout = new Images.OciLayout(Path.Combine(root, "layout"));
            var input = new Images.BuildInput(Core.Config.ImageBuildSpec.Default, [new Core.Config.ImageSource("php-1.42", tree)], null, 1_700_000_000, null);
            var v1 = await new Images.ImageBuilder(layout).BuildAsync(input, "v1", default);
            File.WriteAllText(Path.Combine(tree, "includes/Setup.php"), "<?php // setup, changed");
            var v2 = await new Images.ImageBuilder(layout).BuildAsync(input, "v2", default);
            var size1 = v1.Flavours[0].Layers.DistinctBy(l => l.Blob.Digest).Sum(l => l.Blob.Size);
            var size2 = v2.Flavours[0].Layers.DistinctBy(l => l.Blob.Digest).Sum(l => l.Blob.Size);
            var v1Layers = v1.Flavours[0].Layers.Select(l => l.Blob.Digest).ToHashSet();
            var lacked2 = v2.Flavours[0].Layers.DistinctBy(l => l.Blob.Digest).Where(l => !v1Layers.Contains(l.Blob.Digest)).Sum(l => l.Blob.Size);
            Assert.InRange(lacked2, 1, size2 / 2);

            var clock = new ManualClock(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
            const long bandwidth = 10_000; // bytes per second: the whole image takes seconds of simulated time
            await using var cluster = await Cluster.StartAsync(new LocalClusterOptions
            {
                Time = clock, Nodes = 2, PullBandwidth = bandwidth, ImageLayout = layout.Path,
            });
            await cluster.NamespaceAsync("app");
            await cluster.ApplyAsync(Web(2, "1").Replace("web:1", "capstan.local/mediawiki:v1", StringComparison.Ordinal));

            // Both pods wait on their pulls, each on its own node, until the clock has moved the image's bytes.
            await Cluster.EventuallyAsync(async () =>
            {
                var all = await PodsAsync(cluster);
                return all.Count == 2 && all.All(p => p["spec"]!["nodeName"] is not null && p["status"]?["containerStatuses"]?[0]?["state"]?["waiting"]?["reason"]?.GetValue<string>() == "ContainerCreating") ? all : null;
            }, "both pods waiting for their images");
            clock.Advance(TimeSpan.FromSeconds((double)size1 / bandwidth / 2));
            Assert.All(await PodsAsync(cluster), p => Assert.NotEqual("Running", p["status"]?["phase"]?.GetValue<string>()));
            clock.Advance(TimeSpan.FromSeconds((double)size1 / bandwidth));
            await cluster.RolledOutAsync("app", "web", "v1 pulled and running");
            string Pulled(JsonObject e) => e["message"]!.GetValue<string>();
            var pulledV1 = (await cluster.Client.ListAsync("v1", "Event", "app", null, default)).Items.Where(e => e["reason"]!.GetValue<string>() == "Pulled").ToList();
            Assert.True(pulledV1.Count == 2, string.Join("\n", pulledV1.Select(e => $"{e["involvedObject"]!["name"]} {Pulled(e)}")));
            Assert.All(pulledV1, e => Assert.EndsWith($"Image size: {size1} bytes, of which this node lacked {size1}", Pulled(e), StringComparison.Ordinal));

            // The registry sent the image once per node, both nodes pulling at their full bandwidth each second.
            var (sent, peak) = cluster.Server.TakeRegistryEgress()!.Value;
            Assert.Equal(2 * size1, sent);
            // (Within a millionth: each step's bytes are spread over clock seconds counted in floating point.)
            Assert.Equal(2 * bandwidth, peak, 2 * bandwidth * 1e-6);

            // v2 on the same nodes: only the changed layer moves.
            await cluster.ApplyAsync(Web(2, "1").Replace("web:1", "capstan.local/mediawiki:v2", StringComparison.Ordinal));
            await Cluster.EventuallyAsync(async () => (await cluster.Client.ListAsync("v1", "Event", "app", null, default)).Items.Count(e => e["reason"]!.GetValue<string>() == "Pulling") >= 3 ? "pulling" : null, "the v2 pulls started");
            for (var i = 0; i < 20 && !(await PodsAsync(cluster)).All(p => p["spec"]!["containers"]![0]!["image"]!.GetValue<string>().EndsWith(":v2", StringComparison.Ordinal) && p["status"]?["phase"]?.GetValue<string>() == "Running"); i++)
            {
                // Simulated time for the changed layer only; the rollout moves in steps as each new pod becomes ready.
                clock.Advance(TimeSpan.FromSeconds(Math.Ceiling((double)lacked2 / bandwidth) + 1));
                await Cluster.EventuallyAsync(async () => (await PodsAsync(cluster)).Count > 0 ? "ok" : null, "pods");
            }

            await cluster.RolledOutAsync("app", "web", "v2 pulled and running");
            var pulledV2 = (await cluster.Client.ListAsync("v1", "Event", "app", null, default)).Items.Where(e => e["reason"]!.GetValue<string>() == "Pulled" && Pulled(e).Contains(":v2", StringComparison.Ordinal)).ToList();
            // A node that held v1 pulled the changed layer only; a second v2 pod on the same node found it all there.
            Assert.Contains(pulledV2, e => Pulled(e).EndsWith($"Image size: {size2} bytes, of which this node lacked {lacked2}", StringComparison.Ordinal));
            Assert.All(pulledV2, e => Assert.True(
                Pulled(e).EndsWith($"of which this node lacked {lacked2}", StringComparison.Ordinal) || Pulled(e).EndsWith("already present on machine", StringComparison.Ordinal), Pulled(e)));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
