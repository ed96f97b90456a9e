using System.Globalization;
using System.Text;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Planning;
using Capstan.Deploy.Gates;

namespace Capstan.Deploy.Tests;

/// <summary>
/// Gates judged by a real Prometheus, on a recorded history of the pods' request counters: the gate samples on a
/// virtual clock that jumps to each sample, so a five-minute soak runs in no real time, and every query asks
/// Prometheus about the virtual moment.
/// </summary>
public sealed class GateTests
{
    private const string Errors = """mediawiki_http_requests_total{namespace="{namespace}",release="{release}",datacenter="{datacenter}",code=~"5.."}""";
    private const string All = """mediawiki_http_requests_total{namespace="{namespace}",release="{release}",datacenter="{datacenter}"}""";

    private static readonly SourceLocation Here = new("capstan.yaml", 1, 1);
    private static readonly ReleaseId Canary = new("eqiad", "mw-web", "canary");
    private static readonly GateTarget CanaryTarget = new(Canary, "main");

    /// <summary>The start of the recorded history: two hours ago, whole seconds.</summary>
    private static readonly DateTimeOffset Start = DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 7200);

    /// <summary>The soak starts two minutes into the history.</summary>
    private static readonly DateTimeOffset SoakStart = Start.AddMinutes(2);

    private static PromQueryCheck ErrorCount(double max) =>
        new("canary errors", $"sum(increase({Errors}[{{window}}]))", max, null, $"topk(5, sum by (release, pod, code) (increase({Errors}[{{window}}])))", Here);

    private static GateSpec Gate(TimeSpan soak, TimeSpan interval, params GateCheck[] checks) =>
        new(Stage.Canaries, soak, interval, 3, true, checks, Here);

    [Fact]
    public async Task A_clean_canary_passes_a_five_minute_soak_sampled_every_thirty_seconds()
    {
        var history = new History();
        history.Pods("canary", 2, rps: 20, errorRatio: 0.002, badFrom: null);
        history.Pods("main", 20, rps: 20, errorRatio: 0.002, badFrom: null);
        await using var prometheus = await PrometheusServer.StartAsync([], TimeSpan.FromSeconds(5), history.OpenMetrics());
        var clock = new VirtualClock(SoakStart);
        var runner = new GateRunner(new PrometheusClient(new HttpClient(), prometheus.Url), new HttpClient(), clock);
        var progress = new List<GateProgress>();

        var verdict = await runner.RunAsync(Gate(TimeSpan.FromMinutes(5), TimeSpan.FromSeconds(30), ErrorCount(60)), [CanaryTarget], progress.Add, default);

        Assert.True(verdict.Passed, string.Join("\n", verdict.Explain()));
        Assert.False(verdict.Inconclusive);
        Assert.Equal(TimeSpan.FromMinutes(5), clock.Elapsed);
        Assert.Equal(10, progress.Count(p => p.Sampled));
        Assert.Equal(TimeSpan.FromMinutes(5) - TimeSpan.FromSeconds(1), progress[0].Left);
        Assert.Equal(TimeSpan.Zero, progress[^1].Left);

        // The canary's 2 pods err about 0.08 times a second: some errors, far under the limit.
        var last = progress[^1].Latest.Single();
        Assert.Equal(SampleResult.Pass, last.Result);
        Assert.InRange(last.Value!.Value, 1, 30);
    }

    [Fact]
    public async Task Errors_from_a_bad_image_fail_the_gate_at_the_first_sample_past_the_limit_naming_the_expression_value_and_top_series()
    {
        var history = new History();
        history.Pods("canary", 2, rps: 20, errorRatio: 0.002, badFrom: SoakStart.AddMinutes(2));
        history.Pods("main", 20, rps: 20, errorRatio: 0.002, badFrom: null);
        await using var prometheus = await PrometheusServer.StartAsync([], TimeSpan.FromSeconds(5), history.OpenMetrics());
        var clock = new VirtualClock(SoakStart);
        var runner = new GateRunner(new PrometheusClient(new HttpClient(), prometheus.Url), new HttpClient(), clock);

        var verdict = await runner.RunAsync(Gate(TimeSpan.FromMinutes(5), TimeSpan.FromSeconds(30), ErrorCount(60)), [CanaryTarget], _ => { }, default);

        Assert.False(verdict.Passed);
        Assert.False(verdict.Inconclusive);

        // From minute 2 the canary's pods answer 10% errors (4 a second together): the sample at 2m30s is the first
        // past 60, and the gate stops there instead of soaking on.
        Assert.Equal(TimeSpan.FromSeconds(150), clock.Elapsed);
        var failure = verdict.Failure!;
        Assert.Equal("canary errors", failure.Check);
        Assert.Equal(Canary, failure.Release);
        Assert.Contains("""namespace="mw-web",release="canary",datacenter="eqiad",code=~"5.."}[150s]""", failure.Expression, StringComparison.Ordinal);
        Assert.True(failure.Value > 60, $"value {failure.Value}");
        Assert.Equal("max 60", failure.Limit);
        Assert.Equal(4, failure.Top.Count);
        Assert.All(failure.Top, t => Assert.Equal("canary", t.Labels["release"]));
        Assert.Equal(["500", "503"], failure.Top.Select(t => t.Labels["code"]).Distinct().Order());
        var text = string.Join("\n", verdict.Explain());
        Assert.Contains("gate after canaries failed after 2m30s of its 5m soak", text, StringComparison.Ordinal);
        Assert.Contains("expression: sum(increase(mediawiki_http_requests_total{", text, StringComparison.Ordinal);
        Assert.Contains("""{code="500", pod="canary-0", release="canary"}""", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_relative_check_fails_a_canary_that_errs_more_than_production_and_passes_one_that_errs_alike()
    {
        var history = new History();
        history.Pods("canary", 2, rps: 20, errorRatio: 0.03, badFrom: null);
        history.Pods("main", 20, rps: 20, errorRatio: 0.002, badFrom: null);
        history.Pods("canary", 2, rps: 20, errorRatio: 0.002, badFrom: null, ns: "mw-api-ext");
        history.Pods("main", 20, rps: 20, errorRatio: 0.002, badFrom: null, ns: "mw-api-ext");
        await using var prometheus = await PrometheusServer.StartAsync([], TimeSpan.FromSeconds(5), history.OpenMetrics());
        var check = new RelativeCheck("against production", $"sum(increase({Errors}[{{window}}]))", $"sum(increase({All}[{{window}}]))", null, 2, 500, 0.001, Here);
        var gate = Gate(TimeSpan.FromMinutes(5), TimeSpan.FromSeconds(30), check);

        var bad = await new GateRunner(new PrometheusClient(new HttpClient(), prometheus.Url), new HttpClient(), new VirtualClock(SoakStart))
            .RunAsync(gate, [CanaryTarget], _ => { }, default);
        var alike = await new GateRunner(new PrometheusClient(new HttpClient(), prometheus.Url), new HttpClient(), new VirtualClock(SoakStart))
            .RunAsync(gate, [new GateTarget(new ReleaseId("eqiad", "mw-api-ext", "canary"), "main")], _ => { }, default);

        // 3% against 0.2%: fifteen times production's ratio, far past twice it.
        Assert.False(bad.Passed);
        Assert.True(bad.Failure!.Value is > 8 and < 25, bad.Failure.ToString());
        Assert.Contains("canary", bad.Failure.Detail, StringComparison.Ordinal);
        Assert.True(alike.Passed, string.Join("\n", alike.Explain()));
        Assert.All(alike.Latest, s => Assert.True(s.Value is > 0.5 and < 2, s.ToString()));
    }

    [Fact]
    public async Task A_relative_check_does_not_fail_a_quiet_canary_with_a_few_errors_among_few_requests()
    {
        // One request every four seconds per pod, and three errors in the soak: 3 of about 150 requests, ten times
        // production's ratio, and still nothing to judge on.
        var history = new History();
        history.Pods("canary", 2, rps: 0.25, errorRatio: 0, badFrom: null);
        history.Errors("canary", "canary-2", [SoakStart.AddSeconds(40), SoakStart.AddSeconds(100), SoakStart.AddSeconds(200)]);
        history.Pods("main", 20, rps: 20, errorRatio: 0.002, badFrom: null);
        await using var prometheus = await PrometheusServer.StartAsync([], TimeSpan.FromSeconds(5), history.OpenMetrics());
        var client = new PrometheusClient(new HttpClient(), prometheus.Url);
        RelativeCheck Check(long minRequests) => new("against production", $"sum(increase({Errors}[{{window}}]))", $"sum(increase({All}[{{window}}]))", null, 2, minRequests, 0.001, Here);

        // With a minimum of 500 requests, every sample is unusable: the gate is inconclusive, which fails unless told.
        var strict = await new GateRunner(client, new HttpClient(), new VirtualClock(SoakStart)).RunAsync(Gate(TimeSpan.FromMinutes(5), TimeSpan.FromSeconds(30), Check(500)), [CanaryTarget], _ => { }, default);
        var lenient = await new GateRunner(client, new HttpClient(), new VirtualClock(SoakStart))
            .RunAsync(Gate(TimeSpan.FromMinutes(5), TimeSpan.FromSeconds(30), Check(500)) with { InconclusiveFails = false }, [CanaryTarget], _ => { }, default);

        // Without the minimum, the Poisson test itself does not call three errors in 150 requests significant.
        var unguarded = await new GateRunner(client, new HttpClient(), new VirtualClock(SoakStart)).RunAsync(Gate(TimeSpan.FromMinutes(5), TimeSpan.FromSeconds(30), Check(1)), [CanaryTarget], _ => { }, default);

        Assert.False(strict.Passed);
        Assert.True(strict.Inconclusive);
        Assert.Contains("too few requests to judge", strict.Summary, StringComparison.Ordinal);
        Assert.True(lenient.Passed);
        Assert.True(lenient.Inconclusive);
        Assert.True(unguarded.Passed, string.Join("\n", unguarded.Explain()));
        Assert.False(unguarded.Inconclusive);
        Assert.Contains(unguarded.Latest, s => s.Value > 2);
    }

    [Fact]
    public async Task A_wrong_expression_or_an_absent_prometheus_stops_the_deploy_before_it_starts()
    {
        await using var prometheus = await PrometheusServer.StartAsync([], TimeSpan.FromSeconds(5));
        var runner = new GateRunner(new PrometheusClient(new HttpClient(), prometheus.Url), new HttpClient(), TimeProvider.System);
        var wrong = new PromQueryCheck("typo", "sum(rate(mediawiki_http_requests_total{release=\"{release}\"}[1m]", 1, null, null, new SourceLocation("capstan.yaml", 42, 7));

        var refused = await Assert.ThrowsAsync<GatePreflightException>(() => runner.PreflightAsync(Gate(TimeSpan.FromMinutes(1), TimeSpan.FromSeconds(10), wrong), [CanaryTarget], default));
        var away = new GateRunner(new PrometheusClient(new HttpClient(), new Uri($"http://127.0.0.1:{EtcdServer.FreePort()}/")), new HttpClient(), TimeProvider.System);
        var absent = await Assert.ThrowsAsync<GatePreflightException>(() => away.PreflightAsync(Gate(TimeSpan.FromMinutes(1), TimeSpan.FromSeconds(10), ErrorCount(1)), [CanaryTarget], default));

        Assert.Contains("check 'typo' (capstan.yaml:42:7): Prometheus refused the query", refused.Message, StringComparison.Ordinal);
        Assert.Contains("does not answer", absent.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Gate_analyze_suggests_mean_plus_three_sigma_of_past_windows_without_the_outliers()
    {
        // Sixty past five-minute windows of the canary's error count: 9 and 11 in turn (mean 10, σ 1), and two
        // incidents of 100 that the analysis drops as outliers.
        var end = DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds() / 300 * 300) - TimeSpan.FromHours(1);
        var windows = Enumerable.Range(0, 60).Select(i => i is 17 or 42 ? 100.0 : i % 2 == 0 ? 9.0 : 11.0).ToList();
        var text = new StringBuilder("# TYPE canary_window_errors gauge\n");
        for (var i = 0; i < windows.Count; i++)
        {
            var at = end - TimeSpan.FromMinutes(5 * (windows.Count - i));
            for (var s = 0; s < 300; s += 60)
            {
                text.Append(CultureInfo.InvariantCulture, $"canary_window_errors{{namespace=\"mw-web\",release=\"canary\",datacenter=\"eqiad\"}} {windows[i]} {at.ToUnixTimeSeconds() + s + 1}\n");
            }
        }

        text.Append("# EOF\n");
        await using var prometheus = await PrometheusServer.StartAsync([], TimeSpan.FromSeconds(5), text.ToString());
        var check = new PromQueryCheck("canary errors", """max_over_time(canary_window_errors{namespace="{namespace}",release="{release}",datacenter="{datacenter}"}[{window}])""", 50, null, null, Here);
        var gate = Gate(TimeSpan.FromMinutes(5), TimeSpan.FromSeconds(30), check);

        var analysis = (await new GateAnalysis(new PrometheusClient(new HttpClient(), prometheus.Url)).AnalyzeAsync(gate, [Canary], end, TimeSpan.FromMinutes(295), 12, default)).Single();

        Assert.Equal(60, analysis.Windows);
        Assert.Equal(2, analysis.Outliers);
        Assert.Equal(10, analysis.Mean, 0.05);
        Assert.Equal(1, analysis.StdDev, 0.05);
        Assert.Equal(13, analysis.Suggested, 0.2);
        Assert.Equal(2, analysis.FailingAtSuggested);
        Assert.Equal(2, analysis.FailingAtCurrent);
        Assert.Equal(12, analysis.Tried);
        Assert.Equal(2, analysis.FailingAtTried);
        Assert.Equal("""max_over_time(canary_window_errors{namespace="{namespace}",release="{release}",datacenter="{datacenter}"}[300s])""", analysis.Expression);
    }

    [Fact]
    public void The_poisson_tail_matches_its_closed_forms()
    {
        Assert.Equal(1, PoissonTest.UpperTail(0, 3));
        Assert.Equal(1 - Math.Exp(-0.2), PoissonTest.UpperTail(1, 0.2), 1e-12);
        Assert.Equal(1 - (Math.Exp(-0.2) * 1.2), PoissonTest.UpperTail(2, 0.2), 1e-12);
        Assert.Equal(1 - (Math.Exp(-40) * Enumerable.Range(0, 40).Sum(i => Math.Pow(40, i) / Factorial(i))), PoissonTest.UpperTail(40, 40), 1e-9);

        // Far in the tail: 100 errors where 10 are expected is essentially impossible by chance.
        Assert.InRange(PoissonTest.UpperTail(100, 10), 0, 1e-40);
        Assert.Equal(PoissonTest.LogFactorial(29) + Math.Log(30), PoissonTest.LogFactorial(30), 1e-6);
        static double Factorial(int n) => n <= 1 ? 1 : n * Factorial(n - 1);
    }

    /// <summary>A recorded history of the pods' request counters, every five seconds, as OpenMetrics text.</summary>
    private sealed class History
    {
        private readonly StringBuilder _text = new("# HELP mediawiki_http_requests HTTP requests answered.\n# TYPE mediawiki_http_requests counter\n");

        /// <summary>
        /// Pods of a release over ten minutes from <see cref="Start"/>: each serves <paramref name="rps"/> requests a
        /// second, <paramref name="errorRatio"/> of them errors (a fifth 503, the rest 500), 10% from <paramref name="badFrom"/>.
        /// </summary>
        public void Pods(string release, int pods, double rps, double errorRatio, DateTimeOffset? badFrom, string ns = "mw-web")
        {
            for (var pod = 0; pod < pods; pod++)
            {
                // Each pod's counters start at a different fraction, so the pods' whole errors fall at different moments.
                var phase = (double)pod / pods;
                var (ok, e500, e503) = (phase, phase, phase);
                var rows = new List<(string Code, double Value, long At)>();
                for (var t = 0; t <= 600; t += 5)
                {
                    var at = Start.AddSeconds(t);
                    var ratio = badFrom is { } bad && at > bad ? 0.1 : errorRatio;
                    var requests = rps * 5;
                    ok += requests * (1 - ratio);
                    e500 += requests * ratio * 0.8;
                    e503 += requests * ratio * 0.2;
                    rows.Add(("200", Math.Floor(ok), at.ToUnixTimeSeconds()));
                    rows.Add(("500", Math.Floor(e500), at.ToUnixTimeSeconds()));
                    rows.Add(("503", Math.Floor(e503), at.ToUnixTimeSeconds()));
                }

                foreach (var code in new[] { "200", "500", "503" })
                {
                    foreach (var row in rows.Where(r => r.Code == code))
                    {
                        Line(ns, release, $"{release}-{pod}", code, row.Value, row.At);
                    }
                }
            }
        }

        /// <summary>A pod's 500s: one at each given moment.</summary>
        public void Errors(string release, string pod, IReadOnlyList<DateTimeOffset> at)
        {
            for (var t = 0; t <= 600; t += 5)
            {
                var now = Start.AddSeconds(t);
                Line("mw-web", release, pod, "500", at.Count(a => a <= now), now.ToUnixTimeSeconds());
            }
        }

        public string OpenMetrics() => _text + "# EOF\n";

        private void Line(string ns, string release, string pod, string code, double value, long at) =>
            _text.Append(CultureInfo.InvariantCulture, $"mediawiki_http_requests_total{{namespace=\"{ns}\",release=\"{release}\",datacenter=\"eqiad\",pod=\"{pod}\",code=\"{code}\"}} {value} {at}\n");
    }
}
