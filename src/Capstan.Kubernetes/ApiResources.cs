namespace Capstan.Kubernetes;

/// <summary>Where a kind lives in the REST API.</summary>
public sealed record ApiResource(string Group, string Version, string Kind, string Plural, bool Namespaced)
{
    /// <summary>The URL prefix: <c>/api/v1</c> or <c>/apis/apps/v1</c>.</summary>
    public string Prefix => Group.Length == 0 ? "/api/" + Version : $"/apis/{Group}/{Version}";

    /// <summary>The collection path in a namespace (or cluster-wide).</summary>
    public string CollectionPath(string? ns) =>
        Namespaced && ns is not null ? $"{Prefix}/namespaces/{Uri.EscapeDataString(ns)}/{Plural}" : $"{Prefix}/{Plural}";

    /// <summary>The path of one object.</summary>
    public string ItemPath(string? ns, string name) => $"{CollectionPath(Namespaced ? ns : null)}/{Uri.EscapeDataString(name)}";
}

/// <summary>The kinds Capstan uses, known without asking the server; others are found through discovery.</summary>
internal static class ApiResources
{
    public static IReadOnlyList<ApiResource> Known { get; } =
    [
        new(string.Empty, "v1", "Namespace", "namespaces", false),
        new(string.Empty, "v1", "ConfigMap", "configmaps", true),
        new(string.Empty, "v1", "Secret", "secrets", true),
        new(string.Empty, "v1", "Service", "services", true),
        new(string.Empty, "v1", "Pod", "pods", true),
        new(string.Empty, "v1", "Event", "events", true),
        new(string.Empty, "v1", "LimitRange", "limitranges", true),
        new(string.Empty, "v1", "ServiceAccount", "serviceaccounts", true),
        new("apps", "v1", "Deployment", "deployments", true),
        new("apps", "v1", "ReplicaSet", "replicasets", true),
        new("batch", "v1", "Job", "jobs", true),
        new("batch", "v1", "CronJob", "cronjobs", true),
        new("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true),
        new("networking.k8s.io", "v1", "Ingress", "ingresses", true),
    ];

    public static (string Group, string Version) Split(string apiVersion)
    {
        var slash = apiVersion.IndexOf('/', StringComparison.Ordinal);
        return slash < 0 ? (string.Empty, apiVersion) : (apiVersion[..slash], apiVersion[(slash + 1)..]);
    }
}
