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
        var outcomes = await applier.ApplyAsync(disabled, new ExecutorOptions { Actor = "t", Reason = "t" }, TimeSpan.FromSeconds(30), default);
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
        var enabled = await applier.ApplyAsync(farm.State, new ExecutorOptions { Actor = "t", Reason = "t" }, TimeSpan.FromSeconds(5), default);
        Assert.Equal(6, enabled.Single(o => o.Datacenter == "eqiad").CronJobs);
        Assert.Equal(0, enabled.Single(o => o.Datacenter == "codfw").CronJobs);
    }

    [Fact]
    public async Task Cron_jobs_firing_while_maintenance_is_being_disabled_leave_no_job_running_and_none_start_afterwards()
    {
        var clock = new ManualClock(new DateTimeOffset(2026, 11, 21, 10, 0, 30, TimeSpan.Zero));
        await using var farm = await FarmHarness.StartAsync(new LocalClusterOptions { Time = clock, Timing = SimulationTiming.Instant with { JobRun = TimeSpan.FromDays(30) } });
        Assert.True((await farm.DeployAsync(new RenderSelection(Namespace: "mw-cron"))).Result!.Succeeded);
        Assert.True((await farm.DeployAsync(new RenderSelection(Namespace: "mw-script"))).Result!.Succeeded);

        // On schedule: at 10:30 cirrus-sanity-check fires in the primary; nothing in the secondary.
        clock.Advance(TimeSpan.FromMinutes(30));
        await WaitUntilAsync(async () => (await RunningJobsAsync(farm, "eqiad")).Count > 0);
        Assert.Contains(await RunningJobsAsync(farm, "eqiad"), j => j.StartsWith("cirrus-sanity-check-", StringComparison.Ordinal));
        Assert.Empty(await RunningJobsAsync(farm, "codfw"));

        // Time runs fast while the gate closes: every CronJob comes due again and again during the disable window.
        using var ticking = new CancellationTokenSource();
        var before = await RunningJobsAsync(farm, "eqiad");
        var ticker = Task.Run(async () =>
        {
            while (!ticking.IsCancellationRequested)
            {
                clock.Advance(TimeSpan.FromMinutes(7));
                await Task.Delay(2);
            }
        });

        // The gate starts closing once a new run has fired, while the clock keeps racing ahead.
        await WaitUntilAsync(async () => (await RunningJobsAsync(farm, "eqiad")).Except(before).Any());
        var disabled = farm.State with { MaintenanceEnabled = false, MaintenanceReason = "switchover" };
        var applier = new MaintenanceGateApplier(farm.Model, farm.Service(), farm.Clusters, new EventLog());
        var outcomes = await applier.ApplyAsync(disabled, new ExecutorOptions { Actor = "t", Reason = "t" }, TimeSpan.FromSeconds(30), default);
        await ticking.CancelAsync();
        await ticker;

        // Nothing is left running: no CronJob, no Job, no pod of one.
        foreach (var dc in new[] { "eqiad", "codfw" })
        {
            Assert.Empty((await farm.Clusters[dc].ListAsync("batch/v1", "CronJob", "mw-cron", null, default)).Items);
            Assert.Empty(await RunningJobsAsync(farm, dc));
            Assert.DoesNotContain((await farm.Clusters[dc].ListAsync("v1", "Pod", "mw-cron", "job-name", default)).Items, p => p["status"]?["phase"]?.GetValue<string>() is "Running" or "Pending");
        }

        // A day later, with the controllers given time to act on it, still no maintenance Job has started.
        clock.Advance(TimeSpan.FromDays(1));
        foreach (var dc in new[] { "eqiad", "codfw" })
        {
            await farm.Clusters.LocalServer(dc)!.QuietAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }

        foreach (var dc in new[] { "eqiad", "codfw" })
        {
            Assert.Empty(await RunningJobsAsync(farm, dc));
            Assert.Empty((await farm.Clusters[dc].ListAsync("batch/v1", "Job", "mw-cron", null, default)).Items);
        }
    }

    private static async Task<List<string>> RunningJobsAsync(FarmHarness farm, string dc)
    {
        var names = new List<string>();
        foreach (var ns in new[] { "mw-cron", "mw-script" })
        {
            names.AddRange((await farm.Clusters[dc].ListAsync("batch/v1", "Job", ns, null, default)).Items
                .Where(j => !(j["status"]?["conditions"] as System.Text.Json.Nodes.JsonArray ?? []).Any(c => c?["status"]?.GetValue<string>() == "True"))
                .Select(j => j["metadata"]!["name"]!.GetValue<string>()));
        }

        return names;
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting");
            await Task.Delay(20);
        }
    }

    private static System.Text.Json.Nodes.JsonObject Cluster(string yaml)
    {
        var node = Core.Yaml.YamlReader.ReadSingle(yaml, "job.yaml", new Core.Diagnostics.DiagnosticBag());
        return (System.Text.Json.Nodes.JsonObject)Core.Yaml.ValueNodeJson.ToJson(node!)!;
    }
}
