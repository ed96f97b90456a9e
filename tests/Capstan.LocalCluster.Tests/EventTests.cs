using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Tests;

/// <summary>Events as the real controllers and kubelet record them, aggregated by count.</summary>
public sealed class EventTests
{
    private static async Task<List<JsonObject>> EventsAsync(Cluster cluster, string ns) =>
        [.. (await cluster.Client.ListAsync("v1", "Event", ns, null, default)).Items];

    private static bool Has(IEnumerable<JsonObject> events, string kind, string reason, string messageStart) =>
        events.Any(e => e["involvedObject"]!["kind"]!.GetValue<string>() == kind && e["reason"]!.GetValue<string>() == reason
                        && e["message"]!.GetValue<string>().StartsWith(messageStart, StringComparison.Ordinal));

    [Fact]
    public async Task A_rollout_records_what_each_component_did()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("app");
        await cluster.ApplyAsync("""
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web, namespace: app}
            spec:
              replicas: 2
              selector: {matchLabels: {app: web}}
              template:
                metadata: {labels: {app: web}}
                spec: {containers: [{name: main, image: "web:1"}]}
            """);
        var events = await Cluster.EventuallyAsync(async () =>
        {
            var all = await EventsAsync(cluster, "app");
            return all.Count(e => e["reason"]!.GetValue<string>() == "Started") == 2 ? all : null;
        }, "both pods started");
        Assert.True(Has(events, "Deployment", "ScalingReplicaSet", "Scaled up replica set web-"), string.Join("\n", events.Select(e => e["message"])));
        Assert.True(Has(events, "ReplicaSet", "SuccessfulCreate", "Created pod: web-"));
        Assert.True(Has(events, "Pod", "Scheduled", "Successfully assigned app/web-"));
        Assert.True(Has(events, "Pod", "Pulled", "Container image \"web:1\" already present on machine"));
        Assert.True(Has(events, "Pod", "Created", "Created container: main"));
        Assert.All(events, e => Assert.Equal(e["involvedObject"]!["namespace"]!.GetValue<string>(), e["metadata"]!["namespace"]!.GetValue<string>()));

        // kubectl describe finds a pod's events by field selector.
        var pod = (await cluster.Client.ListAsync("v1", "Pod", "app", "app=web", default)).Items[0];
        var uid = pod["metadata"]!["uid"]!.GetValue<string>();
        using var http = cluster.Http();
        var selected = JsonNode.Parse(await http.GetStringAsync($"/api/v1/namespaces/app/events?fieldSelector=involvedObject.uid={uid},involvedObject.kind=Pod"))!["items"]!.AsArray();
        Assert.NotEmpty(selected);
        Assert.All(selected, e => Assert.Equal(uid, e!["involvedObject"]!["uid"]!.GetValue<string>()));
    }

    [Fact]
    public async Task A_crash_loop_is_one_warning_whose_count_grows()
    {
        var clock = new ManualClock(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        await using var cluster = await Cluster.StartAsync(new LocalClusterOptions { Time = clock });
        await cluster.NamespaceAsync("app");
        cluster.Server.Faults.Add(new JsonObject { ["type"] = "crashloop", ["namespace"] = "app", ["selector"] = "app=crash" });
        await cluster.ApplyAsync("apiVersion: v1\nkind: Pod\nmetadata: {name: crash, namespace: app, labels: {app: crash}}\nspec: {containers: [{name: main, image: x}]}\n");
        for (var i = 0; i < 4; i++)
        {
            cluster.Server.RunControllers();
            clock.Advance(TimeSpan.FromSeconds(1.5));
        }

        cluster.Server.RunControllers();
        var backOff = Assert.Single(await EventsAsync(cluster, "app"), e => e["reason"]!.GetValue<string>() == "BackOff");
        Assert.Equal("Warning", backOff["type"]!.GetValue<string>());
        Assert.StartsWith("Back-off restarting failed container main in pod crash_app(", backOff["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.True(backOff["count"]!.GetValue<int>() >= 3, backOff.ToJsonString());
        Assert.Equal("kubelet", backOff["source"]!["component"]!.GetValue<string>());
    }
}
