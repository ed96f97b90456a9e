using System.Text.Json.Nodes;
using Capstan.Core.Kubernetes;
using static Capstan.LocalCluster.Store.StructuralSchema;

namespace Capstan.LocalCluster.Store;

/// <summary>
/// CustomResourceDefinitions as kube-apiserver admits them (apiextensions.k8s.io/v1): defaults filled in, then the
/// names, scope, versions and the structural schema checked, with its messages.
/// </summary>
internal static class Definitions
{
    /// <summary>The finalizer that keeps a definition until its custom resources are deleted.</summary>
    public const string CleanupFinalizer = "customresourcecleanup.apiextensions.k8s.io";

    /// <summary>Fills in what the server defaults: the singular and list kind, the conversion strategy.</summary>
    public static void Default(JsonObject crd)
    {
        if (crd["spec"] is not JsonObject spec)
        {
            return;
        }

        if (spec["names"] is JsonObject names && Str(names["kind"]) is { } kind)
        {
            names["singular"] ??= kind.ToLowerInvariant();
            names["listKind"] ??= kind + "List";
        }

        spec["conversion"] ??= new JsonObject { ["strategy"] = "None" };
    }

    /// <summary>What is wrong with a definition, as (field, message) causes.</summary>
    public static List<(string Field, string Message)> Validate(JsonObject crd, JsonObject? live)
    {
        var causes = new List<(string, string)>();
        var spec = crd["spec"] as JsonObject;
        var group = Str(spec?["group"]);
        var names = spec?["names"] as JsonObject;
        var plural = Str(names?["plural"]);
        if (string.IsNullOrEmpty(group))
        {
            causes.Add(("spec.group", "Required value"));
        }
        else if (!group.Contains('.', StringComparison.Ordinal) || KubeNames.CheckDnsSubdomain(group) is not null)
        {
            causes.Add(("spec.group", $"Invalid value: \"{group}\": should be a domain with at least one dot"));
        }

        if (string.IsNullOrEmpty(plural))
        {
            causes.Add(("spec.names.plural", "Required value"));
        }
        else if (KubeNames.CheckDnsLabel(plural) is { } why)
        {
            causes.Add(("spec.names.plural", $"Invalid value: \"{plural}\": {why}"));
        }

        if (string.IsNullOrEmpty(Str(names?["kind"])))
        {
            causes.Add(("spec.names.kind", "Required value"));
        }

        var name = crd["metadata"]?["name"]?.GetValue<string>();
        if (!string.IsNullOrEmpty(group) && !string.IsNullOrEmpty(plural) && name != $"{plural}.{group}")
        {
            causes.Add(("metadata.name", $"Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"));
        }

        switch (Str(spec?["scope"]))
        {
            case null:
                causes.Add(("spec.scope", "Required value"));
                break;
            case "Namespaced" or "Cluster":
                break;
            case var scope:
                causes.Add(("spec.scope", $"Unsupported value: \"{scope}\": supported values: \"Cluster\", \"Namespaced\""));
                break;
        }

        var versions = (spec?["versions"] as JsonArray ?? []).OfType<JsonObject>().ToList();
        if (versions.Count == 0)
        {
            causes.Add(("spec.versions", "Invalid value: null: must have exactly one version marked as storage version"));
        }
        else if (versions.Count(v => Flag(v["storage"])) != 1)
        {
            causes.Add(("spec.versions", $"Invalid value: {versions.Count(v => Flag(v["storage"]))}: must have exactly one version marked as storage version"));
        }

        for (var i = 0; i < versions.Count; i++)
        {
            var path = $"spec.versions[{i}]";
            if (Str(versions[i]["name"]) is not { Length: > 0 } version)
            {
                causes.Add((path + ".name", "Required value"));
            }
            else if (KubeNames.CheckDnsLabel(version) is not null)
            {
                causes.Add((path + ".name", $"Invalid value: \"{version}\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character"));
            }

            CheckScale(versions[i], path, causes);
            if ((versions[i]["schema"] as JsonObject)?["openAPIV3Schema"] is not JsonObject schema)
            {
                causes.Add((path + ".schema.openAPIV3Schema", "Required value: schemas are required"));
                continue;
            }

            if (Str(schema["type"]) != "object")
            {
                causes.Add((path + ".schema.openAPIV3Schema.type", $"Invalid value: \"{Str(schema["type"])}\": must be object at the root"));
            }

            Structural(schema, path + ".schema.openAPIV3Schema", causes);
        }

        if (live is not null && Str((live["spec"] as JsonObject)?["scope"]) is { } was && Str(spec?["scope"]) is { } now && was != now)
        {
            causes.Add(("spec.scope", $"Invalid value: \"{now}\": field is immutable"));
        }

        // Objects stored at a version stay readable only while the definition keeps it (there is no conversion here).
        var stored = live is null ? [] : StoredVersions(live).ToList();
        for (var i = 0; i < stored.Count; i++)
        {
            if (!versions.Any(v => Str(v["name"]) == stored[i]))
            {
                causes.Add(($"status.storedVersions[{i}]", $"Invalid value: \"{stored[i]}\": must appear in spec.versions"));
            }
        }

        return causes;
    }

