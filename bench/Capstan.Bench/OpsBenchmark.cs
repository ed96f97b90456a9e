using System.Diagnostics;
using System.Globalization;
using Capstan.Clusters;
using Capstan.Core.Config;
using Capstan.Core.Rendering;
using Capstan.Core.State;
using Capstan.Deploy;
using Capstan.LocalCluster;
using Capstan.State;
using Capstan.State.Files;

namespace Capstan.Bench;

/// <summary>
/// Operations on the embedded clusters with realistic pod timing (pods start in 1.5 s, ready 1 s later):
/// (a) from the start of a maintenance disable (state write included) until no CronJob and no running maintenance Job
/// is left in either datacenter, with script Jobs running when it starts; (b) full switchovers back and forth: total
/// duration and the read-only window. The baseline of the old world is confd's 30 s polling interval alone.
/// </summary>
internal static class OpsBenchmark
{
    private const double ConfdInterval = 30.0;

    public static async Task<int> RunAsync(string[] args)
    {
        var rounds = int.Parse(BenchTools.Option(args, "--rounds") ?? "5", CultureInfo.InvariantCulture);
        var example = Path.GetFullPath(BenchTools.Option(args, "--repo") ?? "examples/wikifarm");
        var root = Path.Combine(Path.GetTempPath(), "capstan-bench-ops-" + Guid.NewGuid().ToString("N"));
        try
        {
            Capstan.Testing.FarmCopy.To(example, root);

            var files = new DirectoryRepoFiles(root);
            var model = RepoLoader.Load(files).Model;
            var renderer = new FarmRenderer(model, files);
            var timing = SimulationTiming.Realistic with { JobRun = TimeSpan.FromHours(1) };
            await using var clusters = await ClusterSet.ConnectAsync(model, model.DatacenterNames, _ => null, new LocalClusterOptions { Timing = timing }, default);
            await using var store = new FileStateStore(Path.Combine(root, ".capstan", "state"));
            var state = new DynamicStateService(store, model.Project, [.. model.DatacenterNames], TimeProvider.System);
            await state.ChangeAsync(new StateChange.Initialize(StateRules.Fresh("eqiad", ["eqiad", "codfw"])), "bench", "bench", false, default);
            var deploy = new DeployService(model, renderer, clusters, store, TimeProvider.System);
            var options = new ExecutorOptions { Actor = "bench", Reason = "bench" };
            foreach (var ns in new[] { "mw-cron", "mw-script", "mw-jobrunner" })
            {
                var prepared = await deploy.PrepareAsync(new DeployRequest(new RenderSelection(Namespace: ns), false, false, 20, options), await state.ReadRequiredAsync(default), default);
                if (!(await deploy.RunAsync(prepared.Plan, options, new Quiet(), default)).Succeeded)
                {
                    throw new InvalidOperationException($"{ns} did not deploy");
                }
            }

            Console.WriteLine($"example farm: mw-cron, mw-script, mw-jobrunner in eqiad and codfw; realistic pod timing; {rounds} rounds");
            var disableTimes = new List<double>();
            var scripts = new ScriptRunner(model, renderer, clusters);
            var applier = new MaintenanceGateApplier(model, deploy, clusters, new Quiet());
            for (var i = 0; i < rounds; i++)
            {
                // Three long scripts running in the primary, CronJobs in place.
                for (var s = 0; s < 3; s++)
                {
                    await scripts.StartAsync(new ScriptRequest("runJobs.php", "enwiki", ["--maxtime", "3600"], null, null, "bench"), await state.ReadRequiredAsync(default), state.ReadRequiredAsync, default);
                }

                await WaitRunningAsync(clusters, "eqiad", 3);
                var watch = Stopwatch.StartNew();
                await state.ChangeAsync(new StateChange.SetMaintenance(false), "bench", "bench disable", false, default);
                var outcomes = await applier.ApplyAsync(await state.ReadRequiredAsync(default), options, TimeSpan.FromMinutes(2), default);
                var (cronJobs, running) = await CountAsync(clusters);
                var elapsed = watch.Elapsed.TotalSeconds;
                if (cronJobs + running > 0 || outcomes.Any(o => !o.Succeeded))
                {
                    throw new InvalidOperationException($"after disable: {cronJobs} CronJobs, {running} running Jobs");
                }

                disableTimes.Add(elapsed);
                await state.ChangeAsync(new StateChange.SetMaintenance(true), "bench", "bench enable", false, default);
                await applier.ApplyAsync(await state.ReadRequiredAsync(default), options, TimeSpan.FromMinutes(2), default);
            }

            Console.WriteLine($"maintenance disable → 0 CronJobs and 0 running Jobs in both DCs (3 scripts running): median {BenchTools.Median(disableTimes):0.00} s (min {disableTimes.Min():0.00}, max {disableTimes.Max():0.00}); " +
                $"confd interval alone: {ConfdInterval:0} s → {ConfdInterval / BenchTools.Median(disableTimes):0.0}× sooner");

            var totals = new List<double>();
            var windows = new List<double>();
            var from = "eqiad";
            for (var i = 0; i < rounds; i++)
            {
                var to = from == "eqiad" ? "codfw" : "eqiad";
                var runbook = new Switchover(model, state, store, deploy, clusters, new Quiet(), TimeProvider.System);
                var journal = await runbook.RunAsync(new SwitchoverRequest(from, to, false, "bench", "bench"), default);
                totals.Add(journal.Total!.Value.TotalSeconds);
                windows.Add(journal.ReadOnlyWindow!.Value.TotalSeconds);
                Console.WriteLine($"  switchover {from} → {to}: total {journal.Total.Value.TotalSeconds:0.00} s, read-only {journal.ReadOnlyWindow.Value.TotalSeconds:0.000} s; " +
                    string.Join(", ", journal.Steps.Select(s => $"{s.Name} {s.Duration?.TotalSeconds:0.00}")));
                from = to;
            }

            Console.WriteLine($"switchover: total median {BenchTools.Median(totals):0.00} s, read-only window median {BenchTools.Median(windows):0.000} s (max {windows.Max():0.000} s)");
            return 0;
        }
        finally
        {
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }
        }
    }

    private static async Task WaitRunningAsync(ClusterSet clusters, string dc, int atLeast)
    {
        var deadline = Stopwatch.StartNew();
        while ((await clusters[dc].ListAsync("v1", "Pod", "mw-script", "job-name", default)).Items.Count(p => p["status"]?["phase"]?.GetValue<string>() == "Running") < atLeast)
        {
            if (deadline.Elapsed > TimeSpan.FromMinutes(1))
            {
                throw new InvalidOperationException("the scripts never started");
            }

            await Task.Delay(50);
        }
    }

    private static async Task<(int CronJobs, int Running)> CountAsync(ClusterSet clusters)
    {
        var cronJobs = 0;
        var running = 0;
        foreach (var dc in clusters.Datacenters)
        {
            cronJobs += (await clusters[dc].ListAsync("batch/v1", "CronJob", "mw-cron", null, default)).Items.Count;
            foreach (var ns in new[] { "mw-cron", "mw-script" })
            {
                running += (await clusters[dc].ListAsync("v1", "Pod", ns, "job-name", default)).Items.Count(p => p["status"]?["phase"]?.GetValue<string>() is "Running" or "Pending");
            }
        }

        return (cronJobs, running);
    }

    private sealed class Quiet : IDeployObserver
    {
        public void OnEvent(DeployEvent e)
        {
            if (Environment.GetEnvironmentVariable("BENCH_VERBOSE") == "1")
            {
                Console.WriteLine($"    {e.Release?.ToString() ?? "-"} {e.Message}");
            }
        }
    }
}
