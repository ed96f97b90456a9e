using System.Text.Json.Nodes;

namespace Capstan.Core.Planning;

/// <summary>
/// The live object seen through the desired one: only the fields Capstan sets, with their live values, so a diff shows
/// what would change and not the server's defaults and status.
/// </summary>
public static class LiveProjection
{
    /// <summary>The projection of <paramref name="live"/> on the fields of <paramref name="desired"/>.</summary>
    public static JsonNode? Project(JsonNode? desired, JsonNode? live)
    {
        switch (desired)
        {
            case JsonObject map when live is JsonObject liveMap:
                var result = new JsonObject();
                foreach (var (key, value) in map)
                {
                    if (liveMap.TryGetPropertyValue(key, out var liveValue))
                    {
                        result[key] = Project(value, liveValue);
                    }
                }

                return result;
            case JsonArray list when live is JsonArray liveList && liveList.Count == list.Count:
                return new JsonArray([.. list.Select((item, i) => Project(item, liveList[i]))]);
            default:
                return live?.DeepClone();
        }
    }

    /// <summary>
    /// Fields of a Capstan object that a field manager other than Capstan and the cluster's own controllers now owns:
    /// fields Capstan sets that were changed by hand, and fields added by hand inside what Capstan sets (an env var
    /// added with <c>kubectl set env</c>). Read from the real <c>managedFields</c> paths (<c>f:</c>, list items by key
    /// <c>k:{"name":"main"}</c>, set values <c>v:</c>) and written as
    /// <c>.spec.template.spec.containers[name="main"].env[name="TRACING"]</c>.
    /// </summary>
    public static IReadOnlyList<(string Path, string Manager)> Drift(JsonObject desired, JsonObject live, string ownManager = "capstan")
    {
        var system = new HashSet<string>(StringComparer.Ordinal) { ownManager, "kube-controller-manager", "kubelet", "kube-apiserver", "kube-scheduler" };
        var drift = new List<(string, string)>();
        foreach (var entry in live["metadata"]?["managedFields"] as JsonArray ?? [])
        {
            var manager = entry?["manager"]?.GetValue<string>() ?? "unknown";
            if (system.Contains(manager))
            {
                continue;
            }

            if (entry?["fieldsV1"] is JsonObject fields)
            {
                Walk(fields, desired, [], path => drift.Add((Display(path), manager)));
            }
        }

        return drift;
    }

    /// <summary>
    /// Walks a manager's FieldsV1 set along the desired object: a field Capstan sets is reported where the manager owns
    /// it, and a field Capstan does not set where it hangs off something Capstan does set (the topmost such node).
    /// </summary>
    private static void Walk(JsonObject fields, JsonNode desired, List<string> path, Action<List<string>> report)
    {
        foreach (var (key, child) in fields)
        {
            if (key == ".")
            {
                continue;
            }

            var here = new List<string>(path) { key };
            if (Step(desired, key) is not { } next)
            {
                report(here);
            }
            else if (child is JsonObject { Count: > 0 } inner && !(inner.Count == 1 && inner.ContainsKey(".")))
            {
                Walk(inner, next, here, report);
            }
            else
            {
                report(here);
            }
        }
    }

    private static JsonNode? Step(JsonNode node, string part) => (node, part[..Math.Min(2, part.Length)]) switch
    {
        (JsonObject map, "f:") => map[part[2..]],
        (JsonArray list, "k:") when JsonNode.Parse(part[2..]) is JsonObject keys =>
            list.FirstOrDefault(item => item is JsonObject o && keys.All(k => JsonNode.DeepEquals(o[k.Key], k.Value))),
        (JsonArray list, "v:") when JsonNode.Parse(part[2..]) is { } value => list.FirstOrDefault(item => JsonNode.DeepEquals(item, value)),
        _ => null,
    };

    private static string Display(List<string> path)
    {
        var sb = new System.Text.StringBuilder();
        foreach (var part in path)
        {
            if (part.StartsWith("f:", StringComparison.Ordinal))
            {
                sb.Append('.').Append(part[2..]);
            }
            else if (part.StartsWith("k:", StringComparison.Ordinal) && JsonNode.Parse(part[2..]) is JsonObject keys)
            {
                sb.Append('[').Append(string.Join(",", keys.Select(k => $"{k.Key}={k.Value?.ToJsonString()}"))).Append(']');
            }
            else if (part.StartsWith("v:", StringComparison.Ordinal))
            {
                sb.Append('[').Append(part[2..]).Append(']');
            }
        }

        return sb.ToString();
    }
}
