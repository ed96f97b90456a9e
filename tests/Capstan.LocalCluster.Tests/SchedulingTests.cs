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
}
