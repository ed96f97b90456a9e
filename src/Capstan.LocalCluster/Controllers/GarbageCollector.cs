using System.Text.Json.Nodes;
using Capstan.LocalCluster.Store;

namespace Capstan.LocalCluster.Controllers;

/// <summary>
/// Deletes dependents whose owners are gone (background propagation), finishes foreground deletions once their
/// dependents are gone, and empties terminating namespaces before removing them.
/// </summary>
internal sealed class GarbageCollector(ObjectStore store)
{
    /// <summary>The resourceVersion of the last pass: nothing this controller acts on changes without a write.</summary>
    private long _lastSeen = -1;

    public void Reconcile()
    {
        var seen = store.ResourceVersion;
        if (seen == _lastSeen)
        {
            return;
        }

        _lastSeen = seen;
        var all = store.All();
        var uids = all.Select(o => Json.Uid(o.Object)).ToHashSet(StringComparer.Ordinal);

        foreach (var (type, obj) in all)
        {
            var owners = obj["metadata"]?["ownerReferences"] as JsonArray;
            if (owners is { Count: > 0 } && !Json.Deleting(obj) && owners.All(r => !uids.Contains(Json.Str(r?["uid"]) ?? string.Empty)))
            {
                Delete(type, obj);
            }
        }

        foreach (var (type, obj) in store.All().Where(o => Json.Deleting(o.Object)))
        {
            if (type.Kind == "Namespace")
            {
                // Everything in it is deleted as a user's delete would be (pods gracefully, finalizers honoured); the
                // namespace goes when it is empty.
                var ns = Json.Name(obj);
                var contents = store.All().Where(o => o.Type.Namespaced && Json.Namespace(o.Object) == ns).ToList();
                foreach (var (childType, child) in contents.Where(c => !Json.Deleting(c.Object)))
                {
                    Delete(childType, child);
                }

                if (contents.Count == 0)
                {
                    store.Remove(type, null, ns);
                }

                continue;
            }

            var finalizers = (obj["metadata"]?["finalizers"] as JsonArray ?? []).Select(f => Json.Str(f)).ToList();
            if (type.Kind == "Pod" || !finalizers.Contains("foregroundDeletion"))
            {
                // The kubelet finishes pods; anyone else's finalizer is for its owner to remove.
                continue;
            }

            var uid = Json.Uid(obj);
            var dependents = store.All().Where(o => Json.OwnedBy(o.Object, uid)).ToList();
            if (dependents.Count == 0)
            {
                var remaining = new JsonArray([.. finalizers.Where(f => f != "foregroundDeletion").Select(f => (JsonNode?)f)]);
                store.MergePatch(type, Json.Namespace(obj), Json.Name(obj), new JsonObject { ["metadata"] = new JsonObject { ["finalizers"] = remaining.Count == 0 ? null : remaining } }, false, "kube-controller-manager");
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
