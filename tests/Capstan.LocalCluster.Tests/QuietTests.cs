namespace Capstan.LocalCluster.Tests;

/// <summary>What negative checks wait on: a controller pass that found nothing left to do.</summary>
public sealed class QuietTests
{
    [Fact]
    public async Task Once_quiet_the_controllers_have_done_what_they_do_about_what_is_stored()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("app");
        await cluster.ApplyAsync("""
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web, namespace: app}
            spec:
              replicas: 3
              selector: {matchLabels: {app: web}}
              template:
                metadata: {labels: {app: web}}
                spec: {containers: [{name: main, image: x}]}
            """);

        await cluster.Server.QuietAsync().WaitAsync(TimeSpan.FromSeconds(30));

        // Nothing else waited for: the ReplicaSet, its three pods and the rollout are all there already.
        Assert.Single((await cluster.Client.ListAsync("apps/v1", "ReplicaSet", "app", "app=web", default)).Items);
        var pods = (await cluster.Client.ListAsync("v1", "Pod", "app", "app=web", default)).Items;
        Assert.Equal(3, pods.Count);
        Assert.All(pods, p => Assert.Equal("Running", p["status"]!["phase"]!.GetValue<string>()));
        Assert.True((await cluster.Client.GetRolloutStatusAsync("app", "web", default)).Done);
    }
}
