using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Planning;

namespace Capstan.Deploy.Gates;

/// <summary>A release a gate judges, and the release it is compared with by relative checks (a canary's main release).</summary>
public sealed record GateTarget(ReleaseId Release, string? Baseline);

/// <summary>What one sample of a check said.</summary>
public enum SampleResult
{
    /// <summary>Within its limit.</summary>
    Pass,

    /// <summary>Past its limit: the gate fails.</summary>
    Fail,

    /// <summary>No answer worth judging (no data yet, too few requests, Prometheus away).</summary>
    Unusable,
}

/// <summary>One sample of a check on a release: its value and limit, the expression, and the series that explain it.</summary>
public sealed record GateSample(string Check, ReleaseId Release, SampleResult Result, double? Value, string Limit, string Expression, string Detail, IReadOnlyList<PromSeries> Top)
{
    /// <summary>One line: check, release, value against limit.</summary>
    public override string ToString() =>
        $"{Check} on {Release}: {(Value is { } v ? Format(v) : "no value")} ({Limit}){(Detail.Length > 0 ? "; " + Detail : string.Empty)}";

    /// <summary>A number as a person reads it: at most four significant digits.</summary>
    public static string Format(double value) =>
        double.IsNaN(value) ? "NaN" : Math.Abs(value) >= 1000 ? value.ToString("0", CultureInfo.InvariantCulture) : value.ToString("0.####", CultureInfo.InvariantCulture);
}

/// <summary>Where a soak stands: how long is left and each check's latest sample.</summary>
public sealed record GateProgress(GateSpec Gate, TimeSpan Left, IReadOnlyList<GateSample> Latest)
{
    /// <summary>True on the progress right after a round of samples (false on the countdown's ticks between them).</summary>
    public bool Sampled { get; init; }
}

/// <summary>A gate's verdict.</summary>
public sealed record GateVerdict(GateSpec Gate, bool Passed, bool Inconclusive, string Summary, GateSample? Failure, IReadOnlyList<GateSample> Latest, TimeSpan Elapsed)
{
    /// <summary>The verdict as the plan record and <c>deploy -o json</c> carry it: the failing check, its value, limit and top series.</summary>
    public JsonObject ToJson() => new()
    {
        ["after"] = Gate.StageWord,
        ["passed"] = Passed,
        ["inconclusive"] = Inconclusive,
        ["summary"] = Summary,
        ["seconds"] = Math.Round(Elapsed.TotalSeconds, 1),
        ["check"] = Failure?.Check,
        ["expression"] = Failure?.Expression,
        ["value"] = Failure?.Value is { } v && double.IsFinite(v) ? v : null,
        ["limit"] = Failure?.Limit,
        ["top"] = new JsonArray([.. (Failure?.Top ?? []).Select(t => (JsonNode)new JsonObject
        {
            ["series"] = t.LabelText,
            ["value"] = double.IsFinite(t.Value) ? t.Value : null,
        })]),
    };

    /// <summary>Why the gate failed, as lines: the check, the expression, the value, the limit, and the top series.</summary>
    public IReadOnlyList<string> Explain()
    {
        var lines = new List<string> { Summary };
        if (Failure is { } f)
        {
            lines.Add($"  check:      {f.Check} ({f.Release})");
            lines.Add($"  expression: {f.Expression}");
            lines.Add($"  value:      {(f.Value is { } v ? GateSample.Format(v) : "none")}");
            lines.Add($"  limit:      {f.Limit}");
            if (f.Detail.Length > 0)
            {
                lines.Add($"  detail:     {f.Detail}");
            }

            if (f.Top.Count > 0)
            {
                lines.Add("  top series:");
                lines.AddRange(f.Top.Select(s => $"    {GateSample.Format(s.Value),10}  {s.LabelText}"));
            }
        }

        return lines;
    }
}

/// <summary>
/// Runs a gate: samples every check on every judged release each <see cref="GateSpec.Interval"/> through the soak, on
/// the given clock (so that tests run a five-minute soak in no time). It fails on the first sample past its limit; at
/// the end, a check with fewer usable samples than <see cref="GateSpec.MinSamples"/> on some release is inconclusive,
/// which fails the gate unless the gate says <c>inconclusive: pass</c>.
/// </summary>
public sealed class GateRunner(PrometheusClient? prometheus, HttpClient http, TimeProvider time)
{
    /// <summary>How many series explain a failure.</summary>
    public const int TopSeries = 5;

