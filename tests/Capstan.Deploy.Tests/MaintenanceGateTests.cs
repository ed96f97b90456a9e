using Capstan.Core.Rendering;
using Capstan.LocalCluster;

namespace Capstan.Deploy.Tests;

public sealed class MaintenanceGateTests
{
    [Fact]
    public async Task Disabling_maintenance_deletes_cron_jobs_everywhere_and_waits_for_running_jobs()
    {
        await using var farm = await FarmHarness.StartAsync(new LocalClusterOptions { Timing = SimulationTiming.Instant with { JobRun = TimeSpan.FromHours(1) } });
        Assert.True((await farm.DeployAsync(new RenderSelection(Namespace: "mw-cron"))).Result!.Succeeded);
        Assert.True((await farm.DeployAsync(new RenderSelection(Namespace: "mw-script"))).Result!.Succeeded);
        Assert.Equal(6, (await farm.Clusters["eqiad"].ListAsync("batch/v1", "CronJob", "mw-cron", null, default)).Items.Count);
        Assert.Empty((await farm.Clusters["codfw"].ListAsync("batch/v1", "CronJob", "mw-cron", null, default)).Items);

        // A long maintenance script is running in eqiad.
        await farm.Clusters["eqiad"].ApplyAsync(Cluster("""
            apiVersion: batch/v1
            kind: Job
            metadata: {name: run-abcd1234, namespace: mw-script, labels: {app: mediawiki}}
            spec:
              backoffLimit: 0
              template:
                metadata: {labels: {app: mediawiki}}
                spec: {restartPolicy: Never, containers: [{name: main, image: x}]}
            """), false, false, default);

        var disabled = farm.State with { MaintenanceEnabled = false, MaintenanceReason = "switchover" };
        var applier = new MaintenanceGateApplier(farm.Model, farm.Service(), farm.Clusters, new EventLog());
        var outcomes = await applier.ApplyAsync(disabled, new ExecutorOptions { Actor = "t", Reason = "t", PollInterval = TimeSpan.FromMilliseconds(20) }, TimeSpan.FromSeconds(30), default);
        Assert.All(outcomes, o => Assert.True(o.Succeeded));
        Assert.All(outcomes, o => Assert.Equal(0, o.CronJobs));
        Assert.Equal(1, outcomes.Single(o => o.Datacenter == "eqiad").JobsDeleted);
        foreach (var dc in new[] { "eqiad", "codfw" })
        {
            Assert.Empty((await farm.Clusters[dc].ListAsync("batch/v1", "CronJob", "mw-cron", null, default)).Items);
            Assert.Empty((await farm.Clusters[dc].ListAsync("batch/v1", "Job", "mw-script", null, default)).Items);
            Assert.Empty((await farm.Clusters[dc].ListAsync("v1", "Pod", "mw-script", "app=mediawiki", default)).Items);
        }

        // Re-running is safe, and enabling brings the CronJobs back in the primary only.
        Assert.All(await applier.ApplyAsync(disabled, new ExecutorOptions { Actor = "t", Reason = "t" }, TimeSpan.FromSeconds(5), default), o => Assert.True(o.Succeeded));
        var enabled = await applier.ApplyAsync(farm.State, new ExecutorOptions { Actor = "t", Reason = "t", PollInterval = TimeSpan.FromMilliseconds(20) }, TimeSpan.FromSeconds(5), default);
        Assert.Equal(6, enabled.Single(o => o.Datacenter == "eqiad").CronJobs);
        Assert.Equal(0, enabled.Single(o => o.Datacenter == "codfw").CronJobs);
    }

    private static System.Text.Json.Nodes.JsonObject Cluster(string yaml)
    {
        var node = Core.Yaml.YamlReader.ReadSingle(yaml, "job.yaml", new Core.Diagnostics.DiagnosticBag());
        return (System.Text.Json.Nodes.JsonObject)Core.Yaml.ValueNodeJson.ToJson(node!)!;
    }
}
