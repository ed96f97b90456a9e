using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Store;

/// <content>Deletion: finalizers, foreground and orphan propagation, graceful pod termination.</content>
public sealed partial class ObjectStore
{
    /// <summary>
    /// True when a write removed the last finalizer of an object being deleted: it goes now (a pod waits for the
    /// kubelet to finish stopping it). New finalizers may not be added to an object being deleted.
    /// </summary>
    private static bool FinalizedNow(ResourceType type, JsonObject live, JsonObject next) =>
        !type.Is("Pod") && !type.Is("Namespace") && next["metadata"]?["deletionTimestamp"] is not null
        && next["metadata"]?["finalizers"] is not JsonArray { Count: > 0 } && live["metadata"]?["finalizers"] is JsonArray { Count: > 0 };

    /// <summary>
    /// Deletes an object as the real server does. An object with finalizers is only marked (deletionTimestamp) and stays,
    /// Terminating, until its finalizers are removed; with dependents and <c>Foreground</c> the garbage collector's
    /// foregroundDeletion finalizer holds it until they are gone; <c>Orphan</c> releases the dependents first. A pod is
    /// deleted gracefully: marked with its grace period (<paramref name="gracePeriodSeconds"/>, else the pod's
    /// terminationGracePeriodSeconds) for the kubelet to stop it; a grace period of 0 removes it at once. Returns the
    /// deleted (or marked) object.
    /// </summary>
    public JsonObject Delete(ResourceType type, string? ns, string name, string propagation = "Background", long? gracePeriodSeconds = null, bool dryRun = false)
    {
        lock (_lock)
        {
            EnsureEvents(type);
            var key = Key(type, ns, name);
            var live = _objects.GetValueOrDefault(key) ?? throw ApiError.NotFound(type, name);
            if (dryRun)
            {
                // What would be deleted; nothing is (nor are its dependents orphaned).
                return (JsonObject)live.DeepClone();
            }

            var uid = live["metadata"]!["uid"]!.GetValue<string>();
            if (propagation == "Orphan")
            {
                foreach (var (depKey, dependent) in DependentsOf(uid).ToList())
                {
                    var copy = (JsonObject)dependent.DeepClone();
                    var refs = (JsonArray)copy["metadata"]!["ownerReferences"]!;
                    foreach (var r in refs.Where(r => r!["uid"]?.GetValue<string>() == uid).ToList())
                    {
                        refs.Remove(r);
                    }

                    // A dependent of a resource no longer served (its definition gone) is left as it is.
                    if (Types.ByKey(depKey.Type) is { } depType)
                    {
                        Commit(depType, depKey.Ns.Length == 0 ? null : depKey.Ns, depKey.Name, copy, "MODIFIED");
                    }
                }
            }

            var grace = type.Is("Pod") ? gracePeriodSeconds ?? JsonNumber.Long(live["spec"]?["terminationGracePeriodSeconds"]) ?? 30 : 0;
            var foreground = propagation == "Foreground" && DependentsOf(uid).Any();
            // As kube-apiserver: a definition being deleted keeps its cleanup finalizer until its resources are gone.
            var cleanup = type.Is("CustomResourceDefinition") && live["metadata"]?["deletionTimestamp"] is null;
            var hasFinalizers = live["metadata"]?["finalizers"] is JsonArray { Count: > 0 } || cleanup;
            if (type.Is("Namespace") || foreground || hasFinalizers || grace > 0)
            {
                if (live["metadata"]?["deletionTimestamp"] is null)
                {
                    var copy = (JsonObject)live.DeepClone();
                    var meta = copy["metadata"]!.AsObject();
                    meta["deletionTimestamp"] = Stamp(_time.GetUtcNow().AddSeconds(grace));
                    meta["deletionGracePeriodSeconds"] = grace;
                    if (type.Is("Namespace"))
                    {
                        copy["status"] = new JsonObject { ["phase"] = "Terminating" };
                    }
                    else if (cleanup)
                    {
                        var finalizers = meta["finalizers"] as JsonArray ?? [];
                        finalizers.Add(Definitions.CleanupFinalizer);
                        meta["finalizers"] = finalizers;
                    }
                    else if (foreground)
                    {
                        var finalizers = meta["finalizers"] as JsonArray ?? [];
                        finalizers.Add("foregroundDeletion");
                        meta["finalizers"] = finalizers;
                    }

                    Commit(type, ns, name, copy, "MODIFIED");
                }
            }
            else
            {
                _objects.Remove(key);
                Unindex(key);
                Record("DELETED", type, live);
            }
        }

        Wake(type);
        return Get(type, ns, name) ?? new JsonObject { ["kind"] = "Status", ["apiVersion"] = "v1", ["status"] = "Success" };
    }

    /// <summary>
    /// Removes an object at once (the garbage collector or the kubelet finishing a deletion), unless finalizers still
    /// hold it; returns whether it is gone.
    /// </summary>
    internal bool Remove(ResourceType type, string? ns, string name)
    {
        lock (_lock)
        {
            EnsureEvents(type);
            if (_objects.TryGetValue(Key(type, ns, name), out var live))
            {
                if (live["metadata"]?["finalizers"] is JsonArray { Count: > 0 })
                {
                    return false;
                }

                _objects.Remove(Key(type, ns, name));
                Unindex(Key(type, ns, name));
                Record("DELETED", type, live);
            }
        }

        Wake(type);
        return true;
    }

    private IEnumerable<((string Type, string Ns, string Name) Key, JsonObject Obj)> DependentsOf(string uid) =>
        _objects.Where(kv => (kv.Value["metadata"]?["ownerReferences"] as JsonArray ?? []).Any(r => r!["uid"]?.GetValue<string>() == uid))
            .Select(kv => (kv.Key, kv.Value));
}
