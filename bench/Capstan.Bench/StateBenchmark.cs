using System.Diagnostics;
using System.Globalization;
using Capstan.Core.Config;
using Capstan.Core.Rendering;
using Capstan.Core.State;
using Capstan.State;
using Capstan.State.Etcd;
using Capstan.State.Files;
using Capstan.Testing;

namespace Capstan.Bench;

/// <summary>
/// How fast a change of the dynamic state reaches the rendered cron group, against a real etcd (started here on a
/// free loopback port) and the file store: (a) write → read + render of mw-cron in both datacenters, (b) write →
/// a watcher sees it. The point of comparison is confd's 30 s polling interval.
/// </summary>
internal static class StateBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var repo = BenchTools.Option(args, "--repo") ?? "examples/wikifarm";
        var iterations = int.Parse(BenchTools.Option(args, "--iterations") ?? "50", CultureInfo.InvariantCulture);
        var files = new DirectoryRepoFiles(repo);
        var (model, _) = RepoLoader.Load(files);

        var etcd = new EtcdServer();
        await etcd.InitializeAsync();
        var dir = Path.Combine(Path.GetTempPath(), "capstan-bench-state-" + Guid.NewGuid().ToString("N"));
        try
        {
            await MeasureAsync("etcd", () => new EtcdStateStore([etcd.Endpoint], "/capstan-bench"), model, files, iterations);
            await MeasureAsync("file", () => new FileStateStore(dir, pollInterval: TimeSpan.FromMilliseconds(20)), model, files, iterations);
        }
        finally
        {
            await etcd.DisposeAsync();
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
        }

        Console.WriteLine("baseline: confd polls every 30 s, so today a change reaches the deploy host's values after up to 30 000 ms");
        return 0;
    }

    private static async Task MeasureAsync(string name, Func<IStateStore> open, FarmModel model, DirectoryRepoFiles files, int iterations)
    {
        await using var store = open();
        await using var watcherStore = open();
        var dcs = model.DatacenterNames.ToList();
        var service = new DynamicStateService(store, model.Project, dcs, TimeProvider.System);
        var watcher = new DynamicStateService(watcherStore, model.Project, dcs, TimeProvider.System);
        if ((await service.ReadAsync(default)).State is null)
        {
            await service.ChangeAsync(new StateChange.Initialize(StateRules.Fresh(dcs[0], dcs)), "bench", "bench", false, default);
        }

        var renderer = new FarmRenderer(model, files);
        var writes = new List<double>();
        var reactions = new List<double>();
        var watchLatency = new List<double>();
        var seen = new System.Collections.Concurrent.ConcurrentDictionary<long, long>();
        using var cts = new CancellationTokenSource();
        var watching = Task.Run(async () =>
        {
            try
            {
                await foreach (var (doc, _) in watcher.WatchAsync(cts.Token))
                {
                    seen[doc.Sequence] = Stopwatch.GetTimestamp();
                }
            }
            catch (OperationCanceledException)
            {
            }
        });
        await Task.Delay(500);

        for (var i = 0; i < iterations + 3; i++)
        {
            var started = Stopwatch.GetTimestamp();
            var current = await service.ReadRequiredAsync(default);
            var write = await service.ChangeAsync(new StateChange.SetMaintenance(!current.MaintenanceEnabled), "bench", "bench", false, default);
            var written = Stopwatch.GetTimestamp();

            var state = await service.ReadRequiredAsync(default);
            var result = renderer.Render(new RenderSelection(Namespace: "mw-cron"), state);
            var texts = ManifestText.ToYaml(result.Releases, revealSecrets: false);
            var rendered = Stopwatch.GetTimestamp();
            if (texts.Count == 0)
            {
                throw new InvalidOperationException("nothing rendered");
            }

            while (!seen.ContainsKey(write.Document.Sequence))
            {
                await Task.Delay(1);
            }

            if (i >= 3)
            {
                writes.Add(Stopwatch.GetElapsedTime(started, written).TotalMilliseconds);
                reactions.Add(Stopwatch.GetElapsedTime(written, rendered).TotalMilliseconds);
                watchLatency.Add(Stopwatch.GetElapsedTime(started, seen[write.Document.Sequence]).TotalMilliseconds);
            }
        }

        await cts.CancelAsync();
        await watching;
        Console.WriteLine($"{name}: write (read + compare-and-swap) median {Median(writes):F1} ms");
        Console.WriteLine($"{name}: state read + render of mw-cron in both DCs after a change: median {Median(reactions):F1} ms, p90 {Percentile(reactions, 0.9):F1} ms");
        Console.WriteLine($"{name}: watch latency (write starts -> watcher sees it): median {Median(watchLatency):F1} ms, p90 {Percentile(watchLatency, 0.9):F1} ms");
    }

    private static double Median(List<double> values) => Percentile(values, 0.5);

    private static double Percentile(List<double> values, double p)
    {
        var sorted = values.Order().ToList();
        return sorted[Math.Min(sorted.Count - 1, (int)(sorted.Count * p))];
    }
}
