using System.Text.Json.Nodes;
using Capstan.LocalCluster.Store;

namespace Capstan.LocalCluster.Controllers;

/// <summary>
/// Deletes dependents whose owners are gone (background propagation), finishes foreground deletions once their
/// dependents are gone, and empties terminating namespaces before removing them.
/// </summary>
internal sealed class GarbageCollector(ObjectStore store)
{
    private readonly ChangeCursor _changes = new(store);

    /// <summary>True while objects are being deleted, so the next pass looks again.</summary>
    private bool _deleting = true;

    public void Reconcile()
    {
        // Only a deletion, an object created with owners, or a deletion in progress gives this controller work; a
        // deploy's stream of other writes does not make it look at every object.
        if (!_changes.Moved)
        {
            return;
        }

        var (changes, complete) = _changes.Next();
        if (complete && !_deleting && !changes.Any(e => e.Type == "DELETED" || Json.Deleting(e.Object)))
        {
            CheckOwners(changes.Where(e => e.Type == "ADDED").Select(e => (e.Resource, e.Object)));
            return;
        }

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

        var deleting = store.All().Where(o => Json.Deleting(o.Object)).ToList();
        _deleting = deleting.Count > 0;
        foreach (var (type, obj) in deleting)
        {
            if (type.Is("Namespace"))
            {
                // Everything in it is deleted as a user's delete would be (pods gracefully, finalizers honoured); the
                // namespace goes when it is empty.
                var ns = Json.Name(obj);
                var contents = store.All(withDeferredEvents: true).Where(o => o.Type.Namespaced && Json.Namespace(o.Object) == ns).ToList();
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
            if (type.Is("Pod") || !finalizers.Contains("foregroundDeletion"))
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

    /// <summary>New objects whose owners do not exist (checked by kind, namespace, name and uid) are deleted.</summary>
    private void CheckOwners(IEnumerable<(ResourceType Type, JsonObject Object)> added)
    {
        foreach (var (type, obj) in added)
        {
            var owners = obj["metadata"]?["ownerReferences"] as JsonArray;
            if (owners is { Count: > 0 } && !Json.Deleting(obj) && owners.All(r => !OwnerExists(r as JsonObject, Json.Namespace(obj))))
            {
                Delete(type, obj);
            }
        }
    }

    private bool OwnerExists(JsonObject? reference, string? ns)
    {
        // The owner's kind is found by group and kind (any served version); one this cluster cannot resolve is not
        // taken as gone, as the real collector waits rather than deletes.
        var apiVersion = Json.Str(reference?["apiVersion"]) ?? string.Empty;
        var group = apiVersion.Contains('/', StringComparison.Ordinal) ? apiVersion[..apiVersion.IndexOf('/', StringComparison.Ordinal)] : string.Empty;
        var kind = Json.Str(reference?["kind"]);
        var type = store.Types.All.FirstOrDefault(t => t.Kind == kind && t.Group == group);
        if (type is null)
        {
            return true;
        }

        var owner = store.GetShared(type, type.Namespaced ? ns : null, Json.Str(reference?["name"]) ?? string.Empty);
        return owner is not null && Json.Uid(owner) == Json.Str(reference?["uid"]);
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
