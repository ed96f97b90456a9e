using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Capstan.Core.Kubernetes;

namespace Capstan.LocalCluster.Store;

/// <summary>
/// What the real API server does to every write of a whole object before it is stored: defaults, normalisation
/// (canonical quantities, Secret <c>stringData</c> folded into <c>data</c>, empty optional maps and lists dropped) and
/// validation (422 with one cause per problem, as kube-apiserver words them). Status-only writes are not admitted here.
/// </summary>
internal static partial class Admission
{
    /// <summary>Fields whose value is a map (Go's omitempty drops them when empty); struct-typed empties such as
    /// <c>emptyDir: {}</c> mean something and stay.</summary>
    private static readonly HashSet<string> MapFields = new(StringComparer.Ordinal)
    {
        "labels", "annotations", "data", "binaryData", "stringData", "nodeSelector", "matchLabels", "requests", "limits",
    };

    /// <summary>Admits <paramref name="obj"/> (changed in place) as a create (<paramref name="live"/> null) or an update.</summary>
    public static void Admit(ResourceType type, JsonObject obj, JsonObject? live)
    {
        if (type.Custom is { } custom)
        {
            // A custom resource is judged by its definition's schema alone (pruned, defaulted, validated).
            Refuse(type, obj, custom.Admit(obj));
            return;
        }

        if (type.Kind == "CustomResourceDefinition")
        {
            Definitions.Default(obj);
            Refuse(type, obj, Definitions.Validate(obj, live));
            return;
        }

        Defaults.Apply(type, obj, live);
        var causes = new List<(string Field, string Message)>();
        Normalize(obj, string.Empty, null, causes);
        if (type.Kind == "Secret")
        {
            FoldStringData(obj);
        }

        Validate(type, obj, live, causes);
        Refuse(type, obj, causes);
    }

    private static void Refuse(ResourceType type, JsonObject obj, List<(string Field, string Message)> causes)
    {
        if (causes.Count > 0)
        {
            throw ApiError.Invalid(type, obj["metadata"]?["name"]?.GetValue<string>() ?? string.Empty, [.. causes]);
        }
    }

    /// <summary>
    /// Normalises an applied configuration the way the whole object will be (canonical quantities, folded stringData,
    /// empty maps dropped), so that ownership and conflicts compare like with like. No defaults: an applier does not
    /// own what the server defaulted.
    /// </summary>
    public static void NormalizeApplied(ResourceType type, JsonObject applied)
    {
        if (type.Custom is not null)
        {
            return;
        }

        var causes = new List<(string Field, string Message)>();
        Normalize(applied, string.Empty, null, causes);
        if (type.Kind == "Secret")
        {
            FoldStringData(applied);
        }

        if (causes.Count > 0)
        {
            throw ApiError.Invalid(type, applied["metadata"]?["name"]?.GetValue<string>() ?? string.Empty, [.. causes]);
        }
    }

    private static void Normalize(JsonNode? node, string path, string? key, List<(string Field, string Message)> causes)
    {
        switch (node)
        {
            case JsonObject map:
                foreach (var (k, v) in map.ToList())
                {
                    var childPath = path.Length == 0 ? k : $"{path}.{k}";
                    if (v is null || (v is JsonArray { Count: 0 }) || (v is JsonObject { Count: 0 } && MapFields.Contains(k)))
                    {
                        map.Remove(k);
                        continue;
                    }

                    if (IsQuantityMap(key, k))
                    {
                        foreach (var (name, value) in ((v as JsonObject) ?? []).ToList())
                        {
                            CanonicalQuantity(v.AsObject(), name, value, $"{childPath}[{name}]", causes);
                        }
                    }
                    else if (k == "sizeLimit" && key == "emptyDir")
                    {
                        CanonicalQuantity(map, k, v, childPath, causes);
                    }

                    Normalize(v, childPath, k, causes);
                }

                break;
            case JsonArray list:
                for (var i = 0; i < list.Count; i++)
                {
                    Normalize(list[i], $"{path}[{i}]", key, causes);
                }

                break;
        }
    }

    /// <summary>requests/limits of a container's resources, and the quantity maps of a LimitRange item.</summary>
    private static bool IsQuantityMap(string? parent, string key) =>
        (parent == "resources" && key is "requests" or "limits")
        || (parent == "limits" && key is "max" or "min" or "default" or "defaultRequest" or "maxLimitRequestRatio");

    private static void CanonicalQuantity(JsonObject owner, string key, JsonNode? value, string path, List<(string Field, string Message)> causes)
    {
        var text = value?.GetValueKind() switch
        {
            JsonValueKind.String => value.GetValue<string>(),
            JsonValueKind.Number => value.ToJsonString(),
            _ => null,
        };
        if (text is not null && Quantity.Canonicalize(text) is { } canonical)
        {
            owner[key] = canonical;
        }
        else
        {
            causes.Add((path, $"Invalid value: {value?.ToJsonString()}: {Quantity.SyntaxMessage}"));
        }
    }

