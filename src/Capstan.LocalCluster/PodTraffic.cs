using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Capstan.LocalCluster.Controllers;
using Capstan.LocalCluster.Store;

namespace Capstan.LocalCluster;

/// <summary>
/// The simulated HTTP traffic of the cluster's MediaWiki pods, as counters a real Prometheus scrapes from
/// <c>/capstan/pod-metrics</c>: <c>mediawiki_http_requests_total</c> per pod and status code, labelled with the pod's
/// namespace, name and its <c>app</c>, <c>release</c> and <c>deployment</c> labels.
/// </summary>
/// <remarks>
/// Every ready pod (label <c>app=mediawiki</c>) serves <see cref="DefaultRequestsPerSecond"/> requests a second, of which
/// <see cref="BaseErrorRatio"/> fail, both drawn at random (Poisson), so that a clean release is noisy as a real one
/// is. The counters advance when they are read, by the time passed since the last read on the cluster's clock. The
/// fault injector raises the error ratio of a release or an image (<c>errors</c>) or changes a pod's traffic
/// (<c>traffic</c>).
/// </remarks>
public sealed class PodTraffic(ObjectStore store, FaultInjector faults, TimeProvider time, int seed = 0)
{
    /// <summary>Requests a second that each ready pod serves without a traffic fault.</summary>
    public const double DefaultRequestsPerSecond = 20;

    /// <summary>The share of a clean pod's requests that fail.</summary>
    public const double BaseErrorRatio = 0.002;

    /// <summary>The metric's name.</summary>
    public const string MetricName = "mediawiki_http_requests_total";

    private static readonly string[] PodLabels = ["app", "release", "deployment"];
    private static readonly ResourceType Pods = ResourceTypes.ByKind("Pod")!;

    private readonly Lock _lock = new();
    private readonly Dictionary<string, Counters> _pods = new(StringComparer.Ordinal);
    private readonly Random _random = new(seed);

    /// <summary>The counters in the Prometheus text format, advanced to now.</summary>
    public string Text()
    {
        // The stored objects themselves (sorted by namespace and name), only read: copying 1,600 pods per scrape made it slow.
        var pods = store.ListShared(Pods, null, null, IsServing).Items;
        var now = time.GetUtcNow();
        var text = new StringBuilder($"# HELP {MetricName} HTTP requests answered by the simulated MediaWiki pods, by status code.\n# TYPE {MetricName} counter\n");
        lock (_lock)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var pod in pods)
            {
                var uid = Json.Str(pod["metadata"]?["uid"]) ?? string.Empty;
                seen.Add(uid);
                if (!_pods.TryGetValue(uid, out var counters))
                {
                    _pods[uid] = counters = new Counters(now);
                }

                Advance(pod, counters, now);
                var labels = Labels(pod);
                foreach (var (code, count) in counters.ByCode)
                {
                    text.Append(CultureInfo.InvariantCulture, $"{MetricName}{{{labels},code=\"{code}\"}} {count}\n");
                }
            }

            foreach (var gone in _pods.Keys.Where(k => !seen.Contains(k)).ToList())
            {
                _pods.Remove(gone);
            }
        }

        return text.ToString();
    }

    private void Advance(JsonObject pod, Counters counters, DateTimeOffset now)
    {
        var seconds = Math.Max(0, (now - counters.Last).TotalSeconds);
        counters.Last = now;
        var rate = faults.ForPod(FaultInjector.PodFaultKind.Traffic, pod)?.Ratio ?? DefaultRequestsPerSecond;
        var ratio = faults.ForPod(FaultInjector.PodFaultKind.Errors, pod)?.Ratio ?? BaseErrorRatio;
        var requests = Poisson(rate * seconds);
        var errors = Math.Min(requests, Poisson(requests * ratio));

        // Most failures are the application's own (500); a fifth are the proxy's timeouts (503).
        var unavailable = errors == 0 ? 0 : (long)Math.Round(errors * 0.2 * (0.5 + _random.NextDouble()));
        unavailable = Math.Min(unavailable, errors);
        counters.ByCode["200"] += requests - errors;
        counters.ByCode["500"] += errors - unavailable;
        counters.ByCode["503"] += unavailable;
    }

    /// <summary>A Poisson draw: Knuth's method for small means, the normal approximation for large ones.</summary>
    private long Poisson(double mean)
    {
        if (mean <= 0)
        {
            return 0;
        }

        if (mean > 30)
        {
            // Box-Muller.
            var z = Math.Sqrt(-2 * Math.Log(1 - _random.NextDouble())) * Math.Cos(2 * Math.PI * _random.NextDouble());
            return Math.Max(0, (long)Math.Round(mean + (Math.Sqrt(mean) * z)));
        }

        var limit = Math.Exp(-mean);
        var product = _random.NextDouble();
        long k = 0;
        while (product > limit)
        {
            k++;
            product *= _random.NextDouble();
        }

        return k;
    }

    private static bool IsServing(JsonObject pod) =>
        Json.Str(pod["metadata"]?["labels"]?["app"]) == "mediawiki"
        && Json.Str(pod["status"]?["phase"]) == "Running"
        && Json.Str(Json.Condition(pod["status"] as JsonObject, "Ready")?["status"]) == "True"
        && pod["metadata"]?["deletionTimestamp"] is null;

    private static string Labels(JsonObject pod)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"namespace=\"{Escape(Json.Str(pod["metadata"]?["namespace"]))}\",pod=\"{Escape(Json.Str(pod["metadata"]?["name"]))}\"");
        foreach (var label in PodLabels)
        {
            if (Json.Str(pod["metadata"]?["labels"]?[label]) is { } value)
            {
                text.Append(CultureInfo.InvariantCulture, $",{label}=\"{Escape(value)}\"");
            }
        }

        return text.ToString();
    }

    private static string Escape(string? value) =>
        (value ?? string.Empty).Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    private sealed class Counters(DateTimeOffset first)
    {
        public DateTimeOffset Last { get; set; } = first;

        public Dictionary<string, long> ByCode { get; } = new(StringComparer.Ordinal) { ["200"] = 0, ["500"] = 0, ["503"] = 0 };
    }
}
