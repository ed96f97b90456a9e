using Capstan.LocalCluster.Schema;

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
/// List semantics for every served kind, read from the API schema (<see cref="ApiSchema"/>:
/// <c>x-kubernetes-list-type</c> and <c>x-kubernetes-list-map-keys</c>, as the OpenAPI documents publish them). A list is
/// found by the field names leading to it (list items are passed over), so a pod template means the same wherever it
/// sits. Lists the schema does not mark are atomic, as on a real server.
/// </summary>
internal static class ListSchema
{
    /// <summary>The list's type and, for a map list, its key fields (sorted, as managedFields writes them).</summary>
    public static (ListType Type, string[] Keys) For(string kind, IReadOnlyList<string> fields) =>
        ApiSchema.Default.Field(kind, fields) switch
        {
            { ListType: "map", MapKeys: var keys } => (ListType.Map, [.. keys.Order(StringComparer.Ordinal)]),
            { ListType: "set" } => (ListType.Set, []),
            _ => (ListType.Atomic, []),
        };
}