    private static void FoldStringData(JsonObject secret)
    {
        if (secret["stringData"] is not JsonObject stringData)
        {
            return;
        }

        var data = secret["data"] as JsonObject ?? [];
        foreach (var (key, value) in stringData)
        {
            data[key] = Convert.ToBase64String(Encoding.UTF8.GetBytes(value?.GetValue<string>() ?? string.Empty));
        }

        secret["data"] = data;
        secret.Remove("stringData");
    }

    private static void Validate(ResourceType type, JsonObject obj, JsonObject? live, List<(string Field, string Message)> causes)
    {
        var spec = obj["spec"] as JsonObject;
        switch (type.Kind)
        {
            case "Deployment" when spec is not null:
                ValidateSelector(spec, "spec", causes);
                ValidateStrategy(spec["strategy"] as JsonObject, causes);
                Immutable(live?["spec"]?["selector"], spec["selector"], "spec.selector", causes);
                PodTemplate(spec["template"]?["spec"] as JsonObject, "spec.template.spec", causes);
                break;
            case "ReplicaSet" when spec is not null:
                ValidateSelector(spec, "spec", causes);
                PodTemplate(spec["template"]?["spec"] as JsonObject, "spec.template.spec", causes);
                break;
            case "Job" when spec is not null:
                if (live is not null)
                {
                    Immutable(live["spec"]?["template"], spec["template"], "spec.template", causes);
                }

                PodTemplate(spec["template"]?["spec"] as JsonObject, "spec.template.spec", causes);
                break;
            case "CronJob" when spec is not null:
                PodTemplate(spec["jobTemplate"]?["spec"]?["template"]?["spec"] as JsonObject, "spec.jobTemplate.spec.template.spec", causes);
                break;
            case "Pod" when spec is not null:
                PodTemplate(spec, "spec", causes);
                break;
            case "Secret" when live is not null:
                Immutable(live["type"], obj["type"], "type", causes);
                break;
            case "RoleBinding" or "ClusterRoleBinding":
                ValidateBinding(type, obj, live, causes);
                break;
            case "Role" or "ClusterRole":
                ValidateRules(type, obj, causes);
                break;
            case "Ingress" when spec is not null:
                ValidateIngress(spec, causes);
                break;
        }

        if (type.Kind is "ConfigMap" or "Secret" && DataBytes(obj, type.Kind == "Secret") > MaxDataBytes)
        {
            // kube-apiserver's words: the whole ConfigMap ("[]"), a Secret's data.
            causes.Add((type.Kind == "Secret" ? "data" : "[]", $"Too long: must have at most {MaxDataBytes} bytes"));
        }
    }

    /// <summary>The most a ConfigMap's or Secret's data may hold (kube-apiserver's MaxSecretSize, 1 MiB).</summary>
    private const int MaxDataBytes = 1024 * 1024;

    /// <summary>The bytes of a ConfigMap's data and binaryData, or a Secret's data (base64 decoded), as the API server counts them.</summary>
    private static long DataBytes(JsonObject obj, bool secret)
    {
        static long Decoded(string base64) => base64.Length / 4 * 3 - (base64.EndsWith("==", StringComparison.Ordinal) ? 2 : base64.EndsWith('=') ? 1 : 0);
        var total = 0L;
        foreach (var (_, value) in obj["data"] as JsonObject ?? [])
        {
            var text = value?.GetValue<string>() ?? string.Empty;
            total += (secret ? Decoded(text) : Encoding.UTF8.GetByteCount(text));
        }

        foreach (var (_, value) in obj["binaryData"] as JsonObject ?? [])
        {
            total += Decoded(value?.GetValue<string>() ?? string.Empty);
        }

        return total;
    }

    private static void ValidateSelector(JsonObject spec, string path, List<(string Field, string Message)> causes)
    {
        if (spec["selector"] is not JsonObject selector)
        {
            causes.Add(($"{path}.selector", "Required value"));
            return;
        }

        var labels = spec["template"]?["metadata"]?["labels"] as JsonObject ?? [];
        var matches = (selector["matchLabels"] as JsonObject ?? []).All(kv => labels[kv.Key]?.GetValue<string>() == kv.Value?.GetValue<string>())
            && (selector["matchExpressions"] as JsonArray ?? []).All(e => ExpressionMatches(e as JsonObject, labels));
        if (selector.Count == 0 || (selector["matchLabels"] is null && selector["matchExpressions"] is null))
        {
            causes.Add(($"{path}.selector", "Invalid value: empty selector is invalid for deployment"));
        }
        else if (!matches)
        {
            causes.Add(($"{path}.template.metadata.labels", $"Invalid value: {labels.ToJsonString()}: `selector` does not match template `labels`"));
        }
    }

