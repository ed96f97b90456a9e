using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Clusters;
using Capstan.Core.Config;
using Capstan.Core.Planning;
using Capstan.Core.Rendering;
using Capstan.Core.State;
using Capstan.Deploy;
using Capstan.Deploy.Gates;
using Capstan.LocalCluster;
using Capstan.State.Files;
using Capstan.Testing;

namespace Capstan.Bench;

/// <summary>
/// The gate after the canaries. (1) Latency, on the example farm's mw-web in one datacenter with realistic pod timing
/// and a real Prometheus scraping every 5 s: from the canaries being ready to the verdict, against the soak's end on a
/// pass and against the first sample past the limit in Prometheus's data on a fail. (2) Error rates of the example's
/// two checks on generated windows: the absolute limit that <c>gate analyze</c> suggests from 90 days of a noisy
/// history, and the relative check, on clean windows (false alarms) and on windows with a 5× error spike (caught).
/// </summary>
internal static class GateBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var example = BenchTools.Option(args, "--repo") ?? "examples/wikifarm";
        var soak = TimeSpan.FromSeconds(int.Parse(BenchTools.Option(args, "--soak") ?? "30", CultureInfo.InvariantCulture));
        var scrape = TimeSpan.FromSeconds(int.Parse(BenchTools.Option(args, "--scrape") ?? "5", CultureInfo.InvariantCulture));
        var windows = int.Parse(BenchTools.Option(args, "--windows") ?? "200", CultureInfo.InvariantCulture);
        ErrorRates(windows, soak);
        if (!args.Contains("--rates-only"))
        {
            await LatencyAsync(example, soak, scrape);
        }

        return 0;
    }

    private static async Task LatencyAsync(string example, TimeSpan soak, TimeSpan scrape)
    {
        var root = Path.Combine(Path.GetTempPath(), "capstan-bench-gates-" + Guid.NewGuid().ToString("N"));
        try
        {
            DeployBenchmark.CopyFarm(example, root);
            var files = new DirectoryRepoFiles(root);
            var model = RepoLoader.Load(files).Model;
            var timing = SimulationTiming.Realistic with { Tick = TimeSpan.FromMilliseconds(50) };
            await using var clusters = await ClusterSet.ConnectAsync(model, ["eqiad"], _ => null, new LocalClusterOptions { Timing = timing }, default);
            await using var store = new FileStateStore(Path.Combine(root, ".capstan", "state"));
            await using var prometheus = await PrometheusServer.StartAsync([new ScrapeTarget("eqiad", clusters.LocalServer("eqiad")!)], scrape);
            var config = File.ReadAllText(Path.Combine(root, "capstan.yaml"))
                .Replace("url: http://127.0.0.1:9090", $"url: {prometheus.Url}", StringComparison.Ordinal)
                .Replace("    soak: 2m", $"    soak: {(int)soak.TotalSeconds}s", StringComparison.Ordinal)
                .Replace("    interval: 10s", $"    interval: {(int)scrape.TotalSeconds}s", StringComparison.Ordinal);
            File.WriteAllText(Path.Combine(root, "capstan.yaml"), config);
            model = RepoLoader.Load(files).Model;

            // The latency of the example's absolute check (the relative one, judged on the same scrapes, fails as soon).
            var gate = model.Gates.After(Stage.Canaries)! is var g ? g with { Checks = [.. g.Checks.OfType<PromQueryCheck>()] } : null!;
            var gates = model.Gates with { Gates = [gate] };
            var state = StateRules.Fresh("eqiad", ["eqiad", "codfw"]);
            using var http = new HttpClient();

            async Task<(DeployResult Result, List<DeployEvent> Events)> DeployAsync(int day)
            {
                var image = $"images:\n  mediawiki: docker-registry.wikifarm.example/restricted/mediawiki-multiversion:2026-12-0{day}-090000-publish\n";
                if (day > 0)
                {
                    File.WriteAllText(Path.Combine(root, "deploy/images/default.yaml"), image);
                    File.WriteAllText(Path.Combine(root, "deploy/images/mw-web/canary.yaml"), image);
                }

                model = RepoLoader.Load(files).Model with { Gates = gates };
                var service = new DeployService(model, new FarmRenderer(model, files), clusters, store, TimeProvider.System);
                var options = new ExecutorOptions
                {
                    Actor = "bench",
                    Reason = "bench",
                    Gates = new StageGates(model, new GateRunner(new PrometheusClient(http, prometheus.Url), http, TimeProvider.System)),
                };
                var request = new DeployRequest(new RenderSelection("eqiad", "mw-web"), true, false, Planner.DefaultConcurrency, options);
                var prepared = await service.PrepareAsync(request, state, default);
                var events = new Recorder();
                var result = await service.RunAsync(prepared.Plan, options, events, default);
                return (result, events.Events);
            }

            var (install, _) = await DeployAsync(0);
            if (!install.Succeeded)
            {
                throw new InvalidOperationException("the install failed: " + install.Cause);
            }

            await prometheus.WaitForTargetsUpAsync(1);
            var canary = new ReleaseId("eqiad", "mw-web", "canary");

            var (pass, passEvents) = await DeployAsync(1);
            var passReady = ReadyAt(passEvents, canary);
            var passVerdict = VerdictAt(passEvents);
            Console.WriteLine($"gates: pass: {(pass.Succeeded ? "passed" : "FAILED: " + pass.Cause)}; canaries ready → verdict {(passVerdict - passReady).TotalSeconds:0.0} s for a {soak.TotalSeconds:0} s soak: " +
                $"verdict {(passVerdict - passReady - soak).TotalSeconds:0.00} s after the soak's end (aim: within one scrape interval, {scrape.TotalSeconds:0} s)");

            clusters.LocalServer("eqiad")!.Faults.Add(new JsonObject { ["type"] = "errors", ["image"] = "2026-12-02-", ["ratio"] = 0.05 });
            var (fail, failEvents) = await DeployAsync(2);
            var failReady = ReadyAt(failEvents, canary);
            var failVerdict = VerdictAt(failEvents);
            var soakStart = failEvents.First(e => e.Message.StartsWith("gate after canaries: soaking", StringComparison.Ordinal)).At;

            // The first moment Prometheus's data put the failing check past its limit: the check asked again, second by
            // second over the soak, after the fact.
            var failed = fail.GateFailure?.Failure;
            var check = gate.Checks.OfType<PromQueryCheck>().Single(c => c.Name == failed?.Check);
            var client = new PrometheusClient(http, prometheus.Url);
            DateTimeOffset? firstBad = null;
            for (var t = soakStart + TimeSpan.FromSeconds(1); t <= failVerdict && firstBad is null; t += TimeSpan.FromSeconds(1))
            {
                var series = await client.QueryAsync(GateRunner.Fill(check.Query, canary, t - soakStart), t, default);
                if (series.Any(s => s.Value > check.Max))
                {
                    firstBad = t;
                }
            }

            Console.WriteLine($"gates: fail: {(fail.GateFailure is not null ? "failed" : "NOT FAILED")} by '{failed?.Check}' at {failed?.Value:0.#} (max {check.Max}); canaries ready → verdict {(failVerdict - failReady).TotalSeconds:0.0} s; " +
                (firstBad is { } bad
                    ? $"first sample past the limit in Prometheus {(bad - soakStart).TotalSeconds:0} s into the soak, verdict {(failVerdict - bad).TotalSeconds:0.00} s after it (aim: within one scrape interval, {scrape.TotalSeconds:0} s)"
                    : "no sample past the limit found in Prometheus's data"));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static DateTimeOffset ReadyAt(List<DeployEvent> events, ReleaseId release) =>
        events.Last(e => e.Release == release && e.State == ReleaseState.Done).At;

    private static DateTimeOffset VerdictAt(List<DeployEvent> events) =>
        events.First(e => e.Message.StartsWith("gate after canaries passed", StringComparison.Ordinal) || e.Message.StartsWith("gate after canaries failed", StringComparison.Ordinal)
            || e.Message.StartsWith("gate after canaries was inconclusive", StringComparison.Ordinal)).At;

    /// <summary>
    /// The example's checks on generated soak windows of the example's mw-web canary (11 pods at 20 requests a second)
    /// and main release (100 pods). The error ratio drifts (a log-normal random walk around 0.2% that reverts to it)
    /// and has incidents (one window in 500, ten times the ratio for a few windows): 90 days of it give the absolute
    /// limit, as <c>gate analyze</c> computes it; then fresh windows of the same process are judged.
    /// </summary>
    private static void ErrorRates(int count, TimeSpan soak)
    {
        var random = new Random(20261207);
        var (canaryRps, mainRps) = (11 * 20.0, 100 * 20.0);
        var drift = 0.0;
        var incident = 0;
        double NextRatio(bool incidents)
        {
            drift = (0.98 * drift) + (0.05 * Gaussian(random));
            if (incidents && incident == 0 && random.NextDouble() < 1.0 / 500)
            {
                incident = 1 + random.Next(4);
            }

            var ratio = 0.002 * Math.Exp(drift) * (incident > 0 ? 10 : 1);
            incident = Math.Max(0, incident - 1);
            return ratio;
        }

        var history = new List<double>();
        var windows = (int)(TimeSpan.FromDays(90) / soak);
        for (var i = 0; i < windows; i++)
        {
            var ratio = NextRatio(incidents: true);
            history.Add(Poisson(random, canaryRps * soak.TotalSeconds * ratio));
        }

        var absolute = new PromQueryCheck("canary errors", "generated", 100, null, null, new Core.Diagnostics.SourceLocation("bench", 1, 1));
        var analysis = GateAnalysis.Analyze(absolute, "generated", history, null);
        var relative = new RelativeCheck("errors against production", "generated", "generated", null, 2, 500, 0.001, absolute.Location);

        (int Absolute, int Relative) Judge(double spike)
        {
            var (abs, rel) = (0, 0);
            for (var i = 0; i < count; i++)
            {
                var ratio = NextRatio(incidents: false);
                var requests = Poisson(random, canaryRps * soak.TotalSeconds);
                var errors = Poisson(random, requests * ratio * spike);
                var mainRequests = Poisson(random, mainRps * soak.TotalSeconds);
                var mainErrors = Poisson(random, mainRequests * ratio);
                abs += errors > analysis.Suggested ? 1 : 0;
                var expected = requests * PoissonTest.BaselineRatio(mainErrors, mainRequests) * relative.MaxRatio;
                rel += requests >= relative.MinRequests && PoissonTest.UpperTail(errors, expected) < relative.Alpha ? 1 : 0;
            }

            return (abs, rel);
        }

        var clean = Judge(1);
        var spiked = Judge(5);
        Console.WriteLine($"gates: history: {windows} windows of {soak.TotalSeconds:0} s (90 days), {analysis.Outliers} outliers dropped, mean {analysis.Mean:0.0} errors, σ {analysis.StdDev:0.0}: suggested max {analysis.Suggested:0.0}");
        Console.WriteLine($"gates: {count} clean windows: false alarms: absolute {clean.Absolute} ({100.0 * clean.Absolute / count:0.0}%), relative {clean.Relative} ({100.0 * clean.Relative / count:0.0}%) (aim: at most 1%)");
        Console.WriteLine($"gates: {count} windows with a 5× error spike: caught: absolute {spiked.Absolute} ({100.0 * spiked.Absolute / count:0.0}%), relative {spiked.Relative} ({100.0 * spiked.Relative / count:0.0}%) (aim: all)");
    }

    private static double Gaussian(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

    private static double Poisson(Random random, double mean)
    {
        if (mean > 30)
        {
            return Math.Max(0, Math.Round(mean + (Math.Sqrt(mean) * Gaussian(random))));
        }

        var (limit, product, k) = (Math.Exp(-mean), random.NextDouble(), 0);
        while (product > limit)
        {
            k++;
            product *= random.NextDouble();
        }

        return k;
    }

    private sealed class Recorder : IDeployObserver
    {
        private readonly Lock _lock = new();

        public List<DeployEvent> Events { get; } = [];

        public void OnEvent(DeployEvent e)
        {
            lock (_lock)
            {
                Events.Add(e);
            }
        }
    }
}
