using System.Numerics;
using System.Text.Json.Nodes;
using Capstan.LocalCluster.Store;

namespace Capstan.LocalCluster.Controllers;

/// <summary>
/// kube-controller-manager's resource quota controller: each ResourceQuota's <c>status.hard</c> (its spec's) and
/// <c>status.used</c> (what the namespace's unfinished pods take of each resource it limits), written when they
/// change, in the namespaces where a pod or a quota changed.
/// </summary>
internal sealed class ResourceQuotaController(ObjectStore store)
{
    private static readonly ResourceType Quotas = ResourceTypes.ByKind("ResourceQuota")!;
    private static readonly ResourceType Pods = ResourceTypes.ByKind("Pod")!;

    private readonly ChangeCursor _changes = new(store);

    public void Reconcile()
    {
        if (!_changes.Moved)
        {
            return;
        }

        var (changes, complete) = _changes.Next();
        var namespaces = complete
            ? changes.Where(e => e.Resource == Pods || (e.Resource == Quotas && e.Type != "DELETED")).Select(e => Json.Namespace(e.Object)!)
            : store.ListShared(Quotas, null).Items.Select(q => Json.Namespace(q)!);
        foreach (var ns in namespaces.Distinct(StringComparer.Ordinal).ToList())
        {
            var quotas = store.ListShared(Quotas, ns).Items;
            if (quotas.Count == 0)
            {
                continue;
            }

            var used = new Dictionary<string, BigInteger>(StringComparer.Ordinal);
            foreach (var pod in store.ListShared(Pods, ns).Items.Where(ObjectStore.Charged))
            {
                foreach (var (resource, amount) in ObjectStore.PodUsage(pod))
                {
                    used[resource] = used.GetValueOrDefault(resource) + amount;
                }
            }

            foreach (var quota in quotas.Where(q => !Json.Deleting(q)))
            {
                var hard = quota["spec"]?["hard"] as JsonObject ?? [];
                var status = new JsonObject
                {
                    ["hard"] = hard.DeepClone(),
                    ["used"] = new JsonObject(hard.Select(h => KeyValuePair.Create(h.Key, (JsonNode?)ObjectStore.Shown(h.Key, used.GetValueOrDefault(h.Key))))),
                };
                if (!JsonNode.DeepEquals(status, quota["status"]))
                {
                    try
                    {
                        store.Update(Quotas, ns, Json.Name(quota), new JsonObject { ["status"] = status }, statusOnly: true, "resourcequota-controller");
                    }
                    catch (ApiError raced) when (raced.Code is 404 or 409)
                    {
                        // Changed or gone meanwhile: the next pass sees it.
                    }
                }
            }
        }
    }
}