    private static bool ExpressionMatches(JsonObject? expression, JsonObject labels)
    {
        var key = expression?["key"]?.GetValue<string>() ?? string.Empty;
        var values = (expression?["values"] as JsonArray ?? []).Select(v => v?.GetValue<string>()).ToHashSet(StringComparer.Ordinal);
        var value = labels[key]?.GetValue<string>();
        return expression?["operator"]?.GetValue<string>() switch
        {
            "In" => value is not null && values.Contains(value),
            "NotIn" => value is null || !values.Contains(value),
            "Exists" => value is not null,
            "DoesNotExist" => value is null,
            _ => false,
        };
    }

    private static void ValidateStrategy(JsonObject? strategy, List<(string Field, string Message)> causes)
    {
        if (strategy?["rollingUpdate"] is not JsonObject rolling)
        {
            return;
        }

        var surge = IntOrPercent(rolling["maxSurge"], "spec.strategy.rollingUpdate.maxSurge", causes);
        var unavailable = IntOrPercent(rolling["maxUnavailable"], "spec.strategy.rollingUpdate.maxUnavailable", causes);
        if (surge == 0 && unavailable == 0)
        {
            causes.Add(("spec.strategy.rollingUpdate.maxUnavailable", "Invalid value: 0: may not be 0 when `maxSurge` is 0"));
        }
    }

    /// <summary>The value of an IntOrString that must be a count or a percentage (null when absent or invalid).</summary>
    private static int? IntOrPercent(JsonNode? node, string path, List<(string Field, string Message)> causes)
    {
        switch (node?.GetValueKind())
        {
            case null:
                return null;
            case JsonValueKind.Number when JsonNumbers.Long(node) is { } n:
                if (n < 0)
                {
                    causes.Add((path, $"Invalid value: {n}: must be greater than or equal to 0"));
                }

                return (int)n;
            case JsonValueKind.String when Percent().Match(node.GetValue<string>()) is { Success: true } m:
                var percent = int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
                if (percent > 100)
                {
                    causes.Add((path, $"Invalid value: \"{node.GetValue<string>()}\": must not be greater than 100%"));
                }

                return percent;
            default:
                causes.Add((path, $"Invalid value: {node.ToJsonString()}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"));
                return null;
        }
    }

    private static void PodTemplate(JsonObject? podSpec, string path, List<(string Field, string Message)> causes)
    {
        if (podSpec is null)
        {
            return;
        }

        foreach (var list in new[] { "containers", "initContainers" })
        {
            var names = new HashSet<string>(StringComparer.Ordinal);
            var items = podSpec[list] as JsonArray ?? [];
            for (var i = 0; i < items.Count; i++)
            {
                var name = items[i]?["name"]?.GetValue<string>();
                if (string.IsNullOrEmpty(name))
                {
                    causes.Add(($"{path}.{list}[{i}].name", "Required value"));
                }
                else if (KubeNames.CheckDnsLabel(name) is { } why)
                {
                    causes.Add(($"{path}.{list}[{i}].name", $"Invalid value: \"{name}\": {why}"));
                }
                else if (!names.Add(name))
                {
                    causes.Add(($"{path}.{list}[{i}].name", $"Duplicate value: \"{name}\""));
                }

                Resources(items[i]?["resources"] as JsonObject, $"{path}.{list}[{i}].resources", causes);
            }
        }

        if (podSpec["containers"] is not JsonArray { Count: > 0 })
        {
            causes.Add(($"{path}.containers", "Required value"));
        }

        var volumes = podSpec["volumes"] as JsonArray ?? [];
        for (var i = 0; i < volumes.Count; i++)
        {
            foreach (var source in new[] { "secret", "configMap", "projected", "downwardAPI" })
            {
                if (volumes[i]?[source]?["defaultMode"] is { } mode && (JsonNumbers.Long(mode) is not { } m || m < 0 || m > 511))
                {
                    causes.Add(($"{path}.volumes[{i}].{source}.defaultMode", $"Invalid value: {mode.ToJsonString()}: must be a number between 0 and 0777 (octal), both inclusive"));
                }
            }
        }
    }

    /// <summary>A container's requests may not exceed its limits (kube-apiserver's ValidateResourceRequirements).</summary>
    private static void Resources(JsonObject? resources, string path, List<(string Field, string Message)> causes)
    {
        foreach (var (name, request) in resources?["requests"] as JsonObject ?? [])
        {
            if (resources!["limits"]?[name] is { } limit && request is not null
                && Quantity.TryParse(request.ToString(), out var asked) && Quantity.TryParse(limit.ToString(), out var most) && asked.Nanos > most.Nanos)
            {
                causes.Add(($"{path}.requests[{name}]", $"Invalid value: \"{asked}\": must be less than or equal to {name} limit of {most}"));
            }
        }
    }

