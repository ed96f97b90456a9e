using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace Capstan.Web;

/// <summary>
/// A deploy's timeline as SVG, drawn on the server: one bar per release that moved (applying, then rolling out until
/// ready or failed), grouped by stage and datacenter, the gates' soaks and pauses as bars of their own, and the critical
/// path (the chain of bars, each starting when the one before it ended, that decided when the deploy finished) outlined.
/// Built from a running deploy's journal or a finished deploy's record: both carry each release's times.
/// </summary>
internal static class DeployTimeline
{
    private const int LabelWidth = 250;
    private const int ChartWidth = 700;
    private const int RowHeight = 18;
    private const int Top = 22;

    /// <summary>What one bar shows: a release or a gate, when it started, when it started waiting, when it ended.</summary>
    internal sealed record Bar(string Label, string Group, double Start, double? Waiting, double End, string State, bool Open)
    {
        public bool Critical { get; set; }
    }

    private static readonly string[] StageOrder = ["Testservers", "Canaries", "Production"];

    /// <summary>
    /// The bars of a deploy: <paramref name="deploy"/> is a running deploy's journal view (its <c>plan</c>) or a finished
    /// deploy's record (its <c>releases</c>); <paramref name="now"/> ends the bars still open (seconds since it started).
    /// </summary>
    public static IReadOnlyList<Bar> Bars(JsonObject deploy, double? now)
    {
        var bars = new List<Bar>();
        foreach (var release in (deploy["plan"] ?? deploy["releases"]) as JsonArray ?? [])
        {
            if (release is not JsonObject r || r["times"] is not JsonObject { Count: > 0 } times)
            {
                continue;
            }

            var at = times.ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<double>(), StringComparer.Ordinal);
            var state = r["state"]?.GetValue<string>() ?? r["result"]?.GetValue<string>() ?? "?";
            var start = at.GetValueOrDefault("Applying", at.Values.Min());
            double? waiting = at.TryGetValue("Waiting", out var w) ? w : null;
            var open = state is "Applying" or "Waiting";
            var end = open ? Math.Max(now ?? at.Values.Max(), at.Values.Max()) : at.Values.Max();
            var name = r["release"]!.GetValue<string>();
            bars.Add(new Bar(name, $"{r["stage"]?.GetValue<string>() ?? "?"} · {name.Split('/')[0]}", start, waiting, end, state, open));
        }

        foreach (var phase in deploy["phases"] as JsonArray ?? [])
        {
            if (phase is JsonObject p && p["start"] is { } start && p["name"]?.GetValue<string>() is { } name && !name.StartsWith("stage ", StringComparison.Ordinal))
            {
                var from = start.GetValue<double>();
                bars.Add(new Bar(name, "Gates and pauses", from, null, from + p["seconds"]!.GetValue<double>(), "gate", Open: false));
            }
        }

