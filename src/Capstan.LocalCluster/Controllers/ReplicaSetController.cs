using System.Text.Json.Nodes;
using Capstan.LocalCluster.Store;

namespace Capstan.LocalCluster.Controllers;

/// <summary>Keeps each ReplicaSet's pod count at its replicas and reports ready and available pods.</summary>
internal sealed class ReplicaSetController(ObjectStore store, EventRecorder events, TimeProvider time)
{
    private const string Manager = "kube-controller-manager";
    private static readonly ResourceType ReplicaSets = ResourceTypes.ByKind("ReplicaSet")!;
    private static readonly ResourceType Pods = ResourceTypes.ByKind("Pod")!;

    /// <summary>Where the last pass left the change history: nothing this controller acts on changes without a write.</summary>
    private readonly ChangeCursor _changes = new(store);

    private DateTimeOffset _lastFull = DateTimeOffset.MinValue;

    /// <summary>How many times a ReplicaSet was reconciled (tests check that work follows what changed).</summary>
    internal long Reconciliations { get; private set; }

    /// <summary>
    /// Reconciles the ReplicaSets a change since the last pass points at (the set itself or one of its pods), and every
    /// set once per resync period, as informers resync.
    /// </summary>
    public void Reconcile()
    {
        if (!_changes.Moved)
        {
            return;
        }

        var (changes, complete) = _changes.Next();
        var now = time.GetUtcNow();
        if (!complete || now - _lastFull > TimeSpan.FromSeconds(2))
        {
            _lastFull = now;
            var podsByOwner = ByOwner(store.ListShared(Pods, null).Items);
            foreach (var rs in store.ListShared(ReplicaSets, null).Items)
            {
                Reconcile(rs, podsByOwner.GetValueOrDefault(Json.Uid(rs), []));
            }

            return;
        }

        var dirty = new HashSet<(string Ns, string Name)>();
        foreach (var e in changes)
        {
            var ns = Json.Namespace(e.Object) ?? string.Empty;
            if (e.Resource == ReplicaSets)
            {
                dirty.Add((ns, Json.Name(e.Object)));
            }
            else if (e.Resource == Pods)
            {
                foreach (var owner in (e.Object["metadata"]?["ownerReferences"] as JsonArray ?? []).Where(r => Json.Str(r?["kind"]) == "ReplicaSet"))
                {
                    dirty.Add((ns, Json.Str(owner?["name"]) ?? string.Empty));
                }
            }
        }

        foreach (var (ns, name) in dirty)
        {
            if (store.GetShared(ReplicaSets, ns, name) is { } rs)
            {
                var uid = Json.Uid(rs);
                Reconcile(rs, store.ListShared(Pods, ns, filter: p => Json.OwnedBy(p, uid)).Items);
            }
        }
    }

    private void Reconcile(JsonObject rs, List<JsonObject> owned)
    {
        Reconciliations++;
        if (Json.Deleting(rs))
        {
            return;
        }

        var ns = Json.Namespace(rs)!;
        var uid = Json.Uid(rs);
        var pods = owned.Where(p => !Json.Deleting(p)).ToList();
        var desired = Json.Int(rs["spec"]?["replicas"], 1);
        if (pods.Count < desired)
        {
            for (var i = pods.Count; i < desired; i++)
            {
                var template = rs["spec"]?["template"] as JsonObject ?? [];
                var pod = new JsonObject
                {
                    ["apiVersion"] = "v1",
                    ["kind"] = "Pod",
                    ["metadata"] = new JsonObject
                    {
                        ["name"] = $"{Json.Name(rs)}-{Json.Suffix()}",
                        ["namespace"] = ns,
                        ["labels"] = template["metadata"]?["labels"]?.DeepClone(),
                        ["annotations"] = template["metadata"]?["annotations"]?.DeepClone(),
                        ["ownerReferences"] = new JsonArray(Json.OwnerReference(rs)),
                    },
                    ["spec"] = template["spec"]?.DeepClone(),
                };
                try
                {
                    var created = store.Create(Pods, ns, pod, Manager);
                    events.Normal(rs, "SuccessfulCreate", $"Created pod: {Json.Name(created)}", "replicaset-controller");
                }
                catch (ApiError refused) when (refused.Code == 403 && refused.Reason == "Forbidden" && refused.Message.Contains("is forbidden:", StringComparison.Ordinal))
                {
                    // Refused by a quota or a LimitRange: said on the ReplicaSet as the real controller says it; the next
                    // pass tries again (a quota may have room by then).
                    events.Warning(rs, "FailedCreate", $"Error creating: {refused.Message}", "replicaset-controller");
                    break;
                }
                catch (ApiError)
                {
                    // The namespace is going away, or a name collided: the next pass tries again.
                }
            }
        }
        else if (pods.Count > desired)
        {
            // Not-ready pods go first, then the newest.
            foreach (var pod in pods.OrderBy(Ready).ThenByDescending(p => Json.Str(p["metadata"]?["creationTimestamp"]), StringComparer.Ordinal).Take(pods.Count - desired))
            {
                store.Delete(Pods, ns, Json.Name(pod));
                events.Normal(rs, "SuccessfulDelete", $"Deleted pod: {Json.Name(pod)}", "replicaset-controller");
            }
        }

        var current = pods.Count == desired ? pods : store.ListShared(Pods, ns, filter: p => Json.OwnedBy(p, uid) && !Json.Deleting(p)).Items;
        var ready = current.Count(p => Ready(p) == 1);
        var status = new JsonObject
        {
            ["replicas"] = current.Count,
            ["fullyLabeledReplicas"] = current.Count,
            ["readyReplicas"] = ready,
            ["availableReplicas"] = ready,
            ["observedGeneration"] = Json.Generation(rs),
        };
        if (!JsonNode.DeepEquals(status, rs["status"]))
        {
            store.Update(ReplicaSets, ns, Json.Name(rs), new JsonObject { ["status"] = status }, statusOnly: true, Manager);
        }
    }

    /// <summary>Objects grouped by the uids of their owners.</summary>
    public static Dictionary<string, List<JsonObject>> ByOwner(IEnumerable<JsonObject> objects)
    {
        var result = new Dictionary<string, List<JsonObject>>(StringComparer.Ordinal);
        foreach (var obj in objects)
        {
            foreach (var owner in obj["metadata"]?["ownerReferences"] as JsonArray ?? [])
            {
                if (Json.Str(owner?["uid"]) is { } uid)
                {
                    if (!result.TryGetValue(uid, out var list))
                    {
                        list = [];
                        result[uid] = list;
                    }

                    list.Add(obj);
                }
            }
        }

        return result;
    }

    /// <summary>1 when the pod is ready, else 0.</summary>
    public static int Ready(JsonObject pod) =>
        Json.Str(Json.Condition(pod["status"] as JsonObject, "Ready")?["status"]) == "True" ? 1 : 0;
}
