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
    /// changes nothing. Lists are compared whole.
    /// </summary>
    public static (IReadOnlyList<string> Set, IReadOnlyList<string> Removed) Compare(JsonObject judged, JsonObject live)
    {
        var set = new List<string>();
        var removed = new List<string>();
        Walk(Comparable(judged), Comparable(live), string.Empty, set, removed);
        return (set, removed);
    }

    /// <summary>
    /// True when only the server can tell whether applying <paramref name="desired"/> changes the live object: it differs
    /// from what the last deploy applied (a field may have been removed), or some field of it is not live as written
    /// (another writer, or a value the server writes in another form). Otherwise applying it again changes nothing.
    /// </summary>
    public static bool NeedsServer(JsonObject desired, JsonObject live, JsonObject? lastApplied) =>
        lastApplied is null || !JsonNode.DeepEquals(lastApplied, desired) || Planner.FirstDifference(desired, live, string.Empty) is not null;

    private static void Walk(JsonObject judged, JsonObject live, string path, List<string> set, List<string> removed)
    {
        foreach (var (key, value) in judged)
        {
            var here = $"{path}.{key}";
            if (!live.TryGetPropertyValue(key, out var liveValue))
            {
                set.Add(here);
            }
            else if (value is JsonObject map && liveValue is JsonObject liveMap)
            {
                Walk(map, liveMap, here, set, removed);
            }
            else if (!JsonNode.DeepEquals(value, liveValue))
            {
                set.Add(here);
            }
        }

        foreach (var (key, _) in live)
        {
            if (!judged.ContainsKey(key))
            {
                removed.Add($"{path}.{key}");
            }
        }
    }
}
