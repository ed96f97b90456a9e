using System.Text.Json.Nodes;
using Capstan.LocalCluster.Store;

namespace Capstan.LocalCluster.Controllers;

/// <summary>
/// kube-controller-manager's DaemonSet controller: one pod of the template on every node it fits (its nodeSelector, and
/// taints it tolerates; a cordoned node still gets one, as upstream), bound to that node. A changed template rolls out
/// node by node (RollingUpdate, at most <c>maxUnavailable</c> pods down, 1 by default) or waits for pods to be deleted
/// (OnDelete). Status counts what <c>kubectl rollout status</c> reads.
/// </summary>
internal sealed class DaemonSetController(ObjectStore store, EventRecorder events)
{
    private const string Manager = "daemon-set-controller";
    private const string HashLabel = "controller-revision-hash";
    private static readonly ResourceType DaemonSets = ResourceTypes.ByKind("DaemonSet")!;
    private static readonly ResourceType Pods = ResourceTypes.ByKind("Pod")!;
    private static readonly ResourceType Nodes = ResourceTypes.ByKind("Node")!;

    private readonly ChangeCursor _changes = new(store);

    public void Reconcile()
    {
        if (!_changes.Moved)
        {
            return;
        }

        var (changes, complete) = _changes.Next();
        if (complete && !changes.Any(e => e.Resource == DaemonSets || e.Resource == Nodes || (e.Resource == Pods && OwnedByDaemonSet(e.Object))))
        {
            return;
        }

        var daemonSets = store.ListShared(DaemonSets, null).Items.Where(d => !Json.Deleting(d)).ToList();
        if (daemonSets.Count == 0)
        {
            return;
        }

        var nodes = store.ListShared(Nodes, null).Items;
        foreach (var ds in daemonSets)
        {
            try
            {
                Sync(ds, nodes);
            }
            catch (ApiError raced) when (raced.Code is 404 or 409)
            {
                // Changed or gone meanwhile: the next pass sees it.
            }
        }
    }

    private static bool OwnedByDaemonSet(JsonObject pod) =>
        (pod["metadata"]?["ownerReferences"] as JsonArray ?? []).Any(r => Json.Str(r?["kind"]) == "DaemonSet");

    private void Sync(JsonObject ds, List<JsonObject> nodes)
    {
        var ns = Json.Namespace(ds)!;
        var uid = Json.Uid(ds);
        var template = ds["spec"]?["template"] as JsonObject ?? [];
        var hash = Json.ShortHash(template.ToJsonString());
        var eligible = nodes.Where(n => Fits(template, n)).Select(Json.Name).ToHashSet(StringComparer.Ordinal);
        var owned = store.ListShared(Pods, ns, filter: p => Json.OwnedBy(p, uid)).Items;
        var live = owned.Where(p => !Json.Deleting(p)).ToList();
        string? NodeOf(JsonObject pod) => Json.Str(pod["spec"]?["nodeName"]);

        // Pods on nodes the set no longer fits go; nodes without a pod get one.
        foreach (var stray in live.Where(p => NodeOf(p) is not { } node || !eligible.Contains(node)))
        {
            store.Delete(Pods, ns, Json.Name(stray));
        }

        var onNode = live.Where(p => NodeOf(p) is { } node && eligible.Contains(node)).GroupBy(p => NodeOf(p)!).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        foreach (var node in eligible.Where(n => !onNode.ContainsKey(n) && !owned.Any(p => NodeOf(p) == n)).Order(StringComparer.Ordinal))
        {
            Create(ds, template, hash, node);
        }

        // A changed template: replace old pods while no more than maxUnavailable are down.
        var strategy = ds["spec"]?["updateStrategy"] as JsonObject;
        var current = onNode.Values.Select(p => p[0]).ToList();
        if (Json.Str(strategy?["type"]) != "OnDelete")
        {
            var maxUnavailable = Json.Scaled(strategy?["rollingUpdate"]?["maxUnavailable"], eligible.Count, roundUp: true, fallback: 1);
            var unavailable = eligible.Count - current.Count(Json.PodReady);
            foreach (var old in current.Where(p => Json.Str(p["metadata"]?["labels"]?[HashLabel]) != hash).OrderBy(Json.PodReady).ThenBy(p => NodeOf(p), StringComparer.Ordinal))
            {
                if (Json.PodReady(old) && unavailable >= Math.Max(1, maxUnavailable))
                {
                    break;
                }

                store.Delete(Pods, ns, Json.Name(old));
                if (Json.PodReady(old))
                {
                    unavailable++;
                }
            }
        }

        var status = new JsonObject
        {
            ["currentNumberScheduled"] = current.Count,
            ["numberMisscheduled"] = 0,
            ["desiredNumberScheduled"] = eligible.Count,
            ["numberReady"] = current.Count(Json.PodReady),
            ["observedGeneration"] = Json.Generation(ds),
            ["updatedNumberScheduled"] = current.Count(p => Json.Str(p["metadata"]?["labels"]?[HashLabel]) == hash),
            ["numberAvailable"] = current.Count(Json.PodReady),
        };
        if (eligible.Count - current.Count(Json.PodReady) is > 0 and var down)
        {
            status["numberUnavailable"] = down;
        }

        if (!JsonNode.DeepEquals(status, ds["status"]))
        {
            store.Update(DaemonSets, ns, Json.Name(ds), new JsonObject { ["status"] = status }, statusOnly: true, Manager);
        }
    }

