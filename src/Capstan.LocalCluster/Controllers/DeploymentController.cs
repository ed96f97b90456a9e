using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Capstan.LocalCluster.Store;

namespace Capstan.LocalCluster.Controllers;

/// <summary>
/// Rolls Deployments out through ReplicaSets as the real controller does: a ReplicaSet per pod template (named by the
/// template's hash, carrying a revision), RollingUpdate within maxSurge/maxUnavailable or Recreate, the Available and
/// Progressing conditions, and ProgressDeadlineExceeded when no progress is made within progressDeadlineSeconds.
/// </summary>
internal sealed class DeploymentController(ObjectStore store, TimeProvider time, EventRecorder events)
{
    private const string Manager = "kube-controller-manager";
    private const string RevisionAnnotation = "deployment.kubernetes.io/revision";
    private static readonly ResourceType Deployments = ResourceTypes.ByKind("Deployment")!;
    private static readonly ResourceType ReplicaSets = ResourceTypes.ByKind("ReplicaSet")!;
    private static readonly ResourceType Pods = ResourceTypes.ByKind("Pod")!;
    private readonly Dictionary<string, int> _newAvailableAtLastProgress = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (long Generation, string Hash)> _hashes = new(StringComparer.Ordinal);

    /// <summary>Every Deployment is looked at this often even when no change points at it, as informers resync.</summary>
    private static readonly TimeSpan Resync = TimeSpan.FromSeconds(2);

    /// <summary>Deployments still rolling out: their progress deadline is a matter of time, not of writes.</summary>
    private readonly HashSet<(string Ns, string Name)> _active = [];
    private readonly ChangeCursor _changes = new(store);
    private DateTimeOffset _lastFull = DateTimeOffset.MinValue;

    /// <summary>How many times a Deployment was reconciled (tests check that work follows what changed).</summary>
    internal long Reconciliations { get; private set; }

    /// <summary>
    /// Reconciles the Deployments a change since the last pass points at (the Deployment itself, one of its
    /// ReplicaSets, a deleted pod of one), those still rolling out, and every Deployment once per resync period.
    /// </summary>
    public void Reconcile()
    {
        var (changes, complete) = _changes.Next();
        var now = time.GetUtcNow();
        if (!complete || now - _lastFull > Resync)
        {
            _lastFull = now;
            ReconcileAll();
            return;
        }

        var dirty = new HashSet<(string Ns, string Name)>(_active);
        foreach (var e in changes)
        {
            var ns = Json.Namespace(e.Object) ?? string.Empty;
            if (e.Resource == Deployments)
            {
                dirty.Add((ns, Json.Name(e.Object)));
            }
            else if (e.Resource == ReplicaSets)
            {
                AddOwners(dirty, e.Object, "Deployment");
            }
            else if (e.Resource == Pods && e.Type == "DELETED")
            {
                // A Recreate rollout waits for the old pods to be gone.
                foreach (var owner in Owners(e.Object, "ReplicaSet"))
                {
                    if (store.GetShared(ReplicaSets, ns, owner) is { } rs)
                    {
                        AddOwners(dirty, rs, "Deployment");
                    }
                }
            }
        }

        // Pods are grouped by owner per namespace, and only for the namespaces that need them.
        var podsByNamespace = new Dictionary<string, Lazy<Dictionary<string, List<JsonObject>>>>(StringComparer.Ordinal);
        foreach (var (ns, name) in dirty)
        {
            if (!podsByNamespace.TryGetValue(ns, out var pods))
            {
                var inNamespace = ns;
                pods = new Lazy<Dictionary<string, List<JsonObject>>>(() => ReplicaSetController.ByOwner(store.ListShared(Pods, inNamespace).Items));
                podsByNamespace[ns] = pods;
            }

            if (store.GetShared(Deployments, ns, name) is not { } deployment || Json.Deleting(deployment))
            {
                _active.Remove((ns, name));
                continue;
            }

            var uid = Json.Uid(deployment);
            Track(deployment, Reconcile(deployment, store.ListShared(ReplicaSets, ns, filter: rs => Json.OwnedBy(rs, uid)).Items, pods));
        }
    }

