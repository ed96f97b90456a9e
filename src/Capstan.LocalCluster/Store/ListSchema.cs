namespace Capstan.LocalCluster.Store;

/// <summary>How a list merges in server-side apply and strategic merge patch (OpenAPI's x-kubernetes-list-type).</summary>
internal enum ListType
{
    /// <summary>Replaced whole, owned whole.</summary>
    Atomic,

    /// <summary>A set of scalars: items are owned one by one (<c>v:"value"</c>).</summary>
    Set,

    /// <summary>Items identified by key fields (<c>k:{"name":"main"}</c>), merged and owned item by item.</summary>
    Map,
}

/// <summary>
/// The one table of list semantics for every served kind, as the Kubernetes OpenAPI schema declares them
/// (<c>x-kubernetes-list-type</c>, <c>x-kubernetes-list-map-keys</c>, <c>x-kubernetes-patch-merge-key</c>). A list is
/// found by the field names leading to it (list items are passed over), so a pod template means the same wherever it
/// sits. Lists the table does not name are atomic, as in the schema.
/// </summary>
internal static class ListSchema
{
    private static readonly string[] ContainerLists = ["containers", "initContainers", "ephemeralContainers"];

    /// <summary>The list's type and, for a map list, its key fields (sorted, as managedFields writes them).</summary>
    public static (ListType Type, string[] Keys) For(string kind, IReadOnlyList<string> fields)
    {
        if (fields.Count == 0)
        {
            return (ListType.Atomic, []);
        }

        var name = fields[^1];
        var parent = fields.Count > 1 ? fields[^2] : null;
        switch (name)
        {
            case "finalizers" when parent == "metadata":
                return (ListType.Set, []);
            case "ownerReferences" when parent == "metadata":
                return (ListType.Map, ["uid"]);
            case "conditions" when parent == "status":
                return (ListType.Map, ["type"]);
            case "containers" or "initContainers" or "ephemeralContainers" or "volumes" or "imagePullSecrets" or "resourceClaims":
                return (ListType.Map, ["name"]);
            case "env" when parent is not null && ContainerLists.Contains(parent):
                return (ListType.Map, ["name"]);
            case "ports" when parent is not null && ContainerLists.Contains(parent):
                return (ListType.Map, ["containerPort", "protocol"]);
            case "ports" when kind == "Service" && parent == "spec" && fields.Count == 2:
                return (ListType.Map, ["port", "protocol"]);
            case "volumeMounts" when parent is not null && ContainerLists.Contains(parent):
                return (ListType.Map, ["mountPath"]);
            case "volumeDevices" when parent is not null && ContainerLists.Contains(parent):
                return (ListType.Map, ["devicePath"]);
            case "resizePolicy" when parent is not null && ContainerLists.Contains(parent):
                return (ListType.Map, ["resourceName"]);
            case "hostAliases":
                return (ListType.Map, ["ip"]);
            case "topologySpreadConstraints":
                return (ListType.Map, ["topologyKey", "whenUnsatisfiable"]);
            default:
                return (ListType.Atomic, []);
        }
    }
}
