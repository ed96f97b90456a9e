using System.Text.Json.Nodes;
using Capstan.LocalCluster.Store;

namespace Capstan.LocalCluster.Controllers;

/// <summary>Keeps each ReplicaSet's pod count at its replicas and reports ready and available pods.</summary>
internal sealed class ReplicaSetController(ObjectStore store, EventRecorder events)
{
    private const string Manager = "kube-controller-manager";
    private static readonly ResourceType ReplicaSets = ResourceTypes.ByKind("ReplicaSet")!;
    private static readonly ResourceType Pods = ResourceTypes.ByKind("Pod")!;

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
        var podsByOwner = ByOwner(store.ListShared(Pods, null).Items);
        foreach (var rs in store.ListShared(ReplicaSets, null).Items)
        {
            if (Json.Deleting(rs))
            {
                continue;
            }

            var ns = Json.Namespace(rs)!;
            var uid = Json.Uid(rs);
            var pods = podsByOwner.GetValueOrDefault(uid, []).Where(p => !Json.Deleting(p)).ToList();
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
