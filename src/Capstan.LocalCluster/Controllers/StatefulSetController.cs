using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.LocalCluster.Store;

namespace Capstan.LocalCluster.Controllers;

/// <summary>
/// kube-controller-manager's StatefulSet controller: pods NAME-0 … NAME-(replicas-1) with stable names and host names,
/// made in order, each once the ones before it run and are ready (OrderedReady), or all at once (Parallel), and
/// removed from the highest ordinal down. A changed template replaces pods from the highest ordinal down to the
/// <c>partition</c>, one at a time while all are ready (RollingUpdate), or waits for pods to be deleted (OnDelete).
/// Volume claim templates name each pod's claims; no volume is provisioned here.
/// </summary>
internal sealed class StatefulSetController(ObjectStore store, EventRecorder events)
{
    private const string Manager = "statefulset-controller";
    private const string HashLabel = "controller-revision-hash";
    private static readonly ResourceType StatefulSets = ResourceTypes.ByKind("StatefulSet")!;
    private static readonly ResourceType Pods = ResourceTypes.ByKind("Pod")!;

    private readonly ChangeCursor _changes = new(store);

    public void Reconcile()
    {
        if (!_changes.Moved)
        {
            return;
        }

        var (changes, complete) = _changes.Next();
        if (complete && !changes.Any(e => e.Resource == StatefulSets || (e.Resource == Pods && (e.Object["metadata"]?["ownerReferences"] as JsonArray ?? []).Any(r => Json.Str(r?["kind"]) == "StatefulSet"))))
        {
            return;
        }

        foreach (var sts in store.ListShared(StatefulSets, null).Items.Where(s => !Json.Deleting(s)))
        {
            try
            {
                Sync(sts);
            }
            catch (ApiError raced) when (raced.Code is 404 or 409)
            {
                // Changed or gone meanwhile: the next pass sees it.
            }
        }
    }

    private void Sync(JsonObject sts)
    {
        var ns = Json.Namespace(sts)!;
        var name = Json.Name(sts);
        var uid = Json.Uid(sts);
        var spec = sts["spec"] as JsonObject ?? [];
        var replicas = Json.Int(spec["replicas"], 1);
        var template = spec["template"] as JsonObject ?? [];
        var revision = $"{name}-{Json.ShortHash(template.ToJsonString())}";
        var parallel = Json.Str(spec["podManagementPolicy"]) == "Parallel";
        var owned = store.ListShared(Pods, ns, filter: p => Json.OwnedBy(p, uid)).Items;
        var byOrdinal = new SortedDictionary<int, JsonObject>();
        foreach (var pod in owned)
        {
            if (Ordinal(name, Json.Name(pod)) is { } ordinal)
            {
                byOrdinal[ordinal] = pod;
            }
        }

        bool Healthy(JsonObject pod) => !Json.Deleting(pod) && Json.PodReady(pod);

        // Up: the missing ordinals below replicas, in order (each waits for the ones before it unless Parallel).
        for (var i = 0; i < replicas; i++)
        {
            if (byOrdinal.TryGetValue(i, out var pod))
            {
                if (!parallel && !Healthy(pod))
                {
                    break;
                }

                continue;
            }

            Create(sts, template, revision, i);
            if (!parallel)
            {
                break;
            }
        }

        // Down: the highest ordinal first, one at a time unless Parallel.
        foreach (var (ordinal, pod) in byOrdinal.Where(p => p.Key >= replicas).Reverse())
        {
            if (!Json.Deleting(pod))
            {
                store.Delete(Pods, ns, Json.Name(pod));
            }

            if (!parallel)
            {
                break;
            }
        }

        // A new template: from the highest ordinal down to the partition, one pod at a time while every pod is ready.
        var strategy = spec["updateStrategy"] as JsonObject;
        var partition = Json.Int(strategy?["rollingUpdate"]?["partition"], 0);
        var inRange = byOrdinal.Where(p => p.Key < replicas).ToList();
        if (Json.Str(strategy?["type"]) != "OnDelete" && inRange.Count == replicas && inRange.All(p => Healthy(p.Value)))
        {
            foreach (var (ordinal, pod) in inRange.Where(p => p.Key >= partition).Reverse())
            {
                if (Revision(pod) != revision)
                {
                    store.Delete(Pods, ns, Json.Name(pod));
                    break;
                }
            }
        }

        var live = byOrdinal.Values.Where(p => !Json.Deleting(p)).ToList();
        var updated = live.Count(p => Revision(p) == revision);
        var current = sts["status"]?["currentRevision"] is { } known && updated < live.Count ? Json.Str(known) ?? revision : revision;
        var status = new JsonObject
        {
            ["observedGeneration"] = Json.Generation(sts),
            ["replicas"] = live.Count,
            ["readyReplicas"] = live.Count(Json.PodReady),
            ["currentReplicas"] = live.Count(p => Revision(p) == current),
            ["updatedReplicas"] = updated,
            ["currentRevision"] = current,
            ["updateRevision"] = revision,
            ["collisionCount"] = 0,
            ["availableReplicas"] = live.Count(Json.PodReady),
        };
        if (!JsonNode.DeepEquals(status, sts["status"]))
        {
            store.Update(StatefulSets, ns, name, new JsonObject { ["status"] = status }, statusOnly: true, Manager);
        }
    }

