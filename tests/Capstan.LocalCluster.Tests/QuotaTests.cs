using System.Net;
using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Tests;

/// <summary>LimitRange defaults and bounds, and ResourceQuota enforcement with status.used, as kube-apiserver's admission and kube-controller-manager keep them.</summary>
public sealed class QuotaTests
{
    private static string Pod(string name, string? cpu, string? memoryLimit = null)
    {
        var container = new JsonObject { ["name"] = "php", ["image"] = "docker-registry.wikimedia.org/mediawiki:1" };
        var resources = new JsonObject();
        if (cpu is not null)
        {
            resources["requests"] = new JsonObject { ["cpu"] = cpu, ["memory"] = "128Mi" };
        }

        if (memoryLimit is not null)
        {
            resources["limits"] = new JsonObject { ["memory"] = memoryLimit };
        }

        if (resources.Count > 0)
        {
            container["resources"] = resources;
        }

        return new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Pod",
            ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = "env" },
            ["spec"] = new JsonObject { ["containers"] = new JsonArray(container) },
        }.ToJsonString();
    }

    [Fact]
    public async Task A_limit_range_fills_in_defaults_and_refuses_what_passes_its_maximum()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("env");
        await cluster.ApplyAsync("""
            apiVersion: v1
            kind: LimitRange
            metadata: {name: defaults, namespace: env}
            spec:
              limits:
              - type: Container
                default: {memory: 1Gi}
                defaultRequest: {cpu: 100m, memory: 256Mi}
                max: {memory: 2Gi}
            """);
        using var http = cluster.Http();

        var created = await http.PostAsync("/api/v1/namespaces/env/pods", new StringContent(Pod("plain", null), System.Text.Encoding.UTF8, "application/json"));
        var pod = JsonNode.Parse(await created.Content.ReadAsStringAsync())!;
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var resources = pod["spec"]!["containers"]![0]!["resources"]!;
        Assert.Equal("100m", resources["requests"]!["cpu"]!.GetValue<string>());
        Assert.Equal("256Mi", resources["requests"]!["memory"]!.GetValue<string>());
        Assert.Equal("1Gi", resources["limits"]!["memory"]!.GetValue<string>());
        Assert.Equal("LimitRanger plugin set: memory limit, cpu request, memory request for container php", pod["metadata"]!["annotations"]!["kubernetes.io/limit-ranger"]!.GetValue<string>());

        var big = Pod("big", null, memoryLimit: "4Gi");
        var refused = await http.PostAsync("/api/v1/namespaces/env/pods", new StringContent(big, System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal("pods \"big\" is forbidden: maximum memory usage per Container is 2Gi, but limit is 4Gi", JsonNode.Parse(await refused.Content.ReadAsStringAsync())!["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_quota_refuses_what_passes_it_and_says_what_is_used()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("env");
        await cluster.ApplyAsync("""
            apiVersion: v1
            kind: ResourceQuota
            metadata: {name: capstan-environment, namespace: env}
            spec: {hard: {pods: "3", requests.cpu: "1"}}
            """);
        using var http = cluster.Http();
        async Task<HttpResponseMessage> CreateAsync(string name, string? cpu) =>
            await http.PostAsync("/api/v1/namespaces/env/pods", new StringContent(Pod(name, cpu), System.Text.Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.Created, (await CreateAsync("a", "400m")).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await CreateAsync("b", "400m")).StatusCode);

        var over = await CreateAsync("c", "400m");
        Assert.Equal(HttpStatusCode.Forbidden, over.StatusCode);
        Assert.Equal(
            "pods \"c\" is forbidden: exceeded quota: capstan-environment, requested: requests.cpu=400m, used: requests.cpu=800m, limited: requests.cpu=1",
            JsonNode.Parse(await over.Content.ReadAsStringAsync())!["message"]!.GetValue<string>());

        var unsized = await CreateAsync("d", null);
        Assert.Equal(HttpStatusCode.Forbidden, unsized.StatusCode);
        Assert.Equal("pods \"d\" is forbidden: failed quota: capstan-environment: must specify requests.cpu",
            JsonNode.Parse(await unsized.Content.ReadAsStringAsync())!["message"]!.GetValue<string>());

        // The quota controller says what the two pods use.
        var quota = await Cluster.EventuallyAsync(async () =>
        {
            var found = await cluster.Client.GetAsync(new ObjectRef("v1", "ResourceQuota", "env", "capstan-environment"), default);
            return found?["status"]?["used"]?["pods"]?.GetValue<string>() == "2" ? found : null;
        }, "the quota's status.used");
        Assert.Equal("800m", quota["status"]!["used"]!["requests.cpu"]!.GetValue<string>());
        Assert.Equal("1", quota["status"]!["hard"]!["requests.cpu"]!.GetValue<string>());

        // A ReplicaSet that wants more than the quota allows gets what fits, and says why not the rest.
        await cluster.ApplyAsync("""
            apiVersion: apps/v1
            kind: ReplicaSet
            metadata: {name: web, namespace: env}
            spec:
              replicas: 3
              selector: {matchLabels: {app: web}}
              template:
                metadata: {labels: {app: web}}
                spec: {containers: [{name: php, image: docker-registry.wikimedia.org/mediawiki:1, resources: {requests: {cpu: 100m}}}]}
            """);
        var warning = await Cluster.EventuallyAsync(async () =>
            (await cluster.Client.ListAsync("v1", "Event", "env", null, default)).Items.FirstOrDefault(e => e["reason"]?.GetValue<string>() == "FailedCreate"),
            "the replica set's FailedCreate event");
        Assert.Contains("exceeded quota: capstan-environment", warning["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("3", (await Cluster.EventuallyAsync(async () =>
        {
            var found = await cluster.Client.GetAsync(new ObjectRef("v1", "ResourceQuota", "env", "capstan-environment"), default);
            return found?["status"]?["used"]?["pods"]?.GetValue<string>() == "3" ? found : null;
        }, "the quota full"))["status"]!["used"]!["pods"]!.GetValue<string>());
    }
}
