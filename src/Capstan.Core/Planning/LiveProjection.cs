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
    /// Fields Capstan sets that a field manager other than Capstan and the cluster's own controllers now owns: changes
    /// made by hand since the last deploy.
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

            foreach (var path in Paths(entry?["fieldsV1"] as JsonObject, string.Empty))
            {
                if (Has(desired, path))
                {
                    drift.Add(("." + string.Join('.', path.Split('\u001f')), manager));
                }
            }
        }

        return drift;
    }

    private static IEnumerable<string> Paths(JsonObject? fields, string prefix)
    {
        foreach (var (key, value) in fields ?? [])
        {
            if (!key.StartsWith("f:", StringComparison.Ordinal))
            {
                continue;
            }

            var path = prefix.Length == 0 ? key[2..] : prefix + '\u001f' + key[2..];
            if (value is JsonObject { Count: > 0 } child)
            {
                foreach (var p in Paths(child, path))
                {
                    yield return p;
                }
            }
            else
            {
                yield return path;
            }
        }
    }

    private static bool Has(JsonObject obj, string path)
    {
        JsonNode? node = obj;
        foreach (var part in path.Split('\u001f'))
        {
            if (node is not JsonObject map || !map.TryGetPropertyValue(part, out node))
            {
                return false;
            }
        }

        return true;
    }
}
