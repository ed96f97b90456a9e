using System.Text.Json.Nodes;

namespace Capstan.Core.Planning;

/// <summary>
/// How the planner compares what the server would make of an apply (its dry-run result) with the live object, as
/// <c>kubectl diff --server-side</c> does: everything but the metadata the server maintains and the status.
/// </summary>
public static class ObjectComparison
{
    private static readonly string[] ServerMetadata = ["managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink"];

    /// <summary>A copy of the object without server-maintained metadata and status.</summary>
    public static JsonObject Comparable(JsonObject obj)
    {
        var copy = (JsonObject)obj.DeepClone();
        copy.Remove("status");
        if (copy["metadata"] is JsonObject metadata)
        {
            foreach (var key in ServerMetadata)
            {
                metadata.Remove(key);
            }
        }

        return copy;
    }

    /// <summary>
    /// The fields the apply would set (new or different values) and remove, as paths; both empty when the apply
    /// changes nothing. Only fields Capstan can change are compared: those of the desired object and of the object
    /// the last deploy applied (what Capstan owned). Fields of other managers and controllers (a revision annotation
    /// moving while the plan is made) are not the apply's doing. Lists are compared whole.
    /// </summary>
    public static (IReadOnlyList<string> Set, IReadOnlyList<string> Removed) Compare(JsonObject judged, JsonObject live, JsonObject desired, JsonObject? lastApplied)
    {
        var set = new List<string>();
        var removed = new List<string>();
        Walk(Comparable(judged), Comparable(live), [desired, .. lastApplied is null ? Array.Empty<JsonObject>() : [lastApplied]], string.Empty, set, removed);
        return (set, removed);
    }

    /// <summary>
    /// True when only the server can tell whether applying <paramref name="desired"/> changes the live object: it differs
    /// from what the last deploy applied (a field may have been removed), or some field of it is not live as written
    /// (another writer, or a value the server writes in another form). Otherwise applying it again changes nothing.
    /// </summary>
    /// <remarks>
    /// A record is written only after a deploy succeeds; when Capstan applied the object after its record was written
    /// (a deploy that failed, stopped or was not rolled back), the record no longer says what Capstan owns, so the
    /// server is asked too.
    /// </remarks>
    public static bool NeedsServer(JsonObject desired, JsonObject live, JsonObject? lastApplied, DateTimeOffset? recordedAt = null, string manager = "capstan") =>
        lastApplied is null
        || !JsonNode.DeepEquals(lastApplied, desired)
        || (recordedAt is { } at && LastApply(live, manager) is { } applied && applied > at)
        || Planner.FirstDifference(desired, live, string.Empty) is not null;

    /// <summary>When <paramref name="manager"/> last applied the object, from its managedFields; null when unknown.</summary>
    public static DateTimeOffset? LastApply(JsonObject live, string manager)
    {
        foreach (var entry in (live["metadata"]?["managedFields"] as JsonArray ?? []).OfType<JsonObject>())
        {
            if (entry["manager"]?.GetValue<string>() == manager && entry["operation"]?.GetValue<string>() == "Apply" && entry["subresource"] is null &&
                DateTimeOffset.TryParse(entry["time"]?.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var time))
            {
                return time;
            }
        }

        return null;
    }

    private static void Walk(JsonObject judged, JsonObject live, List<JsonObject> scope, string path, List<string> set, List<string> removed)
    {
        foreach (var key in judged.Select(kv => kv.Key).Union(live.Select(kv => kv.Key)).Where(k => scope.Any(s => s.ContainsKey(k))).ToList())
        {
            var here = $"{path}.{key}";
            var inJudged = judged.TryGetPropertyValue(key, out var value);
            var inLive = live.TryGetPropertyValue(key, out var liveValue);
            if (inJudged && !inLive)
            {
                set.Add(here);
            }
            else if (!inJudged)
            {
                removed.Add(here);
            }
            else if (value is JsonObject map && liveValue is JsonObject liveMap)
            {
                Walk(map, liveMap, [.. scope.Select(s => s[key]).OfType<JsonObject>()], here, set, removed);
            }
            else if (!JsonNode.DeepEquals(value, liveValue))
            {
                set.Add(here);
            }
        }
    }
}