    private static readonly TimeSpan CountdownStep = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Asks every query of the gate once before anything is applied: a wrong expression or an unreachable Prometheus
    /// stops the deploy before it starts, not after the canaries are out.
    /// </summary>
    public async Task PreflightAsync(GateSpec gate, IReadOnlyList<GateTarget> targets, CancellationToken cancellationToken)
    {
        var target = targets.FirstOrDefault();
        if (target is null || prometheus is null)
        {
            return;
        }

        foreach (var check in gate.Checks)
        {
            var queries = check switch
            {
                PromQueryCheck q => new[] { q.Query, q.Top },
                RelativeCheck r => [r.Errors, r.Requests, r.Top],
                _ => [],
            };
            foreach (var query in queries.OfType<string>())
            {
                try
                {
                    await prometheus.QueryAsync(Fill(query, target.Release, gate.Interval), time.GetUtcNow(), cancellationToken);
                }
                catch (PrometheusException ex)
                {
                    throw new GatePreflightException($"gate after {gate.StageWord}, check '{check.Name}' ({check.Location}): {ex.Message}");
                }
            }
        }
    }

    /// <summary>Soaks and samples; returns the verdict.</summary>
    public async Task<GateVerdict> RunAsync(GateSpec gate, IReadOnlyList<GateTarget> targets, Action<GateProgress> progress, CancellationToken cancellationToken)
    {
        var start = time.GetUtcNow();
        var end = start + gate.Soak;
        var usable = new Dictionary<(string, ReleaseId), int>();
        var latest = new Dictionary<(string, ReleaseId), GateSample>();
        for (var n = 1; ; n++)
        {
            var due = start + (gate.Interval * n);
            if (due > end)
            {
                due = end;
            }

            // Wait for the sample in steps of at most a second, so that the countdown moves.
            for (var wait = due - time.GetUtcNow(); wait > TimeSpan.Zero; wait = due - time.GetUtcNow())
            {
                await Task.Delay(wait < CountdownStep ? wait : CountdownStep, time, cancellationToken);
                var left = end - time.GetUtcNow();
                progress(new GateProgress(gate, left < TimeSpan.Zero ? TimeSpan.Zero : left, [.. latest.Values]));
            }

            var now = time.GetUtcNow();
            var window = now - start < gate.Interval ? gate.Interval : now - start;
            foreach (var target in targets)
            {
                foreach (var check in gate.Checks)
                {
                    var sample = await SampleAsync(check, target, now, window, cancellationToken);
                    if (sample is null)
                    {
                        continue;
                    }

                    latest[(check.Name, target.Release)] = sample;
                    if (sample.Result == SampleResult.Fail)
                    {
                        var failed = now - start;
                        return new GateVerdict(gate, false, false, $"gate after {gate.StageWord} failed after {Durations.Human(failed)} of its {Durations.Human(gate.Soak)} soak: {sample}", sample, [.. latest.Values], failed);
                    }

                    if (sample.Result == SampleResult.Pass)
                    {
                        usable[(check.Name, target.Release)] = usable.GetValueOrDefault((check.Name, target.Release)) + 1;
                    }
                }
            }

            progress(new GateProgress(gate, end - now < TimeSpan.Zero ? TimeSpan.Zero : end - now, [.. latest.Values]) { Sampled = true });
            if (due >= end)
            {
                break;
            }
        }

        var elapsed = time.GetUtcNow() - start;
        var short_ = targets.SelectMany(t => gate.Checks.Where(c => Applies(c, t)).Select(c => (Check: c.Name, t.Release)))
            .Where(k => usable.GetValueOrDefault(k) < gate.MinSamples)
            .ToList();
        if (short_.Count == 0)
        {
            return new GateVerdict(gate, true, false, $"gate after {gate.StageWord} passed: {targets.Count} release(s), {gate.Checks.Count} check(s), {Durations.Human(gate.Soak)} soak", null, [.. latest.Values], elapsed);
        }

        var which = string.Join("; ", short_.Take(5).Select(k => $"{k.Check} on {k.Release}: {usable.GetValueOrDefault(k)} usable of {gate.MinSamples} needed" +
            (latest.GetValueOrDefault(k) is { Result: SampleResult.Unusable } last ? $" ({last.Detail})" : string.Empty)));
        var summary = $"gate after {gate.StageWord} was inconclusive: {which}";
        return gate.InconclusiveFails
            ? new GateVerdict(gate, false, true, summary + " (inconclusive: fail)", latest.GetValueOrDefault(short_[0]), [.. latest.Values], elapsed)
            : new GateVerdict(gate, true, true, summary + " (inconclusive: pass)", null, [.. latest.Values], elapsed);
    }

