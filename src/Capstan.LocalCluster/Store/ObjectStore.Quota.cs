using System.Numerics;
using System.Text.Json.Nodes;
using Capstan.Core.Kubernetes;

namespace Capstan.LocalCluster.Store;

/// <content>
/// The LimitRanger and ResourceQuota admission plugins, for Pods being created: a LimitRange's container defaults
/// filled in and its min/max enforced, then each ResourceQuota's hard limits checked against what the namespace's
/// pods already use. Both refuse with kube-apiserver's 403 and wording. The quota controller keeps
/// <c>status.used</c> (<see cref="Controllers.ResourceQuotaController"/>).
/// </content>
public sealed partial class ObjectStore
{
    private static readonly ResourceType LimitRanges = ResourceTypes.ByKind("LimitRange")!;
    private static readonly ResourceType Quotas = ResourceTypes.ByKind("ResourceQuota")!;
    private static readonly ResourceType PodType = ResourceTypes.ByKind("Pod")!;

    /// <summary>One, in a quantity's units of 10⁻⁹.</summary>
    private static readonly BigInteger One = BigInteger.Pow(10, 9);

    /// <summary>The stored objects of a kind in a namespace (under the lock).</summary>
    private IEnumerable<JsonObject> InNamespace(ResourceType type, string ns) =>
        _byType.TryGetValue(TypeKey(type), out var objects) && objects.TryGetValue(ns, out var inNamespace) ? inNamespace.Values : [];

    /// <summary>The compute resources a pod is charged for under a quota, by the quota's names for them.</summary>
    internal static Dictionary<string, BigInteger> PodUsage(JsonObject pod)
    {
        var usage = new Dictionary<string, BigInteger>(StringComparer.Ordinal) { ["pods"] = One, ["count/pods"] = One };
        foreach (var (kind, names) in new[] { ("requests", new[] { "requests.cpu", "cpu" }), ("limits", ["limits.cpu"]) })
        {
            foreach (var resource in new[] { "cpu", "memory" })
            {
                // A pod needs the sum of its containers, or its largest init container when that is more.
                var sum = Containers(pod, "containers").Aggregate(BigInteger.Zero, (total, c) => total + Amount(c, kind, resource));
                var init = Containers(pod, "initContainers").Select(c => Amount(c, kind, resource)).DefaultIfEmpty(BigInteger.Zero).Max();
                var need = BigInteger.Max(sum, init);
                foreach (var name in resource == "cpu" ? names : names.Select(n => n.Replace("cpu", "memory", StringComparison.Ordinal)))
                {
                    usage[name] = need;
                }
            }
        }

        return usage;
    }

    /// <summary>True for a pod a quota counts: one not yet finished.</summary>
    internal static bool Charged(JsonObject pod) => pod["status"]?["phase"]?.ToString() is not ("Succeeded" or "Failed");

    private static IEnumerable<JsonObject> Containers(JsonObject pod, string list) => (pod["spec"]?[list] as JsonArray ?? []).OfType<JsonObject>();

    private static BigInteger Amount(JsonObject container, string kind, string resource) =>
        container["resources"]?[kind]?[resource]?.ToString() is { } text && Quantity.TryParse(text, out var q) ? q.Nanos : BigInteger.Zero;

    private static string Format(string resource, BigInteger nanos) =>
        Quantity.FromNanos(nanos, resource.EndsWith("memory", StringComparison.Ordinal) ? QuantityFormat.BinarySI : QuantityFormat.DecimalSI).ToString();

