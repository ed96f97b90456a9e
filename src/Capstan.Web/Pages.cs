using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace Capstan.Web;

/// <summary>Who is looking at a page: the signed-in user and the token forms carry, or nobody (read-only).</summary>
public sealed record Viewer(string? Actor, string? Csrf, Role Role = Role.Viewer)
{
    /// <summary>True when the viewer is signed in with a role that includes <paramref name="needed"/> (the page offers the action).</summary>
    public bool May(Role needed) => Actor is not null && Role >= needed;

    /// <summary>Nobody signed in.</summary>
    public static Viewer Anonymous { get; } = new(null, null);
}

/// <summary>
/// The dashboard's HTML, rendered on the server from the same JSON the API serves. Every value is HTML-encoded; the
/// only script is <c>/assets/app.js</c> (the Content-Security-Policy allows no other).
/// </summary>
internal static class Pages
{
    public static string H(string? text) => WebUtility.HtmlEncode(text ?? string.Empty);

    private static string S(JsonNode? node) => node switch
    {
        null => string.Empty,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        _ => node.ToJsonString(),
    };

    private static string Seg(string text) => Uri.EscapeDataString(text);

    /// <summary>
    /// A time as people read it: the minute in UTC, the exact second on hover (a <c>time</c> element, which the page's
    /// script turns into "3 min ago"); a value that is not a time is shown as it is.
    /// </summary>
    internal static string When(JsonNode? node)
    {
        var text = S(node);
        if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var at))
        {
            return H(text);
        }

        var utc = at.UtcDateTime;
        return $"<time datetime=\"{H(utc.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture))}\" title=\"{H(utc.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture))} UTC\">{H(utc.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture))} UTC</time>";
    }

    /// <summary>A duration rounded as people read it: 0.35 s, 12 s, 1 m 12 s, 2 h 5 m.</summary>
    internal static string Duration(double seconds)
    {
        if (seconds < 10)
        {
            return Math.Round(seconds, 2).ToString("0.##", CultureInfo.InvariantCulture) + " s";
        }

        var whole = (long)Math.Round(seconds);
        return whole switch
        {
            < 60 => $"{whole} s",
            < 3600 => $"{whole / 60} m {whole % 60} s",
            _ => $"{whole / 3600} h {whole % 3600 / 60} m",
        };
    }

    public static string Layout(string project, string title, string active, Viewer viewer, string body)
    {
        var nav = new StringBuilder();
        foreach (var (href, label) in new[] { ("/", "Overview"), ("/deploy", "Deploy"), ("/jobs", "Jobs"), ("/history", "History"), ("/environments", "Environments"), ("/train", "Train"), ("/switchover", "Switchover") })
        {
            nav.Append($"<a href=\"{href}\"{(label == active ? " class=\"active\" aria-current=\"page\"" : string.Empty)}>{label}</a>");
        }

        var who = viewer.Actor is null
            ? "<a href=\"/login\" id=\"sign-in\">Sign in</a> <span class=\"muted\">(read-only)</span>"
            : $"<span id=\"signed-in\">{H(viewer.Actor)}</span> <form method=\"post\" action=\"/logout\" class=\"inline\">{Csrf(viewer)}<button type=\"submit\">Sign out</button></form>";
        return $$"""
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>{{H(title)}} · {{H(project)}} · Capstan</title>
            <link rel="stylesheet" href="/assets/app.css">
            <script src="/assets/app.js" defer></script>
            </head>
            <body>
            <header><a class="brand" href="/">Capstan</a><span class="project">{{H(project)}}</span><nav>{{nav}}</nav><span class="who">{{who}}</span></header>
            <main>
            <h1>{{H(title)}}</h1>
            {{body}}
            </main>
            </body>
            </html>
            """;
    }

    public static string Csrf(Viewer viewer) => viewer.Csrf is null ? string.Empty : $"<input type=\"hidden\" name=\"csrf\" value=\"{H(viewer.Csrf)}\">";

    public static string Error(string? message) => message is null ? string.Empty : $"<div class=\"banner error\" role=\"alert\" id=\"error\">{H(message)}</div>";

    /// <summary>The tag and short digest of an image reference: <c>1.44 @3f2a9c81d0e4</c>.</summary>
    public static string ImageLabel(string? image)
    {
        if (string.IsNullOrEmpty(image))
        {
            return "-";
        }

        var at = image.IndexOf("@sha256:", StringComparison.Ordinal);
        var name = at < 0 ? image : image[..at];
        var slash = name.LastIndexOf('/');
        var colon = name.LastIndexOf(':');
        var tag = colon > slash ? name[(colon + 1)..] : "latest";
        return at < 0 ? tag : $"{tag} @{image.Substring(at + 8, Math.Min(12, image.Length - at - 8))}";
    }

    public static string Overview(JsonObject data, string? error)
    {
        var html = new StringBuilder(Error(error));
        var status = data["status"]!.AsObject();
        if (status["consistent"]?.GetValue<bool>() == false)
        {
            html.Append("<div class=\"banner mismatch\" role=\"alert\" id=\"version-mismatch\"><strong>Releases run different MediaWiki versions.</strong><ul>");
            foreach (var (image, running) in status["mediawikiVersions"]!.AsObject())
            {
                html.Append($"<li><code>{H(image)}</code>: {H(string.Join(", ", running!.AsArray().Select(S)))}</li>");
            }

            html.Append("</ul></div>");
        }

        foreach (var (dc, why) in status["unreachable"]?.AsObject() ?? [])
        {
            html.Append($"<div class=\"banner error\" role=\"alert\">The cluster of {H(dc)} cannot be read: {H(S(why))}. Its releases are missing below.</div>");
        }

        html.Append("<section class=\"cards\">");
        foreach (var dc in data["datacenters"]!.AsArray())
        {
            var name = S(dc!["name"]);
            var primary = dc["primary"]?.GetValue<bool>();
            var readOnly = S(dc["readOnly"]);
            html.Append($"<div class=\"card\" data-dc=\"{H(name)}\"><h2>{H(name)}</h2>")
                .Append($"<p class=\"role\">{(primary is null ? "state not initialised" : primary.Value ? "<span class=\"badge primary\">primary</span>" : "secondary")}</p>")
                .Append($"<p class=\"ro\">{(readOnly.Length > 0 ? $"<span class=\"badge warn\">read-only</span> {H(readOnly)}" : "read-write")}</p>")
                .Append($"<p class=\"maint\">maintenance {(dc["maintenance"]?.GetValue<bool>() == true ? "runs here" : "does not run here")}</p></div>");
        }

        var lockJson = data["lock"];
        html.Append("<div class=\"card\" id=\"lock\"><h2>Deploy lock</h2>")
            .Append(lockJson is null ? "<p>free</p>" : $"<p><span class=\"badge warn\">held</span> by {H(S(lockJson["actor"]))}{(lockJson["manual"]?.GetValue<bool>() == true ? " (operator lock)" : string.Empty)}</p><p>{H(S(lockJson["reason"]))}</p><p class=\"muted\">taken {When(lockJson["since"])}</p>")
            .Append(data["deploying"] is { } plan ? $"<p><a href=\"/deploy\">deploy {H(S(plan))} running</a></p>" : string.Empty)
            .Append("</div></section>");
        if (data["state"] is JsonObject state)
        {
            html.Append($"<p class=\"muted\" id=\"state-line\">State #{H(S(state["sequence"]))}: maintenance {(state["maintenance_enabled"]?.GetValue<bool>() == true ? "enabled" : "disabled")}; last changed by {H(S(state["updatedBy"]))} {When(state["updatedAt"])}: {H(S(state["reason"]))}</p>");
            foreach (var problem in state["incoherences"]?.AsArray() ?? [])
            {
                html.Append($"<div class=\"banner error\">{H(S(problem))}</div>");
            }
        }

        foreach (var mismatch in data["stateMismatches"]?.AsArray() ?? [])
        {
            html.Append($"<div class=\"banner error state-mismatch\" role=\"alert\">The clusters do not reflect the state: {H(S(mismatch))}</div>");
        }

        if (data["holds"] is JsonArray { Count: > 0 } holds)
        {
            // A rolled-back release stays where it is until the repo stops naming what was rolled back, or a deploy lifts the hold.
            html.Append("<h2>Held releases</h2><table id=\"holds\"><thead><tr><th>Release</th><th>Held image</th><th>By</th><th>Since</th><th>Why</th></tr></thead><tbody>");
            foreach (var hold in holds)
            {
                html.Append($"<tr><td>{H(S(hold!["release"]))}</td><td>{H(S(hold["image"]))}</td><td>{H(S(hold["actor"]))}</td><td>{When(hold["at"])}</td><td>{H(S(hold["reason"]))}</td></tr>");
            }

            html.Append("</tbody></table><p class=\"muted\">A deploy that would apply a held image again stops; <code>deploy --release-hold RELEASE --reason …</code> lifts a hold.</p>");
        }

        html.Append("<h2>What runs where</h2>");
        var releases = status["releases"]!.AsArray().Select(r => r!.AsObject()).ToList();
        if (releases.Count == 0)
        {
            html.Append("<p id=\"matrix-empty\">No release has been deployed.</p>");
            return html.ToString();
        }

        var dcs = data["datacenters"]!.AsArray().Select(d => S(d!["name"])).ToList();
        html.Append("<table class=\"matrix\" id=\"matrix\"><thead><tr><th>Release</th>");
        foreach (var dc in dcs)
        {
            html.Append($"<th>{H(dc)}</th>");
        }

        html.Append("</tr></thead><tbody>");
        foreach (var row in releases.GroupBy(r => $"{S(r["namespace"])}/{S(r["name"])}").OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            html.Append($"<tr><th scope=\"row\">{H(row.Key)}</th>");
            foreach (var dc in dcs)
            {
                if (row.FirstOrDefault(r => S(r["datacenter"]) == dc) is not { } r)
                {
                    html.Append("<td class=\"absent\">-</td>");
                    continue;
                }

                var ready = r["ready"] is null ? (r["missing"]?.GetValue<bool>() == true ? "missing" : string.Empty) : $"{S(r["ready"])}/{S(r["desired"])}";
                var healthy = S(r["health"]) is "Healthy" or "";
                var sync = S(r["sync"]);
                html.Append($"<td class=\"{(healthy ? "ok" : "bad")}\"><a href=\"/releases/{Seg(dc)}/{Seg(S(r["namespace"]))}/{Seg(S(r["name"]))}\">")
                    .Append($"<span class=\"image\">{H(ImageLabel(S(r["mediawikiImage"])))}</span> <span class=\"rev\">r{H(S(r["revision"]))}</span> <span class=\"ready\">{H(ready)}</span></a>")
                    .Append($" <span class=\"badge sync sync-{H(sync.ToLowerInvariant())}\" title=\"{H(S(r["syncDetail"]))}\">{H(sync)}</span>")
                    .Append($" <span class=\"badge health health-{H(S(r["health"]).ToLowerInvariant())}\" title=\"{H(S(r["healthDetail"]))}\">{H(S(r["health"]))}</span>")
                    .Append(r["syncDetail"] is { } why && sync != "Held" ? $"<div class=\"sync-detail\">{H(S(why))}</div>" : string.Empty)
                    .Append(r["problem"] is { } p ? $"<div class=\"problem\">{H(S(p))}</div>" : string.Empty)
                    .Append("</td>");
            }

            html.Append("</tr>");
        }

        html.Append("</tbody></table>");
        return html.ToString();
    }

    /// <summary>A deploy's timeline: the SVG the data carries (drawn by <see cref="DeployTimeline"/>, every text in it encoded), in a figure.</summary>
    private static string Timeline(JsonObject deploy) =>
        deploy["timeline"]?.GetValue<string>() is { } svg ? $"<figure class=\"timeline\">{svg}</figure>" : string.Empty;

    /// <summary>One finished deploy: who, why, how it ended, its timeline and each release's result.</summary>
    public static string DeployRecord(JsonObject record)
    {
        var html = new StringBuilder($"<p id=\"deploy-record\">By {H(S(record["actor"]))}, started {When(record["started"])}, finished {When(record["finished"])}: <strong class=\"{(record["succeeded"]?.GetValue<bool>() == true ? "ok" : "bad")}\">{(record["succeeded"]?.GetValue<bool>() == true ? "succeeded" : "failed")}</strong>. {H(S(record["reason"]))}</p>");
        if (record["cause"] is not null)
        {
            html.Append($"<p class=\"problem\">{H(S(record["cause"]))}</p>");
        }

        html.Append(Phases("record-phases", record["phases"])).Append(Timeline(record));
        html.Append("<table id=\"record-releases\"><thead><tr><th>Release</th><th>Stage</th><th>Result</th><th>Revision</th><th>Detail</th></tr></thead><tbody>");
        foreach (var r in record["releases"]?.AsArray() ?? [])
        {
            html.Append($"<tr><td>{H(S(r!["release"]))}</td><td>{H(S(r["stage"]))}</td><td>{H(S(r["result"]))}</td><td>{H(S(r["revision"]))}</td><td>{H(S(r["detail"]))}</td></tr>");
        }

        return html.Append("</tbody></table>").ToString();
    }

    public static string Deploy(JsonObject data) =>
        $"<div id=\"deploy\" data-events=\"/api/v1/deploy/events\">{DeployBody(data)}</div><p class=\"muted\" id=\"live\">Updates live.</p>";

    /// <summary>The deploy page's content (also re-rendered by the page's script from each event, in the same shape).</summary>
    public static string DeployBody(JsonObject data)
    {
        var html = new StringBuilder();
        if (data["running"] is JsonObject running)
        {
            html.Append($"<p id=\"deploy-state\" data-state=\"running\">Deploy <strong>{H(S(running["planId"]))}</strong> by {H(S(running["actor"]))}, started {When(running["started"])}.</p>");
            if (running["reason"] is not null)
            {
                html.Append($"<p id=\"deploy-reason\">{H(S(running["reason"]))}</p>");
            }

            html.Append(Phases("deploy-phases", running["phases"]));
            var actions = running["plan"]?.AsArray().Select(a => a!.AsObject()).ToList() ?? [];
            var done = actions.Count(a => S(a["state"]) is "Done" or "Unchanged");
            html.Append($"<p><progress max=\"{actions.Count}\" value=\"{done}\"></progress> {done} of {actions.Count} releases done</p>");

            // Stages × datacenters: how many of each cell's releases are done.
            var dcs = actions.Select(a => S(a["release"]).Split('/')[0]).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
            html.Append("<table class=\"grid\" id=\"stage-grid\"><thead><tr><th>Stage</th>");
            foreach (var dc in dcs)
            {
                html.Append($"<th>{H(dc)}</th>");
            }

            html.Append("</tr></thead><tbody>");
            foreach (var stage in actions.Select(a => S(a["stage"])).Distinct(StringComparer.Ordinal).OrderBy(StageOrder))
            {
                html.Append($"<tr><th scope=\"row\">{H(stage)}</th>");
                foreach (var dc in dcs)
                {
                    var cell = actions.Where(a => S(a["stage"]) == stage && S(a["release"]).StartsWith(dc + "/", StringComparison.Ordinal)).ToList();
                    html.Append($"<td>{(cell.Count == 0 ? "-" : $"{cell.Count(a => S(a["state"]) is "Done" or "Unchanged")}/{cell.Count} done")}</td>");
                }

                html.Append("</tr>");
            }

            html.Append("</tbody></table>");
            html.Append(Timeline(running));
            html.Append("<table class=\"stages\"><thead><tr><th>Stage</th><th>Release</th><th>State</th><th>Ready</th><th>Problem</th><th>Events</th></tr></thead><tbody>");
            foreach (var a in actions.OrderBy(a => StageOrder(S(a["stage"]))).ThenBy(a => S(a["release"]), StringComparer.Ordinal))
            {
                var events = string.Join("<br>", (a["events"]?.AsArray() ?? []).Select(e => H(S(e))));
                html.Append($"<tr class=\"state-{H(S(a["state"]).ToLowerInvariant())}\"><td>{H(S(a["stage"]))}</td><td>{H(S(a["release"]))}</td><td>{H(S(a["state"]))}</td><td>{(a["desired"] is null ? string.Empty : $"{H(S(a["ready"]))}/{H(S(a["desired"]))}")}</td><td>{H(S(a["problem"]))}</td><td class=\"events\">{events}</td></tr>");
            }

            html.Append("</tbody></table>");
        }
        else
        {
            html.Append("<p id=\"deploy-state\" data-state=\"idle\">No deploy is running.</p>");
        }

        if (data["last"] is JsonObject last)
        {
            html.Append($"<h2>Last deploy</h2><p id=\"last-deploy\">{H(S(last["planId"]))} by {H(S(last["actor"]))}: <strong class=\"{(last["succeeded"]?.GetValue<bool>() == true ? "ok" : "bad")}\">{(last["succeeded"]?.GetValue<bool>() == true ? "succeeded" : "failed")}</strong>, finished {When(last["finished"])}. {H(S(last["reason"]))} {H(S(last["cause"]))}</p>");
            html.Append(Phases("last-phases", last["phases"]));
            html.Append(Timeline(last));
            html.Append("<table><thead><tr><th>Release</th><th>Result</th><th>Revision</th><th>Detail</th></tr></thead><tbody>");
            foreach (var r in last["releases"]?.AsArray() ?? [])
            {
                html.Append($"<tr><td>{H(S(r!["release"]))}</td><td>{H(S(r["result"]))}</td><td>{H(S(r["revision"]))}</td><td>{H(S(r["detail"]))}</td></tr>");
            }

            html.Append("</tbody></table>");
        }

        return html.ToString();
    }

    private static int StageOrder(string stage) => stage switch { "Testservers" => 0, "Canaries" => 1, _ => 2 };

    public static string History(JsonObject data)
    {
        var filter = data["filter"]!.AsObject();
        var html = new StringBuilder($"<form method=\"get\" action=\"/history\" class=\"filter\"><label>Who <input name=\"actor\" value=\"{H(S(filter["actor"]))}\"></label> <label>Text <input name=\"q\" value=\"{H(S(filter["text"]))}\"></label> <button type=\"submit\">Filter</button></form>");
        html.Append("<h2>Deploys</h2><table id=\"deploys\"><thead><tr><th>Plan</th><th>Who</th><th>When</th><th>Why</th><th>Result</th><th>Seconds</th><th>Changes</th></tr></thead><tbody>");
        foreach (var d in data["deploys"]!.AsArray())
        {
            var links = new StringBuilder();
            foreach (var r in d!["releases"]?.AsArray() ?? [])
            {
                if (r?["revision"]?.GetValue<int>() is int rev && rev > 1 && S(r["release"]).Split('/') is [var dc, var ns, var name])
                {
                    links.Append($"<a href=\"/releases/{Seg(dc)}/{Seg(ns)}/{Seg(name)}/diff?from={rev - 1}&amp;to={rev}\">{H(S(r["release"]))} r{rev}</a> ");
                }
                else
                {
                    links.Append($"{H(S(r?["release"]))} ({H(S(r?["result"]))}) ");
                }
            }

            html.Append($"<tr><td><a href=\"/deploys/{Seg(S(d["planId"]))}\">{H(S(d["planId"]))}</a></td><td>{H(S(d["actor"]))}</td><td>{When(d["started"])}</td><td>{H(S(d["reason"]))}</td><td>{(d["succeeded"]?.GetValue<bool>() == true ? "succeeded" : "failed: " + H(S(d["cause"])))}</td><td>{H(S(d["seconds"]))}</td><td>{links}</td></tr>");
        }

        html.Append("</tbody></table><h2>Dynamic state</h2><table id=\"state-changes\"><thead><tr><th>#</th><th>Who</th><th>When</th><th>Why</th><th>Change</th><th>Before</th><th>After</th></tr></thead><tbody>");
        foreach (var c in data["stateChanges"]!.AsArray())
        {
            html.Append($"<tr><td>{H(S(c!["sequence"]))}</td><td>{H(S(c["actor"]))}</td><td>{When(c["at"])}</td><td>{H(S(c["reason"]))}</td><td>{H(S(c["change"]))}{(c["forced"]?.GetValue<bool>() == true ? " (forced)" : string.Empty)}</td><td><code>{H(S(c["before"]))}</code></td><td><code>{H(S(c["after"]))}</code></td></tr>");
        }

        html.Append("</tbody></table>");
        return html.ToString();
    }

    public static string Release(JsonObject data)
    {
        var (dc, ns, name) = (S(data["datacenter"]), S(data["namespace"]), S(data["name"]));
        var basePath = $"/releases/{Seg(dc)}/{Seg(ns)}/{Seg(name)}";
        var revisions = data["revisions"]!.AsArray().Select(r => r!.AsObject()).ToList();
        var html = new StringBuilder("<h2>Revisions</h2><table id=\"revisions\"><thead><tr><th>Revision</th><th>Status</th><th>When</th><th>Who</th><th>Why</th><th>Plan</th><th>MediaWiki image</th><th>Diff</th></tr></thead><tbody>");
        foreach (var r in revisions)
        {
            var rev = r["revision"]!.GetValue<int>();
            html.Append($"<tr><td>{rev}</td><td>{H(S(r["status"]))}</td><td>{When(r["at"])}</td><td>{H(S(r["actor"]))}</td><td>{H(S(r["reason"]))}</td><td>{H(S(r["planId"]))}</td><td>{H(r["mediawikiImage"] is { } image ? S(image) : "-")}</td><td>{(revisions.Any(o => o["revision"]!.GetValue<int>() == rev - 1) ? $"<a href=\"{basePath}/diff?from={rev - 1}&amp;to={rev}\">from r{rev - 1}</a>" : string.Empty)}</td></tr>");
        }

        html.Append("</tbody></table>");
        if (revisions.Count > 1)
        {
            string Options(int selected) => string.Concat(revisions.Select(r => r["revision"]!.GetValue<int>()).Select(v => $"<option value=\"{v}\"{(v == selected ? " selected" : string.Empty)}>r{v}</option>"));
            html.Append($"<form method=\"get\" action=\"{basePath}/diff\" class=\"filter\" id=\"compare\"><label>From <select name=\"from\">{Options(revisions[^1]["revision"]!.GetValue<int>())}</select></label> <label>to <select name=\"to\">{Options(revisions[0]["revision"]!.GetValue<int>())}</select></label> <button type=\"submit\">Compare</button></form>");
        }

        // The pods at a glance; the whole list (hundreds in a large release) behind "show all".
        var summary = data["podSummary"]!.AsObject();
        var phases = string.Join(", ", summary["byPhase"]!.AsObject().Select(kv => $"{kv.Value} {H(kv.Key)}"));
        html.Append($"<h2>Pods</h2><p id=\"pod-summary\"><strong>{summary["ready"]}/{summary["total"]} ready</strong>{(phases.Length > 0 ? " · " + phases : string.Empty)}</p>");
        if (summary["problems"] is JsonArray { Count: > 0 } problems)
        {
            html.Append("<table id=\"pod-problems\"><thead><tr><th>Pod</th><th>Problem</th></tr></thead><tbody>");
            foreach (var p in problems)
            {
                html.Append($"<tr><td>{H(S(p!["name"]))}</td><td class=\"problem\">{H(S(p["problem"]))}</td></tr>");
            }

            html.Append("</tbody></table>");
            if (summary["moreProblems"]!.GetValue<int>() is > 0 and var more)
            {
                html.Append($"<p class=\"muted\">and {more} more pods with a problem (in the full list).</p>");
            }
        }

        html.Append($"<details id=\"all-pods\"><summary>show all {summary["total"]} pods</summary><table id=\"pods\"><thead><tr><th>Pod</th><th>Phase</th><th>Ready</th><th>Node</th><th>Problem</th></tr></thead><tbody>");
        foreach (var p in data["pods"]!.AsArray())
        {
            html.Append($"<tr><td>{H(S(p!["name"]))}</td><td>{H(S(p["phase"]))}</td><td>{H(S(p["ready"]))}/{H(S(p["containers"]))}</td><td>{H(S(p["node"]))}</td><td class=\"problem\">{H(S(p["problem"]))}</td></tr>");
        }

        html.Append("</tbody></table></details><h2>Recent events</h2><table id=\"events\"><thead><tr><th>When</th><th>Type</th><th>Reason</th><th>Object</th><th>Message</th></tr></thead><tbody>");
        foreach (var e in data["events"]!.AsArray())
        {
            html.Append($"<tr><td>{When(e!["at"])}</td><td>{H(S(e["type"]))}</td><td>{H(S(e["reason"]))}</td><td>{H(S(e["object"]))}</td><td>{H(S(e["message"]))}</td></tr>");
        }

        html.Append("</tbody></table>");
        return html.ToString();
    }

    public static string Diff(JsonObject data)
    {
        var text = S(data["diff"]);
        return text.Length == 0
            ? "<p id=\"diff-empty\">The two revisions render the same objects.</p>"
            : $"<pre class=\"diff\" id=\"diff\">{string.Join("\n", text.Split('\n').Select(DiffLine))}</pre><p class=\"muted\">Secret values are masked.</p>";
    }

    /// <summary>A unified diff's line, coloured by what it is: added, removed, a hunk's header, or context.</summary>
    private static string DiffLine(string line) => line switch
    {
        _ when line.StartsWith("+++", StringComparison.Ordinal) || line.StartsWith("---", StringComparison.Ordinal) => $"<span class=\"file\">{H(line)}</span>",
        _ when line.StartsWith('+') => $"<span class=\"add\">{H(line)}</span>",
        _ when line.StartsWith('-') => $"<span class=\"del\">{H(line)}</span>",
        _ when line.StartsWith("@@", StringComparison.Ordinal) => $"<span class=\"hunk\">{H(line)}</span>",
        _ => H(line),
    };

    public static string Environments(JsonObject data, Viewer viewer, string? error, IReadOnlyDictionary<string, string>? form = null)
    {
        var now = DateTimeOffset.Parse(S(data["now"]), CultureInfo.InvariantCulture);
        var html = new StringBuilder(Error(error));
        var list = data["environments"]!.AsArray();
        if (list.Count == 0)
        {
            html.Append("<p id=\"no-environments\">No test environments.</p>");
        }
        else
        {
            html.Append("<table id=\"environments\"><thead><tr><th>Name</th><th>Owner</th><th>Purpose</th><th>Expires</th><th>Ready</th><th>Drift</th><th>Base</th><th>State</th><th>URL</th></tr></thead><tbody>");
            foreach (var e in list)
            {
                var expires = DateTimeOffset.Parse(S(e!["expires"]), CultureInfo.InvariantCulture);
                var soon = expires - now < TimeSpan.FromDays(3);
                html.Append($"<tr data-name=\"{H(S(e["name"]))}\"><td><a href=\"/environments/{Seg(S(e["name"]))}\">{H(S(e["name"]))}</a></td><td>{H(S(e["owner"]))}</td><td>{H(S(e["purpose"]))}</td>")
                    .Append($"<td class=\"{(soon ? "soon" : string.Empty)}\">{H(S(e["expires"]))}{(expires <= now ? " (expired)" : soon ? " (soon)" : string.Empty)}</td>")
                    .Append($"<td>{H(S(e["health"]?["ready"]))}/{H(S(e["health"]?["desired"]))}</td><td>{(e["drift"] is null ? "?" : H(S(e["drift"])))}</td><td>{H(S(e["base"]))}{((e["behind"] as JsonArray)?.Count > 0 ? " <span class=\"bad behind\">behind</span>" : string.Empty)}</td><td>{H(S(e["state"]))}</td><td>{Urls(e["urls"])}</td></tr>");
            }

            html.Append("</tbody></table>");
        }

        string Value(string key) => H(form?.GetValueOrDefault(key));
        var purposes = string.Concat(data["classes"]!.AsArray().Select(c => $"<option value=\"{H(S(c!["name"]))}\"{(form?.GetValueOrDefault("purpose") == S(c["name"]) ? " selected" : string.Empty)}>{H(S(c["name"]))}: at most {H(S(c["maxDays"]))} days{(c["links"]?.GetValue<bool>() == true ? ", needs a link" : string.Empty)}{(c["base"] is { } b ? $", {H(S(b))}" : string.Empty)}</option>"));
        var defaults = data["defaultGroups"]!.AsArray().Select(S).ToHashSet(StringComparer.Ordinal);
        var groups = string.Concat(data["groups"]!.AsArray().Select(g => $"<label class=\"check\"><input type=\"checkbox\" name=\"group\" value=\"{H(S(g))}\"{(defaults.Contains(S(g)) && form is null ? " checked" : string.Empty)}> {H(S(g))}</label>"));
        var dcs = string.Concat(data["datacenters"]!.AsArray().Select(d => $"<label class=\"check\"><input type=\"checkbox\" name=\"dc\" value=\"{H(S(d))}\"> {H(S(d))}</label>"));
        html.Append("<h2>Create an environment</h2>")
            .Append(viewer.Actor is null ? "<p class=\"muted\" id=\"sign-in-needed\">Changes need a sign-in; without one this form is refused.</p>" : string.Empty)
            .Append($"<form method=\"post\" action=\"/environments/new\" id=\"create\" class=\"stack\">{Csrf(viewer)}")
            .Append($"<label>Name <input name=\"name\" required value=\"{Value("name")}\"></label>")
            .Append($"<label>Owner <input name=\"owner\" value=\"{(form is null ? H(viewer.Actor) : Value("owner"))}\"></label>")
            .Append($"<label>Purpose <select name=\"purpose\">{purposes}</select></label>")
            .Append($"<label>Expires in <input name=\"expires\" placeholder=\"7d\" value=\"{Value("expires")}\"></label>")
            .Append($"<label>Description <input name=\"description\" value=\"{Value("description")}\"></label>")
            .Append($"<label>Link <input name=\"link\" placeholder=\"https://…\" value=\"{Value("link")}\"></label>")
            .Append($"<fieldset><legend>Groups</legend>{groups}</fieldset><fieldset><legend>Datacenters (default: the primary)</legend>{dcs}</fieldset>")
            .Append("<label class=\"check\"><input type=\"checkbox\" name=\"pin\" value=\"1\"> pinned</label>")
            .Append("<button type=\"submit\">Create</button></form>");
        return html.ToString();
    }

    public static string Environment(JsonObject data, Viewer viewer, string? error)
    {
        var name = S(data["name"]);
        var html = new StringBuilder(Error(error));
        html.Append("<dl class=\"record\" id=\"record\">");
        foreach (var (label, key) in new[] { ("Owner", "owner"), ("Purpose", "purpose"), ("Description", "description"), ("Created by", "createdBy"), ("Created", "createdAt"), ("Expires", "expires"), ("Base", "base"), ("Pinned to", "pinnedRevision"), ("Image", "image"), ("State", "state") })
        {
            html.Append($"<dt>{label}</dt><dd data-key=\"{key}\">{H(S(data[key]))}</dd>");
        }

        html.Append($"<dt>Links</dt><dd>{string.Join(" ", (data["links"]?.AsArray() ?? []).Select(l => $"<a href=\"{H(SafeLink(S(l)))}\" rel=\"noreferrer\">{H(S(l))}</a>"))}</dd>")
            .Append($"<dt>Namespaces</dt><dd>{H(string.Join(", ", (data["namespaces"]?.AsArray() ?? []).Select(S)))}</dd>")
            .Append($"<dt>Ready</dt><dd>{H(S(data["health"]?["ready"]))}/{H(S(data["health"]?["desired"]))}</dd>")
            .Append($"<dt>URL</dt><dd data-key=\"urls\">{Urls(data["urls"])}</dd>")
            .Append($"<dt>Backends</dt><dd data-key=\"backends\">{H(string.Join(", ", (data["backends"] as JsonObject ?? []).Select(b => $"{b.Key} {S(b.Value)}")))}</dd></dl>");
        if (data["behind"] is JsonArray { Count: > 0 } behind)
        {
            html.Append("<h2>Behind the repo</h2><ul id=\"behind\" class=\"bad\">").Append(string.Concat(behind.Select(b => $"<li>{H(S(b))}</li>"))).Append("</ul>");
        }

        html.Append("<h2>Drift from production</h2>");
        if (data["driftError"] is { } driftError)
        {
            html.Append($"<p class=\"bad\">{H(S(driftError))}</p>");
        }
        else if (data["drift"] is JsonObject drift)
        {
            html.Append($"<p id=\"drift-count\">{H(S(drift["count"]))} difference(s).</p><table id=\"drift\"><thead><tr><th>Release</th><th>Key</th><th>Here</th><th>Set by</th><th>Production</th><th>Set by</th></tr></thead><tbody>");
            foreach (var v in drift["values"]!.AsArray())
            {
                html.Append($"<tr><td>{H(S(v!["release"]))}</td><td>{H(S(v["key"]))}</td><td>{H(S(v["environment"]))}</td><td>{H(S(v["environmentSetBy"]))}</td><td>{H(S(v["production"]))}</td><td>{H(S(v["productionSetBy"]))}</td></tr>");
            }

            foreach (var d in drift["state"]!.AsArray())
            {
                html.Append($"<tr><td>(dynamic state)</td><td>{H(S(d!["key"]))}</td><td>{H(S(d["environment"]))}</td><td></td><td>{H(S(d["production"]))}</td><td></td></tr>");
            }

            html.Append("</tbody></table>");
            foreach (var only in drift["onlyInProduction"]!.AsArray())
            {
                html.Append($"<p class=\"muted\">only in production: {H(S(only))}</p>");
            }
        }

        var basePath = $"/environments/{Seg(name)}";
        var force = viewer.Actor is not null && viewer.Actor != S(data["owner"])
            ? "<label class=\"check\"><input type=\"checkbox\" name=\"force\" value=\"1\"> as " + H(viewer.Actor) + ", not the owner (recorded)</label>"
            : string.Empty;
        html.Append("<h2>Change</h2>")
            .Append(viewer.Actor is null ? "<p class=\"muted\" id=\"sign-in-needed\">Changes need a sign-in; without one these forms are refused.</p>" : string.Empty)
            .Append($"<form method=\"post\" action=\"{basePath}/extend\" id=\"extend\" class=\"inline\">{Csrf(viewer)}<label>Extend by <input name=\"by\" placeholder=\"7d\" required></label>{force}<button type=\"submit\">Extend</button></form>")
            .Append(S(data["state"]) == "asleep"
                ? $"<form method=\"post\" action=\"{basePath}/wake\" id=\"wake\" class=\"inline\">{Csrf(viewer)}{force}<button type=\"submit\">Wake</button></form>"
                : $"<form method=\"post\" action=\"{basePath}/sleep\" id=\"sleep\" class=\"inline\">{Csrf(viewer)}{force}<button type=\"submit\">Sleep</button></form>")
            .Append($"<form method=\"post\" action=\"{basePath}/delete\" id=\"delete\" class=\"inline\">{Csrf(viewer)}{force}<button type=\"submit\" class=\"danger\">Delete</button></form>");

        html.Append("<h2>History</h2><table id=\"history\"><thead><tr><th>When</th><th>Who</th><th>What</th></tr></thead><tbody>");
        foreach (var h in data["history"]?.AsArray() ?? [])
        {
            html.Append($"<tr><td>{When(h!["at"])}</td><td>{H(S(h["actor"]))}</td><td>{H(S(h["what"]))}{(h["forced"]?.GetValue<bool>() == true ? " (forced)" : string.Empty)}</td></tr>");
        }

        html.Append("</tbody></table>");
        return html.ToString();
    }

    /// <summary>An environment's URLs as links.</summary>
    private static string Urls(JsonNode? urls) =>
        string.Join(" ", (urls as JsonObject ?? []).Select(u => $"<a href=\"{H(SafeLink(S(u.Value)))}\" rel=\"noreferrer\">{H(S(u.Value))}</a>"));

    /// <summary>Only http(s) links become links: a <c>javascript:</c> URL in a record must not run in the dashboard.</summary>
    private static string SafeLink(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" ? url : "#";

    public static string Switchover(JsonObject? journal)
    {
        if (journal is null)
        {
            return "<p id=\"no-switchover\">No switchover has run.</p>";
        }

        var html = new StringBuilder($"<p id=\"switchover-summary\">{H(S(journal["from"]))} → {H(S(journal["to"]))}{(journal["liveTest"]?.GetValue<bool>() == true ? " (live test)" : string.Empty)} by {H(S(journal["actor"]))}, started {When(journal["started"])}: {H(S(journal["reason"]))}. {(journal["complete"]?.GetValue<bool>() == true ? "Complete" : "<strong>In progress or stopped</strong>")}.</p>");
        if (journal["readOnlySeconds"] is { } window)
        {
            html.Append($"<p id=\"read-only-window\">Read-only for {H(Duration(window.GetValue<double>()))} ({When(journal["readOnlySince"])} to {When(journal["readOnlyUntil"])}).</p>");
        }

        html.Append("<ol class=\"steps\" id=\"steps\">");
        foreach (var step in journal["steps"]!.AsArray())
        {
            html.Append($"<li class=\"step-{H(S(step!["status"]))}\"><strong>{H(S(step["title"]))}</strong> <span class=\"badge\">{H(S(step["status"]))}</span> {(step["seconds"] is { } s ? H(Duration(s.GetValue<double>())) : string.Empty)}<div class=\"muted\">{H(S(step["detail"]))}</div></li>");
        }

        html.Append("</ol>");
        return html.ToString();
    }

    /// <summary>The train page: where the train is, each group's version(s), the blocker, and what the pods serve.</summary>
    public static string Train(JsonObject data)
    {
        if (data["configured"]?.GetValue<bool>() == false)
        {
            return "<p id=\"no-train\">This farm has no train: capstan.yaml has no train: section.</p>";
        }

        var html = new StringBuilder($"<p id=\"train-position\">The train is at <strong>{H(S(data["position"]))}</strong>. Versions in the image: {H(string.Join(", ", (data["imageVersions"]?.AsArray() ?? []).Select(S)))}.</p>");
        html.Append(data["blocker"] is JsonObject blocker
            ? $"<p id=\"train-blocker\" class=\"bad\">Blocked by {H(S(blocker["actor"]))}, {When(blocker["at"])}: {H(S(blocker["reason"]))}</p>"
            : "<p id=\"train-blocker\">Not blocked.</p>");
        html.Append("<table id=\"train-groups\"><thead><tr><th>Group</th><th>Wikis</th><th>Version</th></tr></thead><tbody>");
        foreach (var group in data["groups"]?.AsArray() ?? [])
        {
            var versions = group!["versions"]!.AsObject().Select(v => group["versions"]!.AsObject().Count == 1 ? v.Key : $"{v.Key} ({S(v.Value)})");
            html.Append($"<tr><td>{H(S(group["name"]))}</td><td>{H(S(group["wikis"]))}</td><td>{H(string.Join(", ", versions))}</td></tr>");
        }

        html.Append("</tbody></table>");
        if (data["live"] is JsonObject live)
        {
            html.Append("<h2>What the pods serve</h2><table id=\"train-images\"><thead><tr><th>Image</th><th>Pods</th><th>wikiversions</th></tr></thead><tbody>");
            foreach (var image in live["images"]?.AsArray() ?? [])
            {
                var matches = image!["matchesRepo"] is null ? "unknown" : image["matchesRepo"]!.GetValue<bool>() ? "as in the repo" : "differs from the repo's";
                html.Append($"<tr><td><code>{H(S(image["digest"]))}</code></td><td>{H(S(image["pods"]))}</td><td>{H(matches)}</td></tr>");
            }

            html.Append("</tbody></table>");
            html.Append(live["oneWikiVersions"]?.GetValue<bool>() == true
                ? "<p id=\"train-one\" class=\"ok\">Every pod serves the same wikiversions.</p>"
                : "<p id=\"train-one\" class=\"bad\">Not every pod is known to serve the same wikiversions.</p>");
        }

        return html.ToString();
    }

    /// <summary>A deploy's phases (build, push, plan, pre-pull, each stage, gate and pause) and their seconds.</summary>
    private static string Phases(string id, JsonNode? phases) =>
        phases is JsonArray { Count: > 0 } list
            ? $"<p id=\"{id}\" class=\"phases\">Phases: {H(string.Join(", ", list.Select(p => $"{S(p!["name"])} {Duration(p["seconds"]!.GetValue<double>())}")))}</p>"
            : string.Empty;

    public static string Login(string? error, string? returnTo) =>
        $"{Error(error)}<form method=\"post\" action=\"/login\" id=\"login\" class=\"stack\"><input type=\"hidden\" name=\"returnTo\" value=\"{H(returnTo)}\"><label>Token <input type=\"password\" name=\"token\" autocomplete=\"current-password\" required></label><button type=\"submit\">Sign in</button></form><p class=\"muted\">A token from the server's tokens file. Tools can send it as <code>Authorization: Bearer</code> instead.</p>";

    public static string Message(string text) => $"<p id=\"message\">{H(text)}</p>";
}