    private void Create(JsonObject sts, JsonObject template, string revision, int ordinal)
    {
        var name = Json.Name(sts);
        var podName = $"{name}-{ordinal.ToString(CultureInfo.InvariantCulture)}";
        var labels = template["metadata"]?["labels"]?.DeepClone() as JsonObject ?? [];
        labels[HashLabel] = revision;
        labels["statefulset.kubernetes.io/pod-name"] = podName;
        labels["apps.kubernetes.io/pod-index"] = ordinal.ToString(CultureInfo.InvariantCulture);
        var spec = template["spec"]?.DeepClone() as JsonObject ?? [];
        spec["hostname"] = podName;
        if (Json.Str(sts["spec"]?["serviceName"]) is { Length: > 0 } service)
        {
            spec["subdomain"] = service;
        }

        // Each claim template becomes a volume of the pod, bound to the claim NAME-SET-ORDINAL.
        foreach (var claim in (sts["spec"]?["volumeClaimTemplates"] as JsonArray ?? []).OfType<JsonObject>())
        {
            var claimName = Json.Str(claim["metadata"]?["name"]) ?? "data";
            var volumes = spec["volumes"] as JsonArray ?? (JsonArray)(spec["volumes"] = new JsonArray());
            if (!volumes.Any(v => Json.Str(v?["name"]) == claimName))
            {
                volumes.Add(new JsonObject { ["name"] = claimName, ["persistentVolumeClaim"] = new JsonObject { ["claimName"] = $"{claimName}-{podName}" } });
            }
        }

        var pod = new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Pod",
            ["metadata"] = new JsonObject
            {
                ["name"] = podName,
                ["labels"] = labels,
                ["annotations"] = template["metadata"]?["annotations"]?.DeepClone(),
                ["ownerReferences"] = new JsonArray(Json.OwnerReference(sts)),
            },
            ["spec"] = spec,
        };
        try
        {
            store.Create(Pods, Json.Namespace(sts), pod, Manager);
            events.Normal(sts, "SuccessfulCreate", $"create Pod {podName} in StatefulSet {name} successful", "statefulset-controller");
        }
        catch (ApiError refused) when (refused.Code == 403)
        {
            events.Warning(sts, "FailedCreate", $"create Pod {podName} in StatefulSet {name} failed error: {refused.Message}", "statefulset-controller");
        }
    }

    private static int? Ordinal(string set, string pod) =>
        pod.StartsWith(set + "-", StringComparison.Ordinal) && int.TryParse(pod.AsSpan(set.Length + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var ordinal) ? ordinal : null;

    private static string? Revision(JsonObject pod) => Json.Str(pod["metadata"]?["labels"]?[HashLabel]);
}