    /// <summary>Why a name is not valid for the kind; null when it is.</summary>
    public static string? NameProblem(ResourceType type, string name) => type.Kind switch
    {
        _ when type.Custom is not null => KubeNames.CheckDnsSubdomain(name),
        // RBAC names are path segments: anything but '.', '..' and names with '/' or '%' (system:discovery…).
        "Role" or "RoleBinding" or "ClusterRole" or "ClusterRoleBinding" =>
            name is "." or ".." ? $"may not be '{name}'" : name.IndexOfAny(['/', '%']) >= 0 ? "may not contain '/' or '%'" : null,
        "Namespace" or "Service" => KubeNames.CheckDnsLabel(name),
        _ => KubeNames.CheckDnsSubdomain(name),
    };

    private static void ValidateBinding(ResourceType type, JsonObject binding, JsonObject? live, List<(string Field, string Message)> causes)
    {
        var kind = binding["roleRef"]?["kind"]?.GetValue<string>();
        string[] kinds = type.Kind == "RoleBinding" ? ["Role", "ClusterRole"] : ["ClusterRole"];
        if (kind is null)
        {
            causes.Add(("roleRef.kind", "Required value"));
        }
        else if (!kinds.Contains(kind))
        {
            causes.Add(("roleRef.kind", $"Unsupported value: \"{kind}\": supported values: {string.Join(", ", kinds.Select(k => $"\"{k}\""))}"));
        }

        if (string.IsNullOrEmpty(binding["roleRef"]?["name"]?.GetValue<string>()))
        {
            causes.Add(("roleRef.name", "Required value"));
        }

        if (live is not null && !JsonNode.DeepEquals(live["roleRef"], binding["roleRef"]))
        {
            causes.Add(("roleRef", $"Invalid value: {binding["roleRef"]?.ToJsonString() ?? "null"}: cannot change roleRef"));
        }

        var subjects = binding["subjects"] as JsonArray ?? [];
        for (var i = 0; i < subjects.Count; i++)
        {
            var subject = subjects[i] as JsonObject;
            var subjectKind = subject?["kind"]?.GetValue<string>();
            if (subjectKind is not ("User" or "Group" or "ServiceAccount"))
            {
                causes.Add(($"subjects[{i}].kind", $"Unsupported value: \"{subjectKind}\": supported values: \"ServiceAccount\", \"User\", \"Group\""));
            }

            if (string.IsNullOrEmpty(subject?["name"]?.GetValue<string>()))
            {
                causes.Add(($"subjects[{i}].name", "Required value"));
            }
        }
    }

    private static void ValidateRules(ResourceType type, JsonObject role, List<(string Field, string Message)> causes)
    {
        var rules = role["rules"] as JsonArray ?? [];
        for (var i = 0; i < rules.Count; i++)
        {
            var rule = rules[i] as JsonObject;
            if (rule?["verbs"] is not JsonArray { Count: > 0 })
            {
                causes.Add(($"rules[{i}].verbs", "Required value: verbs must contain at least one value"));
            }

            var urls = rule?["nonResourceURLs"] is JsonArray { Count: > 0 };
            if (urls && type.Kind == "Role")
            {
                causes.Add(($"rules[{i}].nonResourceURLs", "Invalid value: namespaced rules cannot apply to non-resource URLs"));
            }
            else if (urls && (rule?["resources"] is JsonArray { Count: > 0 } || rule?["apiGroups"] is JsonArray { Count: > 0 }))
            {
                causes.Add(($"rules[{i}].nonResourceURLs", "Invalid value: rules cannot apply to both regular resources and non-resource URLs"));
            }
            else if (!urls && rule?["apiGroups"] is not JsonArray { Count: > 0 })
            {
                causes.Add(($"rules[{i}].apiGroups", "Required value: resource rules must supply at least one api group"));
            }
            else if (!urls && rule?["resources"] is not JsonArray { Count: > 0 })
            {
                causes.Add(($"rules[{i}].resources", "Required value: resource rules must supply at least one resource"));
            }
        }
    }

    private static void Immutable(JsonNode? before, JsonNode? after, string path, List<(string Field, string Message)> causes)
    {
        if (before is not null && !JsonNode.DeepEquals(before, after))
        {
            causes.Add((path, $"Invalid value: {after?.ToJsonString() ?? "null"}: field is immutable"));
        }
    }

    [GeneratedRegex("^([0-9]+)%$", RegexOptions.CultureInvariant)]
    private static partial Regex Percent();
}
