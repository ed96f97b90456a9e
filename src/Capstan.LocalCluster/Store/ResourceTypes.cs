namespace Capstan.LocalCluster.Store;

/// <summary>A resource the local cluster serves.</summary>
public sealed record ResourceType(
    string Group,
    string Version,
    string Kind,
    string Plural,
    bool Namespaced,
    IReadOnlyList<string> ShortNames,
    bool HasStatus)
{
    /// <summary><c>v1</c> or <c>apps/v1</c>.</summary>
    public string ApiVersion => Group.Length == 0 ? Version : $"{Group}/{Version}";

    /// <summary>The singular name (lower-case kind).</summary>
    public string Singular => Custom?.Singular ?? Kind.ToLowerInvariant();

    /// <summary>
    /// The kind the built-in schema knows this resource by (its list semantics in apply), or empty for a custom resource,
    /// whose lists are atomic here even when its kind's name is a built-in one.
    /// </summary>
    public string SchemaKind => Custom is null ? Kind : string.Empty;

    /// <summary>True for Kubernetes' own kind of this name (a custom resource may share a built-in kind's name).</summary>
    public bool Is(string kind) => Custom is null && Kind == kind;

    /// <summary>True for the kinds with a <c>/scale</c> subresource (autoscaling/v1 Scale).</summary>
    public bool HasScale => Custom is { } custom ? custom.Scale is not null : Kind is "Deployment" or "ReplicaSet";

    /// <summary>What a CustomResourceDefinition says of a custom resource (null for a built-in kind).</summary>
    public CustomResource? Custom { get; init; }

    /// <summary>
    /// One resource is one group, version and plural: a custom resource read again from its changed definition is
    /// still the resource watches and controllers hold.
    /// </summary>
    public bool Equals(ResourceType? other) =>
        other is not null && Group == other.Group && Version == other.Version && Plural == other.Plural;

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Group, Version, Plural);
}

/// <summary>The resources of the local cluster: those Capstan renders and the ones controllers create.</summary>
public static class ResourceTypes
{
    /// <summary>Every served resource.</summary>
    public static IReadOnlyList<ResourceType> All { get; } =
    [
        new(string.Empty, "v1", "Namespace", "namespaces", false, ["ns"], true),
        new(string.Empty, "v1", "Node", "nodes", false, ["no"], true),
        new(string.Empty, "v1", "ConfigMap", "configmaps", true, ["cm"], false),
        new(string.Empty, "v1", "Secret", "secrets", true, [], false),
        new(string.Empty, "v1", "Service", "services", true, ["svc"], true),
        new(string.Empty, "v1", "Pod", "pods", true, ["po"], true),
        new(string.Empty, "v1", "Event", "events", true, ["ev"], false),
        new(string.Empty, "v1", "LimitRange", "limitranges", true, ["limits"], false),
        new(string.Empty, "v1", "ResourceQuota", "resourcequotas", true, ["quota"], true),
        new(string.Empty, "v1", "ServiceAccount", "serviceaccounts", true, ["sa"], false),
        new(string.Empty, "v1", "Endpoints", "endpoints", true, ["ep"], false),
        new(string.Empty, "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, ["pvc"], true),
        new(string.Empty, "v1", "PersistentVolume", "persistentvolumes", false, ["pv"], true),
        new(string.Empty, "v1", "ReplicationController", "replicationcontrollers", true, ["rc"], true),
        new("apps", "v1", "Deployment", "deployments", true, ["deploy"], true),
        new("apps", "v1", "ReplicaSet", "replicasets", true, ["rs"], true),
        new("apps", "v1", "DaemonSet", "daemonsets", true, ["ds"], true),
        new("apps", "v1", "StatefulSet", "statefulsets", true, ["sts"], true),
        new("batch", "v1", "Job", "jobs", true, [], true),
        new("batch", "v1", "CronJob", "cronjobs", true, ["cj"], true),
        new("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true, ["netpol"], false),
        new("networking.k8s.io", "v1", "Ingress", "ingresses", true, ["ing"], true),
        new("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true, ["hpa"], true),
        new("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", true, [], false),
        new("coordination.k8s.io", "v1", "Lease", "leases", true, [], false),
        new("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", false, ["crd", "crds"], true),
        new("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false, [], false),
        new("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", false, [], false),
        new("rbac.authorization.k8s.io", "v1", "Role", "roles", true, [], false),
        new("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true, [], false),
    ];

    /// <summary>The API groups in discovery order (the core group excluded).</summary>
    public static IReadOnlyList<string> Groups { get; } = [.. All.Select(r => r.Group).Where(g => g.Length > 0).Distinct()];

    /// <summary>A resource by group and plural, or null.</summary>
    public static ResourceType? Find(string group, string version, string plural) =>
        All.FirstOrDefault(r => r.Group == group && r.Version == version && r.Plural == plural);

    /// <summary>A resource by kind, or null.</summary>
    public static ResourceType? ByKind(string kind) => All.FirstOrDefault(r => r.Kind == kind);
}