    private void ReconcileAll()
    {
        var setsByOwner = ReplicaSetController.ByOwner(store.ListShared(ReplicaSets, null).Items);
        var podsByOwner = new Lazy<Dictionary<string, List<JsonObject>>>(() => ReplicaSetController.ByOwner(store.ListShared(Pods, null).Items));
        var deployments = store.ListShared(Deployments, null).Items;
        _active.Clear();
        if (_hashes.Count > 2 * deployments.Count + 16)
        {
            var live = deployments.Select(Json.Uid).ToHashSet(StringComparer.Ordinal);
            foreach (var gone in _hashes.Keys.Where(uid => !live.Contains(uid)).ToList())
            {
                _hashes.Remove(gone);
            }
        }

        foreach (var deployment in deployments)
        {
            if (!Json.Deleting(deployment))
            {
                Track(deployment, Reconcile(deployment, setsByOwner.GetValueOrDefault(Json.Uid(deployment), []), podsByOwner));
            }
        }
    }

    private void Track(JsonObject deployment, bool settled)
    {
        var key = (Json.Namespace(deployment) ?? string.Empty, Json.Name(deployment));
        if (settled)
        {
            _active.Remove(key);
        }
        else
        {
            _active.Add(key);
        }
    }

    private static IEnumerable<string> Owners(JsonObject obj, string kind) =>
        (obj["metadata"]?["ownerReferences"] as JsonArray ?? []).Where(r => Json.Str(r?["kind"]) == kind).Select(r => Json.Str(r?["name"])).OfType<string>();

    private static void AddOwners(HashSet<(string Ns, string Name)> dirty, JsonObject obj, string kind)
    {
        foreach (var owner in Owners(obj, kind))
        {
            dirty.Add((Json.Namespace(obj) ?? string.Empty, owner));
        }
    }