    /// <summary>The scale subresource's paths: the replicas under <c>.spec</c> and <c>.status</c>, as kube-apiserver requires.</summary>
    private static void CheckScale(JsonObject version, string path, List<(string, string)> causes)
    {
        if ((version["subresources"] as JsonObject)?["scale"] is not JsonObject scale)
        {
            return;
        }

        path += ".subresources.scale";
        foreach (var (field, prefixes) in new[] { ("specReplicasPath", new[] { ".spec." }), ("statusReplicasPath", [".status."]), ("labelSelectorPath", [".spec.", ".status."]) })
        {
            var value = Str(scale[field]);
            if (value is null)
            {
                if (field != "labelSelectorPath")
                {
                    causes.Add(($"{path}.{field}", "Required value"));
                }

                continue;
            }

            if (!prefixes.Any(p => value.StartsWith(p, StringComparison.Ordinal) && value.Length > p.Length) || value.Contains("..", StringComparison.Ordinal))
            {
                causes.Add(($"{path}.{field}", $"Invalid value: \"{value}\": should be a json path under {string.Join(" or ", prefixes.Select(p => p.TrimEnd('.')))}"));
            }
        }
    }

    /// <summary>
    /// The structural rules: every property and item has a type unless it keeps unknown fields or is an
    /// int-or-string; an object has properties or additionalProperties, not both.
    /// </summary>
    private static void Structural(JsonObject schema, string path, List<(string, string)> causes)
    {
        var preserves = Flag(schema["x-kubernetes-preserve-unknown-fields"]);
        var intOrString = Flag(schema["x-kubernetes-int-or-string"]);
        if (Str(schema["type"]) is null && !preserves && !intOrString)
        {
            causes.Add((path + ".type", "Required value: must not be empty for specified object fields"));
        }

        if (Str(schema["pattern"]) is { } pattern && StructuralSchema.Pattern(pattern) is null)
        {
            causes.Add((path + ".pattern", $"Invalid value: \"{pattern}\": must be a valid regular expression"));
        }

        if (schema["properties"] is JsonObject && schema["additionalProperties"] is JsonObject)
        {
            causes.Add((path + ".additionalProperties", "Forbidden: additionalProperties and properties are mutual exclusive"));
        }

        foreach (var (key, value) in schema["properties"] as JsonObject ?? [])
        {
            if (value is JsonObject property)
            {
                Structural(property, $"{path}.properties[{key}]", causes);
            }
        }

        if (schema["items"] is JsonObject items)
        {
            Structural(items, path + ".items", causes);
        }
        else if (Str(schema["type"]) == "array")
        {
            causes.Add((path + ".items", "Required value: must be specified"));
        }

        if (schema["additionalProperties"] is JsonObject values)
        {
            Structural(values, path + ".additionalProperties", causes);
        }
    }

    /// <summary>The status the API server's controllers give an accepted definition.</summary>
    public static JsonObject EstablishedStatus(JsonObject crd, string now)
    {
        var spec = crd["spec"] as JsonObject ?? [];
        var storage = (spec["versions"] as JsonArray ?? []).OfType<JsonObject>().Where(v => Flag(v["storage"])).Select(v => Str(v["name"])).OfType<string>();
        var stored = StoredVersions(crd).Union(storage);
        return new JsonObject
        {
            ["acceptedNames"] = spec["names"]?.DeepClone(),
            ["storedVersions"] = new JsonArray([.. stored.Select(v => (JsonNode)v)]),
            ["conditions"] = new JsonArray(
                Condition("NamesAccepted", "True", "NoConflicts", "no conflicts found", now),
                Condition("Established", "True", "InitialNamesAccepted", "the initial names have been accepted", now)),
        };
    }

    /// <summary>The status of a definition whose names another one or a built-in resource holds.</summary>
    public static JsonObject ConflictStatus(string message, string now) => new()
    {
        ["acceptedNames"] = new JsonObject { ["plural"] = string.Empty, ["kind"] = string.Empty },
        ["conditions"] = new JsonArray(
            Condition("NamesAccepted", "False", "NameConflict", message, now),
            Condition("Established", "False", "NotAccepted", "not all names are accepted", now)),
    };

    /// <summary>The versions a definition's objects were ever stored at (<c>status.storedVersions</c>).</summary>
    private static IEnumerable<string> StoredVersions(JsonObject crd) =>
        ((crd["status"] as JsonObject)?["storedVersions"] as JsonArray ?? []).Select(Str).OfType<string>();

    private static JsonObject Condition(string type, string status, string reason, string message, string now) => new()
    {
        ["type"] = type,
        ["status"] = status,
        ["lastTransitionTime"] = now,
        ["reason"] = reason,
        ["message"] = message,
    };
}
