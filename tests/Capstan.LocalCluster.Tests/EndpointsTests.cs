using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Tests;

/// <summary>Endpoints and EndpointSlices kept from Services and their pods, as kube-controller-manager keeps them.</summary>
public sealed class EndpointsTests
{
    [Fact]
    public async Task A_service_gets_endpoints_and_a_slice_of_its_pods_ready_or_not_and_loses_them_with_it()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("app");

        // Pods labelled role=bad crash, so they never become ready.
        using var http = cluster.Http();
        (await http.PostAsJsonAsync("/capstan/faults", new { type = "crashloop", @namespace = "app", selector = "role=bad" })).EnsureSuccessStatusCode();
        foreach (var (name, role) in new[] { ("good", "good"), ("bad", "bad") })
        {
            await cluster.ApplyAsync($$"""
                apiVersion: v1
                kind: Pod
                metadata:
                  name: {{name}}
                  namespace: app
                  labels: {app: web, role: {{role}} }
                spec:
                  containers:
                  - name: httpd
                    image: docker-registry.wikimedia.org/httpd:1
                    ports: [{name: http, containerPort: 8080}]
                """);
        }

        await cluster.ApplyAsync("""
            apiVersion: v1
            kind: Service
            metadata: {name: web, namespace: app, labels: {team: wiki}}
            spec: {selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}]}
            """);

        var endpoints = await Cluster.EventuallyAsync(async () =>
        {
            var found = await cluster.Client.GetAsync(new ObjectRef("v1", "Endpoints", "app", "web"), default);
            var subset = found?["subsets"]?[0];
            return subset?["addresses"] is JsonArray { Count: 1 } && subset["notReadyAddresses"] is JsonArray { Count: 1 } ? found : null;
        }, "the service's endpoints with one ready and one not ready address");
        var only = endpoints["subsets"]![0]!;
        Assert.Equal("good", only["addresses"]![0]!["targetRef"]!["name"]!.GetValue<string>());
        Assert.Equal("bad", only["notReadyAddresses"]![0]!["targetRef"]!["name"]!.GetValue<string>());
        Assert.Equal(8080, only["ports"]![0]!["port"]!.GetValue<int>());
        Assert.Equal("wiki", endpoints["metadata"]!["labels"]!["team"]!.GetValue<string>());

        var slices = (await cluster.Client.ListAsync("discovery.k8s.io/v1", "EndpointSlice", "app", "kubernetes.io/service-name=web", default)).Items;
        var slice = Assert.Single(slices);
        Assert.StartsWith("web-", slice["metadata"]!["name"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("Service", slice["metadata"]!["ownerReferences"]![0]!["kind"]!.GetValue<string>());
        Assert.Equal("IPv4", slice["addressType"]!.GetValue<string>());
        var ready = slice["endpoints"]!.AsArray().ToDictionary(e => e!["targetRef"]!["name"]!.GetValue<string>(), e => e!["conditions"]!["ready"]!.GetValue<bool>());
        Assert.Equal(new Dictionary<string, bool> { ["bad"] = false, ["good"] = true }, ready);

        await cluster.Client.DeleteAsync(new ObjectRef("v1", "Service", "app", "web"), Propagation.Background, default);
        await Cluster.EventuallyAsync(async () =>
            await cluster.Client.GetAsync(new ObjectRef("v1", "Endpoints", "app", "web"), default) is null
            && (await cluster.Client.ListAsync("discovery.k8s.io/v1", "EndpointSlice", "app", "kubernetes.io/service-name=web", default)).Items.Count == 0 ? "gone" : null,
            "the endpoints and slices to go with the service");
    }
}