    private void Create(JsonObject ds, JsonObject template, string hash, string node)
    {
        var labels = template["metadata"]?["labels"]?.DeepClone() as JsonObject ?? [];
        labels[HashLabel] = hash;
        labels["pod-template-generation"] = Json.Generation(ds).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var spec = template["spec"]?.DeepClone() as JsonObject ?? [];
        spec["nodeName"] = node;
        var pod = new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Pod",
            ["metadata"] = new JsonObject
            {
                ["name"] = $"{Json.Name(ds)}-{Json.Suffix()}",
                ["labels"] = labels,
                ["annotations"] = template["metadata"]?["annotations"]?.DeepClone(),
                ["ownerReferences"] = new JsonArray(Json.OwnerReference(ds)),
            },
            ["spec"] = spec,
        };
        try
        {
            var created = store.Create(Pods, Json.Namespace(ds), pod, Manager);
            events.Normal(ds, "SuccessfulCreate", $"Created pod: {Json.Name(created)}", "daemonset-controller");
        }
        catch (ApiError refused) when (refused.Code == 403)
        {
            events.Warning(ds, "FailedCreate", $"Error creating: {refused.Message}", "daemonset-controller");
        }
    }

    /// <summary>Whether the set's pods belong on a node: its nodeSelector matches, and it tolerates the node's NoSchedule and NoExecute taints.</summary>
    private static bool Fits(JsonObject template, JsonObject node)
    {
        var labels = node["metadata"]?["labels"] as JsonObject ?? [];
        if ((template["spec"]?["nodeSelector"] as JsonObject ?? []).Any(s => Json.Str(labels[s.Key]) != Json.Str(s.Value)))
        {
            return false;
        }

        var tolerations = (template["spec"]?["tolerations"] as JsonArray ?? []).OfType<JsonObject>().ToList();
        return (node["spec"]?["taints"] as JsonArray ?? []).OfType<JsonObject>()
            .Where(t => Json.Str(t["effect"]) is "NoSchedule" or "NoExecute")
            .All(t => tolerations.Any(o =>
                (Json.Str(o["key"]) is null or "" ? Json.Str(o["operator"]) == "Exists" : Json.Str(o["key"]) == Json.Str(t["key"])
                    && (Json.Str(o["operator"]) == "Exists" || Json.Str(o["value"]) == Json.Str(t["value"])))
                && (Json.Str(o["effect"]) is null or "" || Json.Str(o["effect"]) == Json.Str(t["effect"]))));
    }
}