    /// <summary>Reconciles one Deployment; true when nothing but a change can move it on (rolled out, paused or failed).</summary>
    private bool Reconcile(JsonObject deployment, List<JsonObject> sets, Lazy<Dictionary<string, List<JsonObject>>> podsByOwner)
    {
        Reconciliations++;
        var ns = Json.Namespace(deployment)!;
        var spec = Json.Obj(deployment, "spec");
        var replicas = Json.Int(spec["replicas"], 1);
        var template = Json.Obj(spec, "template");
        var hash = CachedTemplateHash(deployment, template);
        var newSet = sets.FirstOrDefault(rs => Json.Str(rs["metadata"]?["labels"]?["pod-template-hash"]) == hash);
        var oldSets = sets.Where(rs => rs != newSet).ToList();
        var maxRevision = sets.Select(Revision).DefaultIfEmpty(0).Max();
        if (spec["paused"]?.GetValueKind() == System.Text.Json.JsonValueKind.True)
        {
            Paused(deployment, newSet, newSet ?? sets.MaxBy(Revision), sets, replicas);
            return true;
        }

        if (newSet is null)
        {
            newSet = CreateSet(deployment, template, hash, maxRevision + 1);
        }
        else if (Revision(newSet) < maxRevision)
        {
            // Rolling back to an earlier template: its ReplicaSet becomes the newest revision again.
            SetRevision(ReplicaSets, newSet, maxRevision + 1);
            newSet = store.Get(ReplicaSets, ns, Json.Name(newSet)) ?? throw new InvalidOperationException($"ReplicaSet {ns}/{Json.Name(newSet)} went away while its revision was set");
        }

        // As the real controller does, the Deployment's revision always follows the ReplicaSet it rolls out to.
        if (Revision(deployment) != Revision(newSet))
        {
            SetRevision(Deployments, deployment, Revision(newSet));
        }

        var strategy = spec["strategy"] as JsonObject;
        var recreate = Json.Str(strategy?["type"]) == "Recreate";
        var newReplicas = Json.Int(newSet["spec"]?["replicas"]);
        var oldTotal = oldSets.Sum(rs => Json.Int(rs["spec"]?["replicas"]));
        // Recreate waits until the old pods are gone, terminating ones included, as the real controller does.
        var oldPods = recreate ? oldSets.Sum(rs => podsByOwner.Value.GetValueOrDefault(Json.Uid(rs), []).Count) : 0;
        if (recreate)
        {
            foreach (var rs in oldSets.Where(rs => Json.Int(rs["spec"]?["replicas"]) > 0))
            {
                Scale(deployment, rs, 0);
            }

            if (oldPods == 0 && newReplicas != replicas)
            {
                Scale(deployment, newSet, replicas);
            }
        }
        else
        {
            var surge = Json.Scaled(strategy?["rollingUpdate"]?["maxSurge"], replicas, roundUp: true, 1);
            var unavailable = Json.Scaled(strategy?["rollingUpdate"]?["maxUnavailable"], replicas, roundUp: false, 0);
            if (surge == 0 && unavailable == 0)
            {
                unavailable = 1;
            }

            // Scale up the new set within the surge.
            var total = newReplicas + oldTotal;
            var target = Math.Min(replicas, newReplicas + Math.Max(0, replicas + surge - total));
            if (newReplicas > replicas)
            {
                target = replicas;
            }

            if (target != newReplicas)
            {
                Scale(deployment, newSet, target);
                newReplicas = target;
            }

            // Scale down old sets as far as availability allows; unavailable old pods can always go.
            var available = Json.Int(newSet["status"]?["availableReplicas"]) + oldSets.Sum(rs => Json.Int(rs["status"]?["availableReplicas"]));
            var canRemove = Math.Max(0, available - (replicas - unavailable));
            foreach (var rs in oldSets.OrderBy(Revision))
            {
                var current = Json.Int(rs["spec"]?["replicas"]);
                if (current == 0)
                {
                    continue;
                }

                var unhealthy = current - Json.Int(rs["status"]?["availableReplicas"]);
                var remove = Math.Min(current, Math.Max(0, unhealthy) + canRemove);
                if (remove > 0)
                {
                    canRemove -= Math.Max(0, remove - Math.Max(0, unhealthy));
                    Scale(deployment, rs, current - remove);
                }
            }
        }

        CleanUpHistory(deployment, oldSets);
        return UpdateStatus(deployment, store.GetShared(ReplicaSets, ns, Json.Name(newSet)) ?? newSet, oldSets.Select(rs => store.GetShared(ReplicaSets, ns, Json.Name(rs))).OfType<JsonObject>().ToList(), replicas, strategy);
    }

