using System.Text.Json.Nodes;

namespace Capstan.Core.Kubernetes;

/// <summary>Node taints and pod tolerations, matched as kube-scheduler matches them.</summary>
public static class Taints
{
    /// <summary>
    /// True when the toleration tolerates the taint: the same effect (or none given), and the same key and value
    /// (<c>Equal</c>, the default) or the same key or none (<c>Exists</c>).
    /// </summary>
    public static bool Tolerates(JsonObject toleration, JsonObject taint)
    {
        var effect = Str(toleration["effect"]);
        if (effect is { Length: > 0 } && effect != Str(taint["effect"]))
        {
            return false;
        }

        var key = Str(toleration["key"]);
        return Str(toleration["operator"]) == "Exists"
            ? key is null || key.Length == 0 || key == Str(taint["key"])
            : key == Str(taint["key"]) && (Str(toleration["value"]) ?? string.Empty) == (Str(taint["value"]) ?? string.Empty);
    }

    /// <summary>True when a pod with these tolerations may be placed on the node: every NoSchedule or NoExecute taint is tolerated.</summary>
    public static bool Admits(JsonObject node, JsonArray? tolerations) =>
        (node["spec"]?["taints"] as JsonArray ?? []).OfType<JsonObject>()
            .Where(t => Str(t["effect"]) is "NoSchedule" or "NoExecute")
            .All(t => (tolerations ?? []).OfType<JsonObject>().Any(tol => Tolerates(tol, t)));

    private static string? Str(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
}