    /// <summary>A relative check judges only releases with a baseline; the others judge every release.</summary>
    private static bool Applies(GateCheck check, GateTarget target) =>
        check is not RelativeCheck relative || (BaselineOf(relative, target) is { } baseline && baseline != target.Release.Release);

    private static string? BaselineOf(RelativeCheck check, GateTarget target) => check.Baseline ?? target.Baseline;

    private async Task<GateSample?> SampleAsync(GateCheck check, GateTarget target, DateTimeOffset now, TimeSpan window, CancellationToken cancellationToken)
    {
        if (!Applies(check, target))
        {
            return null;
        }

        try
        {
            return check switch
            {
                PromQueryCheck q => await AbsoluteAsync(q, target, now, window, cancellationToken),
                RelativeCheck r => await RelativeAsync(r, target, now, window, cancellationToken),
                HttpCheck h => await HttpAsync(h, target, cancellationToken),
                _ => throw new InvalidOperationException($"unknown check {check.GetType().Name}"),
            };
        }
        catch (PrometheusException ex)
        {
            var expression = check is PromQueryCheck pq ? Fill(pq.Query, target.Release, window) : check is RelativeCheck rc ? Fill(rc.Errors, target.Release, window) : string.Empty;
            return new GateSample(check.Name, target.Release, SampleResult.Unusable, null, string.Empty, expression, ex.Message, []);
        }
    }

    private async Task<GateSample> AbsoluteAsync(PromQueryCheck check, GateTarget target, DateTimeOffset now, TimeSpan window, CancellationToken cancellationToken)
    {
        var expression = Fill(check.Query, target.Release, window);
        var limit = string.Join(", ", new[] { check.Max is { } max ? $"max {GateSample.Format(max)}" : null, check.Min is { } min ? $"min {GateSample.Format(min)}" : null }.OfType<string>());
        var series = (await prometheus!.QueryAsync(expression, now, cancellationToken)).Where(s => !double.IsNaN(s.Value)).ToList();
        if (series.Count == 0)
        {
            return new GateSample(check.Name, target.Release, SampleResult.Unusable, null, limit, expression, "no data", []);
        }

        var over = series.Where(s => s.Value > check.Max).OrderByDescending(s => s.Value).ToList();
        var under = series.Where(s => s.Value < check.Min).OrderBy(s => s.Value).ToList();
        var worst = over.FirstOrDefault() ?? under.FirstOrDefault() ?? (check.Max is not null ? series.MaxBy(s => s.Value)! : series.MinBy(s => s.Value)!);
        if (over.Count == 0 && under.Count == 0)
        {
            return new GateSample(check.Name, target.Release, SampleResult.Pass, worst.Value, limit, expression, string.Empty, []);
        }

        var top = check.Top is { } topQuery
            ? (await prometheus.QueryAsync(Fill(topQuery, target.Release, window), now, cancellationToken)).Where(s => !double.IsNaN(s.Value)).OrderByDescending(s => s.Value).Take(TopSeries).ToList()
            : [.. over.Concat(under).Take(TopSeries)];
        var detail = series.Count > 1 ? $"{over.Count + under.Count} of {series.Count} series past the limit" : string.Empty;
        return new GateSample(check.Name, target.Release, SampleResult.Fail, worst.Value, limit, expression, detail, top);
    }

