using System.Globalization;
using Capstan.Core.Diagnostics;
using Capstan.Core.Yaml;

namespace Capstan.Core.Config;

/// <summary>
/// The gates between deployment stages (capstan.yaml's <c>gates:</c>, keyed by the stage they follow) and the
/// Prometheus server their checks query (<c>prometheus:</c>).
/// </summary>
public sealed record GateSettings(Uri? Prometheus, IReadOnlyList<GateSpec> Gates)
{
    /// <summary>No gates: stages follow each other once ready.</summary>
    public static GateSettings None { get; } = new(null, []);

    /// <summary>The placeholders a check's text may hold, filled per release from the plan.</summary>
    public static readonly IReadOnlyList<string> Placeholders = ["{release}", "{namespace}", "{datacenter}", "{window}"];

    /// <summary>The gate after a stage, or null.</summary>
    public GateSpec? After(Stage stage) => Gates.FirstOrDefault(g => g.After == stage);

    private static readonly (string Word, Stage Stage)[] StageWords = [("testservers", Stage.Testservers), ("canaries", Stage.Canaries)];

    /// <summary>Reads <c>prometheus:</c> and <c>gates:</c> (null nodes: none).</summary>
    public static GateSettings Read(NodeReader reader, ValueNode? prometheusNode, ValueNode? gatesNode)
    {
        Uri? prometheus = null;
        if (reader.Map(prometheusNode, "prometheus", ["url"]) is { } prom)
        {
            var text = reader.String(prom["url"], "prometheus.url");
            if (text is not null && (!Uri.TryCreate(text, UriKind.Absolute, out prometheus) || prometheus.Scheme is not ("http" or "https")))
            {
                reader.Diagnostics.Error(prom["url"]!.Location, $"prometheus.url '{text}' is not an http:// or https:// URL");
                prometheus = null;
            }
            else if (text is null)
            {
                reader.Missing(prom, "url", "prometheus");
            }
        }

        var gates = new List<GateSpec>();
        if (reader.Map(gatesNode, "gates", [.. StageWords.Select(w => w.Word)]) is { } map)
        {
            foreach (var entry in map.Entries)
            {
                var stage = StageWords.FirstOrDefault(w => w.Word == entry.Key);
                if (stage.Word is null)
                {
                    continue;
                }

                if (ReadGate(reader, stage.Stage, entry.Value, "gates." + entry.Key) is { } gate)
                {
                    gates.Add(gate);
                }
            }
        }

        if (prometheus is null && gates.SelectMany(g => g.Checks).FirstOrDefault(c => c is not HttpCheck) is { } needsProm)
        {
            reader.Diagnostics.Error(needsProm.Location, $"check '{needsProm.Name}' queries Prometheus, but capstan.yaml has no prometheus.url");
        }

        return new GateSettings(prometheus, gates);
    }

    private static readonly string[] GateKeys = ["soak", "interval", "min-samples", "inconclusive", "checks"];
    private static readonly string[] CheckKeys = ["name", "prometheus", "max", "min", "top", "relative", "http"];
    private static readonly string[] RelativeKeys = ["errors", "requests", "baseline", "max-ratio", "min-requests", "confidence"];

    private static GateSpec? ReadGate(NodeReader reader, Stage stage, ValueNode node, string what)
    {
        if (reader.Map(node, what, GateKeys) is not { } map)
        {
            return null;
        }

        var soak = ReadDuration(reader, map["soak"], what + ".soak") ?? TimeSpan.FromMinutes(5);
        var interval = ReadDuration(reader, map["interval"], what + ".interval") ?? TimeSpan.FromSeconds(10);
        if (interval > soak)
        {
            reader.Diagnostics.Error((map["interval"] ?? map["soak"] ?? node).Location, $"{what}.interval ({Durations.Format(interval)}) is longer than its soak ({Durations.Format(soak)})");
        }

        var inconclusive = reader.Enum(map["inconclusive"], what + ".inconclusive", [("fail", true), ("pass", false)]) ?? true;
        var checks = new List<GateCheck>();
        if (map["checks"] is ValueList list)
        {
            for (var i = 0; i < list.Items.Count; i++)
            {
                if (ReadCheck(reader, list.Items[i], $"{what}.checks[{i}]") is { } check)
                {
                    checks.Add(check);
                }
            }
        }
        else if (map["checks"] is { } other)
        {
            reader.Diagnostics.Error(other.Location, $"{what}.checks must be a list, not {other.Describe()}");
        }

        if (checks.Count == 0 && !reader.Diagnostics.HasErrors)
        {
            reader.Diagnostics.Error(node.Location, $"{what} has no checks (a soak with nothing to judge is a sleep: add a prometheus, relative or http check)");
        }

        return new GateSpec(stage, soak, interval, reader.Int(map["min-samples"], what + ".min-samples", 1, 10_000) ?? 3, inconclusive, checks, node.Location);
    }

