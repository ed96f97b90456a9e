using Capstan.Core.Config;
using Capstan.Core.Planning;

namespace Capstan.Deploy.Gates;

/// <summary>What the history of one check says about its limit.</summary>
public sealed record CheckAnalysis(
    string Check,
    string Expression,
    int Windows,
    int Outliers,
    double Mean,
    double StdDev,
    double Suggested,
    int FailingAtSuggested,
    double? Current,
    int? FailingAtCurrent,
    double? Tried,
    int? FailingAtTried);

/// <summary>
/// Suggests the limit of a gate's absolute checks from their history in Prometheus, as scap's
/// <c>analyze-logstash</c> does: the check's value in every past soak-long window, outliers dropped (above Tukey's far
/// fence, Q3 + 3 × IQR: past incidents, not noise), then mean + 3σ of the rest; and how many past windows each limit
/// would have failed.
/// </summary>
public sealed class GateAnalysis(PrometheusClient prometheus)
{
    /// <summary>Analyses every absolute check of a gate over the releases of its stage.</summary>
    public async Task<IReadOnlyList<CheckAnalysis>> AnalyzeAsync(GateSpec gate, IReadOnlyList<ReleaseId> releases, DateTimeOffset end, TimeSpan history, double? tryLimit, CancellationToken cancellationToken)
    {
        var results = new List<CheckAnalysis>();
        foreach (var check in gate.Checks.OfType<PromQueryCheck>())
        {
            var values = new List<double>();
            foreach (var release in releases)
            {
                var expression = GateRunner.Fill(check.Query, release, gate.Soak);
                var series = await prometheus.QueryRangeAsync(expression, end - history, end, gate.Soak, cancellationToken);

                // A window's value is its worst series (the limit applies to each).
                values.AddRange(series.SelectMany(s => s.Points)
                    .Where(p => double.IsFinite(p.Value))
                    .GroupBy(p => p.At)
                    .Select(g => check.Max is not null || check.Min is null ? g.Max(p => p.Value) : g.Min(p => p.Value)));
            }

            // The expression as written, its window filled: it was asked once per release.
            results.Add(Analyze(check, check.Query.Replace("{window}", $"{(long)gate.Soak.TotalSeconds}s", StringComparison.Ordinal), values, tryLimit));
        }

        return results;
    }

    /// <summary>The statistics of a check's past window values.</summary>
    public static CheckAnalysis Analyze(PromQueryCheck check, string expression, IReadOnlyList<double> values, double? tryLimit)
    {
        if (values.Count == 0)
        {
            return new CheckAnalysis(check.Name, expression, 0, 0, double.NaN, double.NaN, double.NaN, 0, check.Max, null, tryLimit, null);
        }

        var sorted = values.Order().ToList();
        var (q1, q3) = (Quantile(sorted, 0.25), Quantile(sorted, 0.75));
        var fence = q3 + (3 * (q3 - q1));
        var kept = sorted.Where(v => v <= fence).ToList();
        var mean = kept.Average();
        var sd = kept.Count > 1 ? Math.Sqrt(kept.Sum(v => (v - mean) * (v - mean)) / (kept.Count - 1)) : 0;
        var suggested = mean + (3 * sd);
        int Over(double limit) => values.Count(v => v > limit);
        return new CheckAnalysis(
            check.Name,
            expression,
            values.Count,
            sorted.Count - kept.Count,
            mean,
            sd,
            suggested,
            Over(suggested),
            check.Max,
            check.Max is { } max ? Over(max) : null,
            tryLimit,
            tryLimit is { } t ? Over(t) : null);
    }

    /// <summary>A quantile of sorted values, interpolated between neighbours.</summary>
    private static double Quantile(List<double> sorted, double q)
    {
        var position = (sorted.Count - 1) * q;
        var low = (int)Math.Floor(position);
        var high = Math.Min(low + 1, sorted.Count - 1);
        return sorted[low] + ((sorted[high] - sorted[low]) * (position - low));
    }
}