    private async Task<GateSample> RelativeAsync(RelativeCheck check, GateTarget target, DateTimeOffset now, TimeSpan window, CancellationToken cancellationToken)
    {
        var baseline = target.Release with { Release = BaselineOf(check, target)! };
        var limit = $"at most {GateSample.Format(check.MaxRatio)}× {baseline.Release}'s error ratio, at {GateSample.Format((1 - check.Alpha) * 100)}% confidence, from {check.MinRequests} requests";
        var errorsExpr = Fill(check.Errors, target.Release, window);
        async Task<double> SumAsync(string template, ReleaseId release) =>
            (await prometheus!.QueryAsync(Fill(template, release, window), now, cancellationToken)).Where(s => !double.IsNaN(s.Value)).Sum(s => s.Value);
        var errors = await SumAsync(check.Errors, target.Release);
        var requests = await SumAsync(check.Requests, target.Release);
        var baseErrors = await SumAsync(check.Errors, baseline);
        var baseRequests = await SumAsync(check.Requests, baseline);
        var counts = $"{target.Release.Release} {GateSample.Format(errors)} errors in {GateSample.Format(requests)} requests, {baseline.Release} {GateSample.Format(baseErrors)} in {GateSample.Format(baseRequests)}";
        if (requests < check.MinRequests)
        {
            return new GateSample(check.Name, target.Release, SampleResult.Unusable, null, limit, errorsExpr, $"too few requests to judge: {counts}", []);
        }

        if (baseRequests <= 0)
        {
            return new GateSample(check.Name, target.Release, SampleResult.Unusable, null, limit, errorsExpr, $"{baseline.Release} served no requests to compare with", []);
        }

        var baseRatio = PoissonTest.BaselineRatio(baseErrors, baseRequests);
        var ratio = requests > 0 ? errors / requests / baseRatio : 0;
        var p = PoissonTest.UpperTail(errors, requests * baseRatio * check.MaxRatio);
        var detail = $"{counts}; p = {p.ToString("0.###e0", CultureInfo.InvariantCulture)}";
        if (p >= check.Alpha)
        {
            return new GateSample(check.Name, target.Release, SampleResult.Pass, ratio, limit, errorsExpr, detail, []);
        }

        var top = check.Top is { } topQuery
            ? (await prometheus!.QueryAsync(Fill(topQuery, target.Release, window), now, cancellationToken)).Where(s => !double.IsNaN(s.Value)).OrderByDescending(s => s.Value).Take(TopSeries).ToList()
            : [];
        return new GateSample(check.Name, target.Release, SampleResult.Fail, ratio, limit, errorsExpr, detail, top);
    }

    private async Task<GateSample> HttpAsync(HttpCheck check, GateTarget target, CancellationToken cancellationToken)
    {
        var url = Fill(check.Url, target.Release, TimeSpan.Zero);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            using var response = await http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            var code = (int)response.StatusCode;
            return new GateSample(check.Name, target.Release, code is >= 200 and < 300 ? SampleResult.Pass : SampleResult.Fail, code, "HTTP 2xx", "GET " + url, $"HTTP {code}", []);
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return new GateSample(check.Name, target.Release, SampleResult.Fail, null, "HTTP 2xx", "GET " + url, $"no answer: {ex.Message}", []);
        }
    }

    /// <summary>A check's text with the release's placeholders filled in, and the window as a PromQL duration.</summary>
    public static string Fill(string template, ReleaseId release, TimeSpan window) =>
        template.Replace("{release}", release.Release, StringComparison.Ordinal)
            .Replace("{namespace}", release.Namespace, StringComparison.Ordinal)
            .Replace("{datacenter}", release.Datacenter, StringComparison.Ordinal)
            .Replace("{window}", $"{Math.Max(1, (long)Math.Ceiling(window.TotalSeconds))}s", StringComparison.Ordinal);
}

/// <summary>A gate's query was refused, or Prometheus did not answer, before the deploy started; nothing was applied.</summary>
public sealed class GatePreflightException(string message) : CapstanException(RefusalKind.UserError, message)
{
    /// <inheritdoc/>
    public override string Display => Message + "; nothing was applied";
}
