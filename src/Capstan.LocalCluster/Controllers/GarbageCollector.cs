using System.Text.Json.Nodes;
using Capstan.LocalCluster.Store;

namespace Capstan.LocalCluster.Controllers;

/// <summary>
/// Deletes dependents whose owners are gone (background propagation), finishes foreground deletions once their
/// dependents are gone, and empties terminating namespaces before removing them.
/// </summary>
internal sealed class GarbageCollector(ObjectStore store)
{
    public void Reconcile()
    {
        var all = store.All();
        var uids = all.Select(o => Json.Uid(o.Object)).ToHashSet(StringComparer.Ordinal);

        foreach (var (type, obj) in all)
        {
            var owners = obj["metadata"]?["ownerReferences"] as JsonArray;
            if (owners is { Count: > 0 } && owners.All(r => !uids.Contains(Json.Str(r?["uid"]) ?? string.Empty)))
            {
                Delete(type, obj);
            }
        }

        foreach (var (type, obj) in store.All().Where(o => Json.Deleting(o.Object)))
        {
            if (type.Kind == "Namespace")
            {
                var ns = Json.Name(obj);
                var contents = store.All().Where(o => o.Type.Namespaced && Json.Namespace(o.Object) == ns).ToList();
                foreach (var (childType, child) in contents)
                {
                    store.Remove(childType, ns, Json.Name(child));
                }

                store.Remove(type, null, ns);
                continue;
            }

            if (type.Kind == "Pod")
            {
                continue;
            }

            var uid = Json.Uid(obj);
            var dependents = store.All().Where(o => Json.OwnedBy(o.Object, uid)).ToList();
            if (dependents.Count == 0)
            {
                store.Remove(type, Json.Namespace(obj), Json.Name(obj));
            }
            else
            {
                foreach (var (depType, dep) in dependents.Where(d => !Json.Deleting(d.Object)))
                {
                    store.Delete(depType, Json.Namespace(dep), Json.Name(dep), "Foreground");
                }
            }
        }
    }

    private void Delete(ResourceType type, JsonObject obj)
    {
        try
        {
            store.Delete(type, Json.Namespace(obj), Json.Name(obj), "Background");
        }
        catch (ApiError)
        {
            // Already gone.
        }
    }
}
