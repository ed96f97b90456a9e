using System.Diagnostics;
using System.Globalization;
using Capstan.Clusters;
using Capstan.Core.Config;
using Capstan.Core.Rendering;
using Capstan.Core.State;
using Capstan.Deploy;
using Capstan.LocalCluster;
using Capstan.State.Files;

namespace Capstan.Bench;

/// <summary>
/// Environments: the time to create one of mw-web and mw-api-int (one datacenter, with support releases and the own
/// backends its class gives it) until every pod is ready, and to delete it, against the deploy of the same releases in
/// production on the same cluster, with the same simulated pod timing; and the isolation scan's share of the create.
/// </summary>
internal static class EnvironmentBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var rounds = int.Parse(BenchTools.Option(args, "--rounds") ?? "3", CultureInfo.InvariantCulture);
        var example = BenchTools.Option(args, "--repo") ?? "examples/wikifarm";
        var root = Path.Combine(Path.GetTempPath(), "capstan-bench-env-" + Guid.NewGuid().ToString("N"));
        try
        {
            DeployBenchmark.CopyFarm(example, root);

            Testing.FarmCopy.WriteEnvironmentSecrets(root, "bench");
            var files = new DirectoryRepoFiles(root);
            var model = RepoLoader.Load(files).Model;
            var state = StateRules.Fresh("eqiad", ["eqiad", "codfw"]);
            var timing = SimulationTiming.Realistic with { Tick = TimeSpan.FromMilliseconds(50) };
            await using var clusters = await ClusterSet.ConnectAsync(model, ["eqiad"], _ => null, new LocalClusterOptions { Timing = timing }, default);
            await using var store = new FileStateStore(Path.Combine(root, ".capstan", "state"));
            string[] groups = ["mw-web", "mw-api-int"];

            var production = new List<double>();
            var creates = new List<double>();
            var deletes = new List<double>();
            var scans = new List<double>();
            for (var round = 0; round < rounds; round++)
            {
                // Production's deploy of the same releases into fresh namespaces (the environment's cost is the same work).
                var watch = Stopwatch.StartNew();
                foreach (var group in groups)
                {
                    var service = new DeployService(model, new FarmRenderer(model, files), clusters, store, TimeProvider.System);
                    var request = new DeployRequest(new RenderSelection("eqiad", group), false, false, Core.Planning.Planner.DefaultConcurrency, new ExecutorOptions { Actor = "bench", Reason = "bench" });
                    var prepared = await service.PrepareAsync(request, state, default);
                    if (!prepared.Plan.IsNoOp && !(await service.RunAsync(prepared.Plan, request.Executor, SilentObserver.Instance, default)).Succeeded)
                    {
                        throw new InvalidOperationException($"production {group} did not deploy");
                    }
                }

                production.Add(watch.Elapsed.TotalSeconds);
                foreach (var group in groups)
                {
                    await clusters["eqiad"].DeleteAsync(new Capstan.Kubernetes.ObjectRef("v1", "Namespace", null, group), Capstan.Kubernetes.Propagation.Background, default);
                }

                var environments = new EnvironmentService(model, files, clusters, store, TimeProvider.System);
                var request2 = new EnvironmentRequest("bench", "bench", "ci", "benchmark", [], TimeSpan.FromHours(1), false, null, ["eqiad"], groups, [], "bench");
                watch.Restart();
                var (record, _) = await environments.CreateAsync(request2, state, SilentObserver.Instance, default);
                creates.Add(watch.Elapsed.TotalSeconds);

                // The isolation scan alone (the create ran it once before writing anything): every rendered object searched.
                var renderer = EnvironmentScope.Renderer(model, files, record);
                var rendered = renderer.Render(new RenderSelection("eqiad"), EnvironmentScope.Clone(state, record.Datacenters));
                watch.Restart();
                var hits = EnvironmentIsolation.Find(model, files, record, renderer, rendered);
                scans.Add(watch.Elapsed.TotalSeconds);
                if (hits.Count > 0)
                {
                    throw new InvalidOperationException($"the environment carries production's endpoints: {hits[0]}");
                }

                watch.Restart();
                await environments.DeleteAsync("bench", "bench", force: false, default);
                deletes.Add(watch.Elapsed.TotalSeconds);
            }

            var backends = EnvironmentScope.Backends(model, "bench", "ci")?.Items.Count(i => i.Deployed) ?? 0;
            Console.WriteLine($"environment of mw-web + mw-api-int in eqiad with {backends} own backends (pods start in {timing.PodStart.TotalSeconds:0.0} s, ready {timing.PodReady.TotalSeconds:0.0} s later), {rounds} rounds, medians:");
            Console.WriteLine($"production deploy of the same releases {BenchTools.Median(production):F2} s; environment create {BenchTools.Median(creates):F2} s (ratio {BenchTools.Median(creates) / BenchTools.Median(production):F2}); delete {BenchTools.Median(deletes):F2} s (ratio {BenchTools.Median(deletes) / BenchTools.Median(production):F2})");
            Console.WriteLine($"isolation scan {BenchTools.Median(scans) * 1000:F1} ms ({BenchTools.Median(scans) / BenchTools.Median(creates) * 100:F1} % of the create)");
        }
        finally
        {
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }
        }

        return 0;
    }
}