    /// <summary>
    /// A paused Deployment rolls nothing out: a changed template gets no ReplicaSet; the current one only follows the
    /// replica count. Progressing says DeploymentPaused, as on a real cluster.
    /// </summary>
    private void Paused(JsonObject deployment, JsonObject? newSet, JsonObject? current, List<JsonObject> sets, int replicas)
    {
        if (current is not null && Json.Int(current["spec"]?["replicas"]) != replicas)
        {
            Scale(deployment, current, replicas);
        }

        var old = deployment["status"] as JsonObject;
        var status = old?.DeepClone() as JsonObject ?? [];
        status["observedGeneration"] = Json.Generation(deployment);
        status["replicas"] = sets.Sum(rs => Json.Int(rs["status"]?["replicas"]));
        status["updatedReplicas"] = newSet is null ? 0 : Json.Int(newSet["status"]?["replicas"]);
        status["readyReplicas"] = sets.Sum(rs => Json.Int(rs["status"]?["readyReplicas"]));
        status["availableReplicas"] = sets.Sum(rs => Json.Int(rs["status"]?["availableReplicas"]));
        if (Json.Str(Json.Condition(old, "Progressing")?["reason"]) != "DeploymentPaused")
        {
            Json.SetCondition(status, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", Json.Stamp(time.GetUtcNow()));
        }

        if (!JsonNode.DeepEquals(status, old))
        {
            store.Update(Deployments, Json.Namespace(deployment), Json.Name(deployment), new JsonObject { ["status"] = status }, statusOnly: true, Manager);
        }
    }

    private JsonObject CreateSet(JsonObject deployment, JsonObject template, string hash, long revision)
    {
        var ns = Json.Namespace(deployment)!;
        var labels = template["metadata"]?["labels"]?.DeepClone() as JsonObject ?? [];
        labels["pod-template-hash"] = hash;
        var podTemplate = (JsonObject)template.DeepClone();
        podTemplate["metadata"] ??= new JsonObject();
        Json.Obj(podTemplate, "metadata")["labels"] = labels.DeepClone();
        var selector = deployment["spec"]?["selector"]?.DeepClone() as JsonObject ?? [];
        var matchLabels = selector["matchLabels"] as JsonObject ?? [];
        matchLabels["pod-template-hash"] = hash;
        selector["matchLabels"] = matchLabels;
        var rs = new JsonObject
        {
            ["apiVersion"] = "apps/v1",
            ["kind"] = "ReplicaSet",
            ["metadata"] = new JsonObject
            {
                ["name"] = $"{Json.Name(deployment)}-{hash}",
                ["namespace"] = ns,
                ["labels"] = labels,
                ["annotations"] = new JsonObject { [RevisionAnnotation] = revision.ToString(CultureInfo.InvariantCulture) },
                ["ownerReferences"] = new JsonArray(Json.OwnerReference(deployment)),
            },
            ["spec"] = new JsonObject { ["replicas"] = 0, ["selector"] = selector, ["template"] = podTemplate },
        };
        return store.Create(ReplicaSets, ns, rs, Manager);
    }

    private void SetRevision(ResourceType type, JsonObject obj, long revision) =>
        store.MergePatch(type, Json.Namespace(obj), Json.Name(obj), new JsonObject { ["metadata"] = new JsonObject { ["annotations"] = new JsonObject { [RevisionAnnotation] = revision.ToString(CultureInfo.InvariantCulture) } } }, false, Manager);

    private void Scale(JsonObject deployment, JsonObject rs, int replicas)
    {
        var from = Json.Int(rs["spec"]?["replicas"]);
        store.MergePatch(ReplicaSets, Json.Namespace(rs), Json.Name(rs), new JsonObject { ["spec"] = new JsonObject { ["replicas"] = replicas } }, false, Manager);
        events.Normal(deployment, "ScalingReplicaSet", $"Scaled {(replicas > from ? "up" : "down")} replica set {Json.Name(rs)} from {from} to {replicas}", "deployment-controller");
    }

    private void CleanUpHistory(JsonObject deployment, List<JsonObject> oldSets)
    {
        var limit = Json.Int(deployment["spec"]?["revisionHistoryLimit"], 10);
        var idle = oldSets.Where(rs => Json.Int(rs["spec"]?["replicas"]) == 0 && Json.Int(rs["status"]?["replicas"]) == 0).OrderBy(Revision).ToList();
        foreach (var rs in idle.Take(Math.Max(0, idle.Count - limit)))
        {
            store.Delete(ReplicaSets, Json.Namespace(rs), Json.Name(rs));
        }
    }

    /// <summary>Writes the Deployment's status; true when the rollout is complete or has failed.</summary>
    private bool UpdateStatus(JsonObject deployment, JsonObject newSet, List<JsonObject> oldSets, int replicas, JsonObject? strategy)
    {
        var ns = Json.Namespace(deployment)!;
        var now = Json.Stamp(time.GetUtcNow());
        var all = oldSets.Append(newSet).ToList();
        var total = all.Sum(rs => Json.Int(rs["status"]?["replicas"]));
        var ready = all.Sum(rs => Json.Int(rs["status"]?["readyReplicas"]));
        var available = all.Sum(rs => Json.Int(rs["status"]?["availableReplicas"]));
        var updated = Json.Int(newSet["status"]?["replicas"]);
        var newAvailable = Json.Int(newSet["status"]?["availableReplicas"]);
        var old = deployment["status"] as JsonObject;
        var status = old?.DeepClone() as JsonObject ?? [];
        status["observedGeneration"] = Json.Generation(deployment);
        status["replicas"] = total;
        status["updatedReplicas"] = updated;
        status["readyReplicas"] = ready;
        status["availableReplicas"] = available;
        status["unavailableReplicas"] = Math.Max(0, total - available);

        var maxUnavailable = Json.Str(strategy?["type"]) == "Recreate" ? 0 : Json.Scaled(strategy?["rollingUpdate"]?["maxUnavailable"], replicas, roundUp: false, 0);
        var isAvailable = available >= replicas - maxUnavailable;
        Json.SetCondition(status, "Available", isAvailable ? "True" : "False",
            isAvailable ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable",
            isAvailable ? "Deployment has minimum availability." : "Deployment does not have minimum availability.", now,
            touchUpdate: Json.Str(Json.Condition(old, "Available")?["status"]) != (isAvailable ? "True" : "False"));

        var complete = updated == replicas && newAvailable == replicas && total == replicas;
        var setName = Json.Name(newSet);
        var progressing = Json.Condition(old, "Progressing");
        var uid = Json.Uid(deployment);
        var previousNewAvailable = _newAvailableAtLastProgress.GetValueOrDefault(uid, -1);
        var madeProgress = progressing is null || newAvailable != previousNewAvailable || Json.Str(progressing["message"])?.Contains(setName, StringComparison.Ordinal) != true;
        if (complete)
        {
            Json.SetCondition(status, "Progressing", "True", "NewReplicaSetAvailable", $"ReplicaSet \"{setName}\" has successfully progressed.", now, touchUpdate: Json.Str(progressing?["reason"]) != "NewReplicaSetAvailable");
        }
        else if (madeProgress)
        {
            Json.SetCondition(status, "Progressing", "True", "ReplicaSetUpdated", $"ReplicaSet \"{setName}\" is progressing.", now);
        }
        else if (Json.Str(progressing?["reason"]) != "ProgressDeadlineExceeded")
        {
            var since = Json.Time(progressing?["lastUpdateTime"]) ?? time.GetUtcNow();
            var deadline = Json.Int(deployment["spec"]?["progressDeadlineSeconds"], 600);
            if (time.GetUtcNow() - since > TimeSpan.FromSeconds(deadline))
            {
                Json.SetCondition(status, "Progressing", "False", "ProgressDeadlineExceeded", $"ReplicaSet \"{setName}\" has timed out progressing.", now);
            }
        }

        _newAvailableAtLastProgress[uid] = newAvailable;
        if (!JsonNode.DeepEquals(status, old))
        {
            store.Update(Deployments, ns, Json.Name(deployment), new JsonObject { ["status"] = status }, statusOnly: true, Manager);
        }

        return complete || Json.Str(Json.Condition(status, "Progressing")?["reason"]) == "ProgressDeadlineExceeded";
    }

    private static long Revision(JsonObject obj) =>
        long.TryParse(Json.Str(obj["metadata"]?["annotations"]?[RevisionAnnotation]), NumberStyles.None, CultureInfo.InvariantCulture, out var r) ? r : 0;

    /// <summary>A stable 10-character hash of a pod template, in the alphabet Kubernetes uses for pod-template-hash.</summary>
    /// <summary>The template's hash, computed once per generation (the template only changes with it).</summary>
    private string CachedTemplateHash(JsonObject deployment, JsonObject template)
    {
        var uid = Json.Uid(deployment);
        var generation = Json.Generation(deployment);
        if (_hashes.TryGetValue(uid, out var cached) && cached.Generation == generation)
        {
            return cached.Hash;
        }

        var hash = TemplateHash(template);
        _hashes[uid] = (generation, hash);
        return hash;
    }

    private static string TemplateHash(JsonObject template)
    {
        var bytes = SHA256.HashData(Encoding.UTF8.GetBytes(template.ToJsonString()));
        const string Alphabet = "bcdfghjklmnpqrstvwxz2456789";
        var sb = new StringBuilder(10);
        for (var i = 0; i < 10; i++)
        {
            sb.Append(Alphabet[bytes[i] % Alphabet.Length]);
        }

        return sb.ToString();
    }
}