        MarkCriticalPath(bars);
        return bars;
    }

    /// <summary>
    /// The critical path: from the bar that ended last, back through the bar that ended last before it started (a
    /// release's need, the gate before its stage, or the release whose slot it took), until none ended before it.
    /// </summary>
    private static void MarkCriticalPath(List<Bar> bars)
    {
        var current = bars.MaxBy(b => b.End);
        while (current is not null)
        {
            current.Critical = true;
            var start = current.Start;
            current = bars.Where(b => !b.Critical && b.End <= start + 0.05).MaxBy(b => b.End);
        }
    }

    /// <summary>The timeline as an SVG element; null when no release has times (nothing moved, or a record from before times were kept).</summary>
    public static string? Svg(JsonObject deploy, double? now = null, string id = "timeline")
    {
        var bars = Bars(deploy, now);
        if (bars.Count == 0)
        {
            return null;
        }

        var total = Math.Max(bars.Max(b => b.End), 0.001);
        var step = Step(total);
        var rows = bars
            .OrderBy(b => b.State == "gate" ? int.MaxValue : Array.IndexOf(StageOrder, b.Group.Split(' ')[0]) is var i and >= 0 ? i : StageOrder.Length)
            .ThenBy(b => b.Group, StringComparer.Ordinal)
            .ThenBy(b => b.Start)
            .ThenBy(b => b.Label, StringComparer.Ordinal)
            .ToList();
        var groups = rows.Select(b => b.Group).Distinct(StringComparer.Ordinal).Count();
        var height = Top + ((rows.Count + groups) * RowHeight) + 30;
        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture, $"<svg id=\"{id}\" class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {LabelWidth + ChartWidth + 20} {height}\" width=\"100%\" role=\"img\" aria-label=\"deploy timeline, {Seconds(total)} long\">");

        // The time axis: a tick every step, with a line down the chart.
        for (var t = 0.0; t <= total + 1e-9; t += step)
        {
            var x = X(t, total);
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{x:0.#}\" y1=\"{Top - 4}\" x2=\"{x:0.#}\" y2=\"{height - 28}\" stroke=\"#e3e7ec\"/>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{x:0.#}\" y=\"{Top - 8}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#667085\">{Seconds(t)}</text>");
        }

        var y = Top;
        string? group = null;
        foreach (var bar in rows)
        {
            if (bar.Group != group)
            {
                group = bar.Group;
                svg.Append(CultureInfo.InvariantCulture, $"<text x=\"4\" y=\"{y + 13}\" font-size=\"11\" font-weight=\"bold\" fill=\"#1f2933\">{H(group)}</text>");
                y += RowHeight;
            }

            var mark = bar.Critical ? " stroke=\"#111\" stroke-width=\"1.5\"" : string.Empty;
            svg.Append(CultureInfo.InvariantCulture, $"<g class=\"bar{(bar.Critical ? " critical" : string.Empty)}\" data-release=\"{H(bar.Label)}\"><title>{H(Describe(bar))}</title>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"14\" y=\"{y + 13}\" font-size=\"11\" fill=\"#1f2933\">{H(bar.Label)}{(bar.Critical ? " ◆" : string.Empty)}</text>");
            var x0 = X(bar.Start, total);
            var waiting = bar.Waiting ?? bar.End;
            if (bar.State == "gate")
            {
                svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{x0:0.#}\" y=\"{y + 3}\" width=\"{Width(bar.Start, bar.End, total):0.#}\" height=\"{RowHeight - 6}\" fill=\"#f0b429\"{mark}/>");
            }
            else
            {
                svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{x0:0.#}\" y=\"{y + 3}\" width=\"{Width(bar.Start, waiting, total):0.#}\" height=\"{RowHeight - 6}\" fill=\"#8fb3ff\"{mark}/>");
                if (bar.Waiting is not null)
                {
                    svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{X(waiting, total):0.#}\" y=\"{y + 3}\" width=\"{Width(waiting, bar.End, total):0.#}\" height=\"{RowHeight - 6}\" fill=\"{Fill(bar)}\"{mark}/>");
                }
            }

            svg.Append("</g>");
            y += RowHeight;
        }

        // The legend.
        var legend = new (string Fill, string Text)[] { ("#8fb3ff", "applying"), ("#7cc49a", "rolling out → ready"), ("#c9d7f0", "still rolling out"), ("#e5534b", "failed or rolled back"), ("#f0b429", "gate or pause") };
        var lx = LabelWidth;
        foreach (var (fill, text) in legend)
        {
            svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{lx}\" y=\"{height - 18}\" width=\"10\" height=\"10\" fill=\"{fill}\"/><text x=\"{lx + 14}\" y=\"{height - 9}\" font-size=\"10\" fill=\"#667085\">{text}</text>");
            lx += 24 + (text.Length * 6);
        }

        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"4\" y=\"{height - 9}\" font-size=\"10\" fill=\"#667085\">◆ outlined: the critical path</text>");
        svg.Append("</svg>");
        return svg.ToString();
    }

    private static string Fill(Bar bar) => bar.State switch
    {
        "Done" or "deployed" => "#7cc49a",
        "Applying" or "Waiting" => "#c9d7f0",
        _ => "#e5534b",
    };

    private static string Describe(Bar bar) =>
        $"{bar.Label}: starts at {Seconds(bar.Start)}" +
        (bar.Waiting is { } w ? $", applied in {Seconds(w - bar.Start)}, rolled out in {Seconds(bar.End - w)}" : $", {Seconds(bar.End - bar.Start)}") +
        (bar.Open ? " so far" : string.Empty) + $" ({bar.State})" + (bar.Critical ? "; on the critical path" : string.Empty);

    private static double X(double t, double total) => LabelWidth + (t / total * ChartWidth);

    private static double Width(double from, double to, double total) => Math.Max(1, (to - from) / total * ChartWidth);

    /// <summary>A tick every 1, 2 or 5 × 10ⁿ seconds, about six on the axis.</summary>
    private static double Step(double total)
    {
        var raw = total / 6;
        var magnitude = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        return new[] { 1, 2, 5, 10 }.Select(m => m * magnitude).First(s => s >= raw);
    }

    private static string Seconds(double seconds) => Markup.Duration(seconds);

    private static string H(string text) => WebUtility.HtmlEncode(text);
}
