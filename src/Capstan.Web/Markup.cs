using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Components;

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
/// What the dashboard's Razor components (<c>Components/</c>) share: reading the page's JSON, and the few pieces of
/// markup every page writes the same way (a time, a duration, an image's label, a form's CSRF field). The pages are
/// rendered on the server from the same JSON the API serves; the only script is <c>/assets/app.js</c> (the
/// Content-Security-Policy allows no other).
/// </summary>
internal static class Markup
{
    /// <summary>A JSON value as text: a string as it is, anything else as its JSON, nothing as empty.</summary>
    public static string S(JsonNode? node) => node switch
    {
        null => string.Empty,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        _ => node.ToJsonString(),
    };

    /// <summary>A path segment.</summary>
    public static string Seg(string text) => Uri.EscapeDataString(text);

    private static string H(string? text) => WebUtility.HtmlEncode(text ?? string.Empty);

    /// <summary>
    /// A time as people read it: the minute in UTC, the exact second on hover (a <c>time</c> element, which the page's
    /// script turns into "3 min ago"); a value that is not a time is shown as it is.
    /// </summary>
    public static MarkupString When(JsonNode? node)
    {
        var text = S(node);
        if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var at))
        {
            return new(H(text));
        }

        var utc = at.UtcDateTime;
        return new($"<time datetime=\"{H(utc.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture))}\" title=\"{H(utc.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture))} UTC\">{H(utc.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture))} UTC</time>");
    }

    /// <summary>A duration rounded as people read it: 0.35 s, 12 s, 1 m 12 s, 2 h 5 m.</summary>
    public static string Duration(double seconds)
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

    /// <summary>The hidden field every form of a signed-in viewer carries (CSRF); nothing for a visitor.</summary>
    public static MarkupString Csrf(Viewer viewer) => new(viewer.Csrf is null ? string.Empty : $"<input type=\"hidden\" name=\"csrf\" value=\"{H(viewer.Csrf)}\">");

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

    /// <summary>A deploy's phases as one line: "build 0.08 s, plan 0.3 s, stage canaries 12 s".</summary>
    public static string Phases(JsonNode? phases) =>
        string.Join(", ", (phases as JsonArray ?? []).Select(p => $"{S(p!["name"])} {Duration(p["seconds"]!.GetValue<double>())}"));

    /// <summary>A deploy's timeline: the SVG the data carries (drawn by <see cref="DeployTimeline"/>, every text in it encoded).</summary>
    public static MarkupString? Timeline(JsonNode? deploy) =>
        deploy?["timeline"] is JsonValue v && v.TryGetValue<string>(out var svg) ? new MarkupString(svg) : null;

    /// <summary>Only http(s) links become links: a <c>javascript:</c> URL in a record must not run in the dashboard.</summary>
    public static string SafeLink(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" ? url : "#";

    /// <summary>Where a stage comes in a deploy: test servers, canaries, then production.</summary>
    public static int StageOrder(string stage) => stage switch { "Testservers" => 0, "Canaries" => 1, _ => 2 };

    /// <summary>What a line of a unified diff is: an added or removed line, a hunk's header, a file's, or context (null).</summary>
    public static string? DiffClass(string line) => line switch
    {
        _ when line.StartsWith("+++", StringComparison.Ordinal) || line.StartsWith("---", StringComparison.Ordinal) => "file",
        _ when line.StartsWith('+') => "add",
        _ when line.StartsWith('-') => "del",
        _ when line.StartsWith("@@", StringComparison.Ordinal) => "hunk",
        _ => null,
    };
}
