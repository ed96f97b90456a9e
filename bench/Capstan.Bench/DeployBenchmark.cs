using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Capstan.Clusters;
using Capstan.Core.Config;
using Capstan.Core.Planning;
using Capstan.Core.Rendering;
using Capstan.Core.State;
using Capstan.Deploy;
using Capstan.LocalCluster;
using Capstan.State.Files;

namespace Capstan.Bench;

/// <summary>
/// (a) Planning a synthetic farm of N releases per datacenter × 2 datacenters with nothing to change, including listing
/// the live objects from the embedded server; (b) a deploy of the example farm with simulated rollout durations against
/// the critical path of its plan (the longest chain of needs and stages, each release weighted by its own duration).
/// </summary>
internal static class DeployBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var releases = int.Parse(BenchTools.Option(args, "--releases") ?? "1000", CultureInfo.InvariantCulture);
        var root = Path.Combine(Path.GetTempPath(), "capstan-bench-deploy-" + Guid.NewGuid().ToString("N"));
        try
        {
            await PlanSyntheticAsync(Path.Combine(root, "synthetic"), releases);
            await CriticalPathAsync(Path.Combine(root, "example"), BenchTools.Option(args, "--repo") ?? "examples/wikifarm");
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

    private static async Task PlanSyntheticAsync(string repo, int releases)
    {
        const int PerGroup = 10;
        var groups = (releases + PerGroup - 1) / PerGroup;
        Directory.CreateDirectory(Path.Combine(repo, "groups"));
        Directory.CreateDirectory(Path.Combine(repo, "private"));
        Directory.CreateDirectory(Path.Combine(repo, "values"));
        await File.WriteAllTextAsync(Path.Combine(repo, "capstan.yaml"), "project: synthetic\ndatacenters:\n  eqiad: {cluster: local://eqiad}\n  codfw: {cluster: local://codfw}\nstate: file://.capstan/state\n");
        await File.WriteAllTextAsync(Path.Combine(repo, "values", "common.yaml"), "images:\n  mediawiki: registry.example/mediawiki:1\n");
        await File.WriteAllTextAsync(Path.Combine(repo, "private", "secrets.yaml"), "secrets:\n  tls: {certificate: c, key: k}\n");
        for (var g = 0; g < groups; g++)
        {
            // Each group: its statsd-exporter support release and nine MediaWiki releases that need it.
            var sb = new StringBuilder($"tls-port: {10000 + g}\nreleases:\n  prometheus:\n    kind: statsd-exporter\n");
            for (var r = 1; r < PerGroup && (g * PerGroup) + r < releases; r++)
            {
                sb.Append(CultureInfo.InvariantCulture, $"  r{r}:\n    replicas: 1\n    needs: [prometheus]\n");
            }

            await File.WriteAllTextAsync(Path.Combine(repo, "groups", $"mw-g{g:D3}.yaml"), sb.ToString());
        }

        var files = new DirectoryRepoFiles(repo);
        var model = RepoLoader.Load(files).Model;
        var state = StateRules.Fresh("eqiad", ["eqiad", "codfw"]);
        await using var clusters = await ClusterSet.ConnectAsync(model, model.DatacenterNames, _ => null, new LocalClusterOptions(), default);
        await using var store = new FileStateStore(Path.Combine(repo, ".capstan", "state"));
        var service = new DeployService(model, new FarmRenderer(model, files), clusters, store, TimeProvider.System);
        var request = new DeployRequest(new RenderSelection(), false, false, Planner.DefaultConcurrency, new ExecutorOptions { Actor = "bench", Reason = "bench" });

        var first = Stopwatch.StartNew();
        var prepared = await service.PrepareAsync(request, state, default);
        var initialPlan = first.Elapsed;
        var result = await service.RunAsync(prepared.Plan, request.Executor, new NullObserver(), default);
        var deployTime = first.Elapsed - initialPlan;
        if (!result.Succeeded)
        {
            throw new InvalidOperationException("the synthetic farm did not deploy");
        }

        var times = new List<double>();
        var requests = new List<long>();
        for (var i = 0; i < 3; i++)
        {
            // As a new `capstan diff` would: fresh clients (with a full request budget; the deploy above spent this
            // process's), on the clusters hosted here.
            await using var fresh = await ClusterSet.ConnectAsync(model, model.DatacenterNames, _ => null, new LocalClusterOptions(), default);
            long Requests() => model.DatacenterNames.Sum(dc => fresh[dc] is Capstan.Kubernetes.KubeClient client ? client.Requests : 0);
            var planner = new DeployService(model, new FarmRenderer(model, files), fresh, store, TimeProvider.System);
            var before = Requests();
            var sw = Stopwatch.StartNew();
            var again = await planner.PrepareAsync(request, state, default);
            times.Add(sw.Elapsed.TotalMilliseconds);
            requests.Add(Requests() - before);
            if (!again.Plan.IsNoOp)
            {
                throw new InvalidOperationException("the second plan of the synthetic farm is not a no-op");
            }
        }

        var objects = prepared.Plan.Actions.Sum(a => a.Desired.Count);
        Console.WriteLine($"synthetic farm: {prepared.Plan.Actions.Count} releases ({releases} per datacenter x 2), {objects} objects; first deploy {deployTime.TotalSeconds:F1} s (plan {initialPlan.TotalMilliseconds:F0} ms)");
        Console.WriteLine($"plan with no changes (render + list live objects + compare), 3 runs: {string.Join(", ", times.Select(t => t.ToString("F0", CultureInfo.InvariantCulture)))} ms; median {times.Order().ElementAt(1):F0} ms");
        var namespaces = prepared.Plan.Actions.Select(a => (a.Id.Datacenter, a.Id.Namespace)).Distinct().Count();
        Console.WriteLine($"API requests of that plan: {requests[0]} ({namespaces} namespaces, {objects} objects, {prepared.Plan.Actions.Count} releases)");
        await ComparisonPassAsync(model, files, clusters, state);
    }

    /// <summary>
    /// The comparison of that no-change plan alone, on live objects read once: the judge's pass handed to the planner
    /// (each object serialised and compared once) against the planner comparing everything again (two passes, as when
    /// the judge handed over only its dry-run results).
    /// </summary>
    private static async Task ComparisonPassAsync(FarmModel model, DirectoryRepoFiles files, ClusterSet clusters, DynamicState state)
    {
        var renderer = new FarmRenderer(model, files);
        var releases = renderer.Render(renderer.Select(new RenderSelection()).ToList(), state, withNamespaces: false).Releases;
        var live = new Dictionary<ReleaseId, LiveRelease>();
        foreach (var dc in model.DatacenterNames)
        {
            foreach (var (id, release) in (await LiveReader.ReadAsync(clusters[dc], dc, releases.Where(r => r.Datacenter == dc), default)).Releases)
            {
                live[id] = release;
            }
        }

        var namespaces = model.DatacenterNames.ToDictionary(dc => dc, _ => (IReadOnlySet<string>)new HashSet<string>(StringComparer.Ordinal), StringComparer.Ordinal);
        async Task<double> TimeAsync(bool handOver)
        {
            var sw = Stopwatch.StartNew();
            var judged = new Dictionary<ReleaseId, JudgedRelease>();
            foreach (var dc in model.DatacenterNames)
            {
                foreach (var (id, judgement) in await ServerJudge.JudgeAsync(clusters[dc], releases.Where(r => r.Datacenter == dc), live, default))
                {
                    judged[id] = judgement;
                }
            }

            var plan = Planner.Build(model, releases, live, namespaces, judged: handOver ? judged : null);
            if (!plan.Actions.All(a => a.Change == ReleaseChange.NoOp))
            {
                throw new InvalidOperationException("the comparison found a change in the no-change farm");
            }

            return sw.Elapsed.TotalMilliseconds;
        }

        var once = new List<double>();
        var twice = new List<double>();
        for (var i = 0; i < 5; i++)
        {
            // Alternated, so that drift of the machine touches both alike.
            once.Add(await TimeAsync(handOver: true));
            twice.Add(await TimeAsync(handOver: false));
        }

        var (a, b) = (BenchTools.Median(once), BenchTools.Median(twice));
        Console.WriteLine($"comparison of that plan (live read once; 5 runs each, medians): one pass {a:F0} ms, two passes {b:F0} ms; ratio {a / b:F2}");
    }

    private static async Task CriticalPathAsync(string repo, string example)
    {
        CopyFarm(example, repo);

        var files = new DirectoryRepoFiles(repo);
        var model = RepoLoader.Load(files).Model;
        var state = StateRules.Fresh("eqiad", ["eqiad", "codfw"]);
        var timing = SimulationTiming.Realistic with { Tick = TimeSpan.FromMilliseconds(50) };
        await using var clusters = await ClusterSet.ConnectAsync(model, model.DatacenterNames, _ => null, new LocalClusterOptions { Timing = timing }, default);
        await using var store = new FileStateStore(Path.Combine(repo, ".capstan", "state"));
        var service = new DeployService(model, new FarmRenderer(model, files), clusters, store, TimeProvider.System);
        var request = new DeployRequest(new RenderSelection(), false, false, Planner.DefaultConcurrency, new ExecutorOptions { Actor = "bench", Reason = "bench" });
        var prepared = await service.PrepareAsync(request, state, default);
        var observer = new TimingObserver();
        long Requests() => model.DatacenterNames.Sum(dc => clusters[dc] is Capstan.Kubernetes.KubeClient client ? client.Requests : 0);
        var requestsBefore = Requests();
        var watch = Stopwatch.StartNew();
        var result = await service.RunAsync(prepared.Plan, request.Executor, observer, default);
        var total = watch.Elapsed.TotalSeconds;
        var requests = Requests() - requestsBefore;

        // Longest path through the plan's dependency graph, each release weighted by its measured duration.
        var durations = prepared.Plan.Actions.ToDictionary(a => a, a => observer.Duration(a.Id));
        var finish = new Dictionary<ReleaseAction, double>();
        double Finish(ReleaseAction a) => finish.TryGetValue(a, out var f) ? f : finish[a] = durations[a] + prepared.Plan.Dependencies(a).Select(Finish).DefaultIfEmpty(0).Max();
        var critical = prepared.Plan.Actions.Max(Finish);
        var namespaces = observer.NamespaceSeconds;
        Console.WriteLine($"example farm deploy with simulated rollouts (pods start in {timing.PodStart.TotalSeconds:0.0} s, ready {timing.PodReady.TotalSeconds:0.0} s later): {(result.Succeeded ? "succeeded" : "FAILED")}");
        Console.WriteLine($"total {total:F2} s; critical path of the plan {critical + namespaces:F2} s (namespaces {namespaces:F2} s + releases {critical:F2} s); ratio {total / (critical + namespaces):F3}");
        var objects = prepared.Plan.Actions.Sum(a => a.Apply.Count);
        Console.WriteLine($"API requests of that deploy: {requests} ({prepared.Plan.Actions.Count} releases, {objects} objects applied; the rest are waits, records and the journal)");
    }

    /// <summary>Copies a farm repo (without its local state) into a directory.</summary>
    internal static void CopyFarm(string example, string into)
    {
        foreach (var file in Directory.EnumerateFiles(example, "*", SearchOption.AllDirectories).Where(f => !f.Contains(".capstan", StringComparison.Ordinal)))
        {
            var target = Path.Combine(into, Path.GetRelativePath(example, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    private sealed class NullObserver : IDeployObserver
    {
        public void OnEvent(DeployEvent e)
        {
            if (Environment.GetEnvironmentVariable("BENCH_VERBOSE") == "1")
            {
                Console.Error.WriteLine($"{e.At:HH:mm:ss.fff} {e.Release} {e.State} {e.Message}");
            }
        }
    }

    private sealed class TimingObserver : IDeployObserver
    {
        private readonly ConcurrentDictionary<ReleaseId, DateTimeOffset> _start = new();
        private readonly ConcurrentDictionary<ReleaseId, DateTimeOffset> _end = new();
        private DateTimeOffset? _firstNamespace;
        private DateTimeOffset? _firstRelease;

        public double NamespaceSeconds => _firstNamespace is { } n && _firstRelease is { } r ? (r - n).TotalSeconds : 0;

        public void OnEvent(DeployEvent e)
        {
            if (e.Release is null)
            {
                _firstNamespace ??= e.At;
                return;
            }

            _firstRelease ??= e.At;
            if (e.State is ReleaseState.Applying or ReleaseState.Unchanged)
            {
                _start.TryAdd(e.Release, e.At);
            }

            if (e.State is ReleaseState.Done or ReleaseState.Failed or ReleaseState.Unchanged)
            {
                _end[e.Release] = e.At;
            }
        }

        public double Duration(ReleaseId id) => _start.TryGetValue(id, out var s) && _end.TryGetValue(id, out var e) ? (e - s).TotalSeconds : 0;
    }
}