    private static GateCheck? ReadCheck(NodeReader reader, ValueNode node, string what)
    {
        if (reader.Map(node, what, CheckKeys) is not { } map)
        {
            return null;
        }

        var kinds = new[] { "prometheus", "relative", "http" }.Where(k => map[k] is not null).ToList();
        if (kinds.Count != 1)
        {
            reader.Diagnostics.Error(node.Location, $"{what} must have exactly one of prometheus, relative or http{(kinds.Count > 1 ? $", not {string.Join(" and ", kinds)}" : string.Empty)}");
            return null;
        }

        var name = reader.String(map["name"], what + ".name") ?? kinds[0];
        switch (kinds[0])
        {
            case "prometheus":
                var query = reader.String(map["prometheus"], what + ".prometheus");
                var max = Number(reader, map["max"], what + ".max");
                var min = Number(reader, map["min"], what + ".min");
                if (max is null && min is null)
                {
                    reader.Diagnostics.Error(node.Location, $"{what} needs a limit: max (fail above it) or min (fail below it)");
                }

                return query is null ? null : new PromQueryCheck(name, query, max, min, reader.String(map["top"], what + ".top"), node.Location);
            case "relative":
                foreach (var key in new[] { "max", "min" }.Where(k => map[k] is not null))
                {
                    reader.Diagnostics.Error(map[key]!.Location, $"{what}.{key} belongs to a prometheus check; a relative check's limit is relative.max-ratio");
                }

                if (reader.Map(map["relative"], what + ".relative", RelativeKeys) is not { } rel)
                {
                    return null;
                }

                var errors = reader.String(rel["errors"], what + ".relative.errors");
                var requests = reader.String(rel["requests"], what + ".relative.requests");
                if (errors is null)
                {
                    reader.Missing(rel, "errors", what + ".relative");
                }

                if (requests is null)
                {
                    reader.Missing(rel, "requests", what + ".relative");
                }

                var confidence = Number(reader, rel["confidence"], what + ".relative.confidence") ?? 0.999;
                if (confidence is <= 0.5 or >= 1)
                {
                    reader.Diagnostics.Error(rel["confidence"]!.Location, $"{what}.relative.confidence must be above 0.5 and below 1, such as 0.999");
                }

                var ratio = Number(reader, rel["max-ratio"], what + ".relative.max-ratio") ?? 2;
                if (ratio < 1)
                {
                    reader.Diagnostics.Error(rel["max-ratio"]!.Location, $"{what}.relative.max-ratio must be at least 1 (the canary may err as often as its baseline, times this)");
                }

                return errors is null || requests is null
                    ? null
                    : new RelativeCheck(name, errors, requests, reader.String(rel["baseline"], what + ".relative.baseline"), ratio, reader.Int(rel["min-requests"], what + ".relative.min-requests", 1) ?? 500, 1 - confidence, node.Location)
                    {
                        Top = reader.String(map["top"], what + ".top"),
                    };
            default:
                var url = reader.String(map["http"], what + ".http");
                if (url is not null && !Uri.TryCreate(url.Replace("{", string.Empty, StringComparison.Ordinal).Replace("}", string.Empty, StringComparison.Ordinal), UriKind.Absolute, out _))
                {
                    reader.Diagnostics.Error(map["http"]!.Location, $"{what}.http '{url}' is not an absolute URL");
                    return null;
                }

                return url is null ? null : new HttpCheck(name, url, node.Location);
        }
    }

