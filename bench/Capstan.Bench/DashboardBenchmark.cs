using System.Diagnostics;
using System.Globalization;
using System.Net;
using Capstan.Clusters;
using Capstan.Core.Config;
using Capstan.Core.Kubernetes;
using Capstan.Core.Rendering;
using Capstan.Core.State;
using Capstan.Deploy;
using Capstan.LocalCluster;
using Capstan.State;
using Capstan.Web;

namespace Capstan.Bench;

/// <summary>
/// The dashboard: the server's own time (its Server-Timing) for the overview page, <c>/api/v1/releases</c> and the page of
/// the largest release (352 pods),
/// against the work of <c>capstan status -o json</c> for the same data (reading every release's record and readiness
/// in both datacenters and writing the JSON), on the deployed example farm with its clusters served over HTTP.
/// The three are measured in turn, round after round, in one process; the command's work runs on fresh clients each
/// time, as a new process would, while the dashboard keeps its watches.
/// </summary>
internal static class DashboardBenchmark
{
    /// <summary>The farm's largest release: 352 pods in eqiad.</summary>
    private const string ReleasePage = "/releases/eqiad/mw-web/main";

    public static async Task<int> RunAsync(string[] args)
    {
        var rounds = int.Parse(BenchTools.Option(args, "--rounds") ?? "20", CultureInfo.InvariantCulture);
        var example = BenchTools.Option(args, "--repo") ?? "examples/wikifarm";
        var root = Path.Combine(Path.GetTempPath(), "capstan-bench-dashboard-" + Guid.NewGuid().ToString("N"));
        try
        {
            DeployBenchmark.CopyFarm(example, root);
            var files = new DirectoryRepoFiles(root);
            var model = RepoLoader.Load(files).Model;
            await using var clusters = await ClusterSet.ConnectAsync(model, model.DatacenterNames, _ => null, new LocalClusterOptions(), default);
            await using var store = StateStoreAddress.Open(model.StateEndpoint, root);
            var state = new DynamicStateService(store, model.Project, [.. model.DatacenterNames], TimeProvider.System);
            await state.ChangeAsync(new StateChange.Initialize(StateRules.Fresh("eqiad", [.. model.DatacenterNames])), "bench", "bench", force: false, default);
            var service = new DeployService(model, new FarmRenderer(model, files), clusters, store, TimeProvider.System);
            var options = new ExecutorOptions { Actor = "bench", Reason = "bench" };
            var prepared = await service.PrepareAsync(new DeployRequest(new RenderSelection(), false, false, Core.Planning.Planner.DefaultConcurrency, options), await state.ReadRequiredAsync(default), default);
            if (!(await service.RunAsync(prepared.Plan, options, SilentObserver.Instance, default)).Succeeded)
            {
                throw new InvalidOperationException("the example farm did not deploy");
            }

            await using var data = new DashboardData(model, files, clusters, store, TimeProvider.System);
            await using var dashboard = await Dashboard.StartAsync(
                data, new DashboardOptions(new IPEndPoint(IPAddress.Loopback, 0), Users.None), TimeProvider.System, default);
            using var http = new HttpClient { BaseAddress = dashboard.Url };
            var namespaces = model.Groups.Select(g => g.Namespace).ToList();
            var renderer = new FarmRenderer(model, files);
            var sync = new List<double>();
            async Task<double> StatusAsync()
            {
                // Fresh clients each time, as a new `capstan status` process has (its own connections and full request
                // budget; the clusters stay served by this process).
                await using var fresh = await ClusterSet.ConnectAsync(model, model.DatacenterNames, _ => null, new LocalClusterOptions(), default);
                var watch = Stopwatch.StartNew();
                var status = await FarmStatus.ReadAsync(fresh, namespaces, null, default);
                var read = watch.Elapsed;

                // The sync verdicts as the command computes them: the state, the holds, a render of the repo.
                var holds = await new HoldStore(store, model.Project).ListAsync(default);
                var judged = await ReleaseSync.JudgeAsync(status, model, renderer, fresh, (await state.ReadAsync(default)).State, holds, default);
                sync.Add((watch.Elapsed - read).TotalMilliseconds);
                _ = KubeSerializer.ToJson(judged.ToJson());
                return watch.Elapsed.TotalMilliseconds;
            }

            async Task<double> ServerTimeAsync(string path)
            {
                using var response = await http.GetAsync(path);
                response.EnsureSuccessStatusCode();
                _ = await response.Content.ReadAsStringAsync();
                var timing = response.Headers.GetValues("Server-Timing").Single();
                return double.Parse(timing[(timing.IndexOf("dur=", StringComparison.Ordinal) + 4)..], CultureInfo.InvariantCulture);
            }

            for (var warm = 0; warm < 3; warm++)
            {
                await StatusAsync();
                await ServerTimeAsync("/");
                await ServerTimeAsync("/api/v1/releases");
                await ServerTimeAsync(ReleasePage);
            }

            sync.Clear();
            var (status, page, api, release) = (new List<double>(), new List<double>(), new List<double>(), new List<double>());
            for (var round = 0; round < rounds; round++)
            {
                status.Add(await StatusAsync());
                page.Add(await ServerTimeAsync("/"));
                api.Add(await ServerTimeAsync("/api/v1/releases"));
                release.Add(await ServerTimeAsync(ReleasePage));
            }

            var pods = System.Text.Json.Nodes.JsonNode.Parse(await http.GetStringAsync("/api/v1" + ReleasePage))!["pods"]!.AsArray().Count;

            var releases = (await FarmStatus.ReadAsync(clusters, namespaces, null, default)).Releases.Count;
            Console.WriteLine($"example farm deployed ({releases} releases in 2 datacenters), clusters served over HTTPS in this process, {rounds} rounds, medians:");
            Console.WriteLine($"capstan status -o json, its own work: {BenchTools.Median(status):0.0} ms, of which the sync verdicts {BenchTools.Median(sync):0.0} ms (sync / the rest {BenchTools.Median(sync) / (BenchTools.Median(status) - BenchTools.Median(sync)):0.00})");
            Console.WriteLine($"overview page, server time: {BenchTools.Median(page):0.0} ms (ratio {BenchTools.Median(page) / BenchTools.Median(status):0.00})");
            Console.WriteLine($"/api/v1/releases, server time: {BenchTools.Median(api):0.0} ms (ratio {BenchTools.Median(api) / BenchTools.Median(status):0.00})");
            Console.WriteLine($"release page of {ReleasePage[10..]} ({pods} pods), server time: {BenchTools.Median(release):0.0} ms (aim: under 100 ms; ratio to status {BenchTools.Median(release) / BenchTools.Median(status):0.00})");
            return 0;
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
