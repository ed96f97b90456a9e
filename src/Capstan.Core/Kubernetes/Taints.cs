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

/// <summary>Required node affinity (<c>requiredDuringSchedulingIgnoredDuringExecution</c>), matched as kube-scheduler matches it.</summary>
public static class Affinity
{
    /// <summary>
    /// True when the node matches one of the selector's terms (none given: every node); a term matches when every
    /// expression does (In, NotIn, Exists, DoesNotExist, Gt, Lt on its labels; <c>matchFields</c> on
    /// <c>metadata.name</c>).
    /// </summary>
    public static bool Admits(JsonObject node, JsonObject? required)
    {
        var terms = (required?["nodeSelectorTerms"] as JsonArray ?? []).OfType<JsonObject>().ToList();
        if (terms.Count == 0)
        {
            return true;
        }

        var labels = node["metadata"]?["labels"] as JsonObject;
        var name = Str(node["metadata"]?["name"]);
        return terms.Any(term =>
            (term["matchExpressions"] as JsonArray ?? []).OfType<JsonObject>().All(e => Matches(e, Str(labels?[Str(e["key"]) ?? string.Empty])))
            && (term["matchFields"] as JsonArray ?? []).OfType<JsonObject>().All(e => Str(e["key"]) == "metadata.name" && Matches(e, name)));
    }

    private static bool Matches(JsonObject expression, string? value)
    {
        var values = (expression["values"] as JsonArray ?? []).Select(Str).ToList();
        return Str(expression["operator"]) switch
        {
            "In" => value is not null && values.Contains(value),
            "NotIn" => value is null || !values.Contains(value),
            "Exists" => value is not null,
            "DoesNotExist" => value is null,
            "Gt" => long.TryParse(value, out var gt) && long.TryParse(values.FirstOrDefault(), out var than) && gt > than,
            "Lt" => long.TryParse(value, out var lt) && long.TryParse(values.FirstOrDefault(), out var under) && lt < under,
            _ => false,
        };
    }

    private static string? Str(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
}