    private static double? Number(NodeReader reader, ValueNode? node, string what) =>
        reader.Decimal(node, what, -1_000_000_000m, 1_000_000_000m) is { } d ? (double)d : null;

    private static TimeSpan? ReadDuration(NodeReader reader, ValueNode? node, string what)
    {
        if (reader.ScalarText(node, what) is not { } text)
        {
            return null;
        }

        if (Durations.TryParse(text) is { } value)
        {
            return value;
        }

        reader.Diagnostics.Error(node!.Location, $"{what} '{text}' is not a duration (a whole number and s, m, h or d: 30s, 5m)");
        return null;
    }
}

/// <summary>A gate: after <see cref="After"/> is ready, every check is sampled every <see cref="Interval"/> for <see cref="Soak"/>.</summary>
public sealed record GateSpec(Stage After, TimeSpan Soak, TimeSpan Interval, int MinSamples, bool InconclusiveFails, IReadOnlyList<GateCheck> Checks, SourceLocation Location)
{
    /// <summary>The stage's word, as capstan.yaml writes it.</summary>
    public string StageWord => After.ToString().ToLowerInvariant();
}

/// <summary>One check of a gate.</summary>
public abstract record GateCheck(string Name, SourceLocation Location);

/// <summary>
/// A PromQL expression and its limit: every series of the result must stay at or under <see cref="Max"/> (and at or over
/// <see cref="Min"/>). <see cref="Top"/>, when set, is a second expression whose largest series explain a failure.
/// </summary>
public sealed record PromQueryCheck(string Name, string Query, double? Max, double? Min, string? Top, SourceLocation Location) : GateCheck(Name, Location);

/// <summary>
/// The release's error ratio against its baseline's (a canary's main release) over the same window: it fails when
/// the release's errors are significantly more than <see cref="MaxRatio"/> times what the baseline's ratio predicts
/// for its requests (a one-sided Poisson test at <see cref="Alpha"/>); fewer than <see cref="MinRequests"/> requests
/// make the sample unusable.
/// </summary>
public sealed record RelativeCheck(string Name, string Errors, string Requests, string? Baseline, double MaxRatio, long MinRequests, double Alpha, SourceLocation Location) : GateCheck(Name, Location)
{
    /// <summary>An expression whose largest series explain a failure (the releases and codes with the most errors).</summary>
    public string? Top { get; init; }
}

/// <summary>A URL that must answer 2xx.</summary>
public sealed record HttpCheck(string Name, string Url, SourceLocation Location) : GateCheck(Name, Location);

/// <summary>Durations written as a whole number and a unit: 30s, 5m, 12h, 90d.</summary>
public static class Durations
{
    /// <summary>The duration, or null when the text is not one.</summary>
    public static TimeSpan? TryParse(string text)
    {
        if (text.Length < 2 || !long.TryParse(text[..^1], NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n <= 0 || n > 10_000_000)
        {
            return null;
        }

        return text[^1] switch
        {
            's' => TimeSpan.FromSeconds(n),
            'm' => TimeSpan.FromMinutes(n),
            'h' when n <= 100_000 => TimeSpan.FromHours(n),
            'd' when n <= 10_000 => TimeSpan.FromDays(n),
            _ => null,
        };
    }

    /// <summary>As a person reads it: 2m30s, 5m, 1h2m, 45s.</summary>
    public static string Human(TimeSpan value)
    {
        var seconds = (long)Math.Round(value.TotalSeconds);
        var (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
        var text = (h > 0 ? $"{h}h" : string.Empty) + (m > 0 ? $"{m}m" : string.Empty) + (s > 0 ? $"{s}s" : string.Empty);
        return text.Length == 0 ? "0s" : text;
    }

    /// <summary>The shortest exact form: 90s → 90s, 300s → 5m, 7200s → 2h.</summary>
    public static string Format(TimeSpan value)
    {
        var seconds = (long)Math.Round(value.TotalSeconds);
        return seconds % 86400 == 0 && seconds > 0 ? $"{seconds / 86400}d"
            : seconds % 3600 == 0 && seconds > 0 ? $"{seconds / 3600}h"
            : seconds % 60 == 0 && seconds > 0 ? $"{seconds / 60}m"
            : $"{seconds}s";
    }
}