    /// <summary>LimitRange defaults and bounds, then quotas, for a pod being created in a namespace (under the lock).</summary>
    private void AdmitPodResources(string ns, JsonObject pod)
    {
        var name = pod["metadata"]?["name"]?.ToString() ?? string.Empty;
        var problems = new List<string>();
        var defaulted = new List<string>();
        foreach (var range in InNamespace(LimitRanges, ns))
        {
            foreach (var item in (range["spec"]?["limits"] as JsonArray ?? []).OfType<JsonObject>().Where(i => i["type"]?.ToString() == "Container"))
            {
                foreach (var container in Containers(pod, "initContainers").Concat(Containers(pod, "containers")))
                {
                    var resources = container["resources"] as JsonObject ?? (JsonObject)(container["resources"] = new JsonObject());
                    var set = new List<string>();
                    foreach (var (field, defaults) in new[] { ("limits", "default"), ("requests", "defaultRequest") })
                    {
                        foreach (var (resource, value) in item[defaults] as JsonObject ?? [])
                        {
                            var target = resources[field] as JsonObject ?? (JsonObject)(resources[field] = new JsonObject());
                            if (target[resource] is null && value is not null)
                            {
                                target[resource] = value.DeepClone();
                                set.Add($"{resource} {(field == "limits" ? "limit" : "request")}");
                            }
                        }
                    }

                    if (set.Count > 0)
                    {
                        defaulted.Add($"{string.Join(", ", set)} for {(Containers(pod, "initContainers").Contains(container) ? "init container" : "container")} {container["name"]}");
                    }

                    foreach (var (resource, most) in item["max"] as JsonObject ?? [])
                    {
                        var limit = resources["limits"]?[resource]?.ToString();
                        if (limit is null)
                        {
                            problems.Add($"maximum {resource} usage per Container is {most}.  No limit is specified");
                        }
                        else if (Amount(container, "limits", resource) > Nanos(most))
                        {
                            problems.Add($"maximum {resource} usage per Container is {most}, but limit is {limit}");
                        }
                    }

                    foreach (var (resource, least) in item["min"] as JsonObject ?? [])
                    {
                        var request = resources["requests"]?[resource]?.ToString();
                        if (request is null)
                        {
                            problems.Add($"minimum {resource} usage per Container is {least}.  No request is specified");
                        }
                        else if (Amount(container, "requests", resource) < Nanos(least))
                        {
                            problems.Add($"minimum {resource} usage per Container is {least}, but request is {request}");
                        }
                    }
                }
            }
        }

        if (problems.Count > 0)
        {
            throw new ApiError(403, "Forbidden", $"pods \"{name}\" is forbidden: {(problems.Count == 1 ? problems[0] : $"[{string.Join(", ", problems)}]")}");
        }

        if (defaulted.Count > 0)
        {
            var meta = (JsonObject)pod["metadata"]!;
            var annotations = meta["annotations"] as JsonObject ?? (JsonObject)(meta["annotations"] = new JsonObject());
            annotations["kubernetes.io/limit-ranger"] = "LimitRanger plugin set: " + string.Join("; ", defaulted);
        }

        CheckQuotas(ns, name, pod);
    }

    private static BigInteger Nanos(JsonNode? value) => value is not null && Quantity.TryParse(value.ToString(), out var q) ? q.Nanos : BigInteger.Zero;

    private void CheckQuotas(string ns, string name, JsonObject pod)
    {
        var quotas = InNamespace(Quotas, ns).ToList();
        if (quotas.Count == 0)
        {
            return;
        }

        var asked = PodUsage(pod);
        var used = new Dictionary<string, BigInteger>(StringComparer.Ordinal);
        foreach (var other in InNamespace(PodType, ns).Where(Charged))
        {
            foreach (var (resource, amount) in PodUsage(other))
            {
                used[resource] = used.GetValueOrDefault(resource) + amount;
            }
        }

        foreach (var quota in quotas)
        {
            var hard = quota["spec"]?["hard"] as JsonObject ?? [];

            // A quota on a compute resource needs every container to say how much it wants of it.
            var missing = hard.Select(h => h.Key).Where(r => r is "requests.cpu" or "requests.memory" or "cpu" or "memory" or "limits.cpu" or "limits.memory")
                .Where(r => Containers(pod, "containers").Any(c => c["resources"]?[r.StartsWith("limits.", StringComparison.Ordinal) ? "limits" : "requests"]?[r.Split('.')[^1]] is null))
                .Order(StringComparer.Ordinal)
                .ToList();
            if (missing.Count > 0)
            {
                throw new ApiError(403, "Forbidden", $"pods \"{name}\" is forbidden: failed quota: {quota.Kube.Name}: must specify {string.Join(",", missing)}");
            }

            var exceeded = hard.Where(h => asked.TryGetValue(h.Key, out var want) && want > 0 && used.GetValueOrDefault(h.Key) + want > Nanos(h.Value))
                .Select(h => h.Key)
                .Order(StringComparer.Ordinal)
                .ToList();
            if (exceeded.Count > 0)
            {
                string List(Func<string, string> value) => string.Join(",", exceeded.Select(r => $"{r}={value(r)}"));
                throw new ApiError(403, "Forbidden",
                    $"pods \"{name}\" is forbidden: exceeded quota: {quota.Kube.Name}, requested: {List(r => Shown(r, asked[r]))}, used: {List(r => Shown(r, used.GetValueOrDefault(r)))}, limited: {List(r => hard[r]!.ToString())}");
            }
        }
    }

    /// <summary>An amount as a quota shows it: a count of pods as a number, compute resources as quantities.</summary>
    internal static string Shown(string resource, BigInteger nanos) =>
        resource.Contains("pods", StringComparison.Ordinal) ? (nanos / One).ToString(System.Globalization.CultureInfo.InvariantCulture) : Format(resource, nanos);
}
