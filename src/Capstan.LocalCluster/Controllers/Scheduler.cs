using System.Numerics;
using System.Text.Json.Nodes;
using Capstan.Core.Kubernetes;
using Capstan.LocalCluster.Store;

namespace Capstan.LocalCluster.Controllers;

/// <summary>
/// The simulated kube-scheduler: binds each pod without a node to a node that has room for its requests (CPU, memory,
/// pod count against allocatable, counting the pods already bound there) and whose NoSchedule/NoExecute taints it
/// tolerates, choosing the least allocated one. A pod no node can take stays Pending with PodScheduled=False
/// (Unschedulable) and a FailedScheduling event in kube-scheduler's words ("0/3 nodes are available: 3 Insufficient
/// cpu. …"), and is tried again when anything changes.
/// </summary>
internal sealed class Scheduler(ObjectStore store, TimeProvider time, EventRecorder events)
{
    private const string Component = "default-scheduler";

    private static readonly ResourceType Pods = ResourceTypes.ByKind("Pod")!;

    private static readonly ResourceType Nodes = ResourceTypes.ByKind("Node")!;

    private readonly ChangeCursor _changes = new(store);

    /// <summary>Pods seen without a node since the last pass (all of them after a full look).</summary>
    private readonly HashSet<(string Ns, string Name)> _pending = [];

    /// <summary>The pods bound to a node and still running, by uid, with their node and requests (kept from the changes).</summary>
    private readonly Dictionary<string, (string Node, Usage Requests)> _bound = new(StringComparer.Ordinal);

    public void Reconcile()
    {
        if (!_changes.Moved)
        {
            // Nothing changed since the last pass: no pod can have become schedulable.
            return;
        }

        // The pods a change points at (all of them at first or when the history is gone); a node or a deletion makes room
        // or takes it, so every pod still pending is tried again.
        var (changes, complete) = _changes.Next();
        if (!complete)
        {
            _pending.Clear();
            _bound.Clear();
            foreach (var pod in store.ListShared(Pods, null).Items)
            {
                Track(pod, deleted: false);
            }
        }

        foreach (var e in changes.Where(e => e.Resource == Pods))
        {
            Track(e.Object, e.Type == "DELETED");
        }

        var pending = _pending.Select(k => store.GetShared(Pods, k.Ns, k.Name)).OfType<JsonObject>().Where(Unbound)
            .OrderBy(p => Json.Str(p["metadata"]?["creationTimestamp"]), StringComparer.Ordinal).ThenBy(Json.Name, StringComparer.Ordinal).ToList();
        _pending.Clear();
        if (pending.Count == 0)
        {
            return;
        }

        var nodes = store.ListShared(Nodes, null).Items.OrderBy(Json.Name, StringComparer.Ordinal).ToList();
        var used = nodes.ToDictionary(Json.Name, _ => new Usage(), StringComparer.Ordinal);
        foreach (var (node, requests) in _bound.Values)
        {
            if (used.TryGetValue(node, out var usage))
            {
                usage.Add(requests);
            }
        }

        var now = Json.Stamp(time.GetUtcNow());
        foreach (var pod in pending)
        {
            var wants = Requests(pod);
            var reasons = new SortedDictionary<string, int>(StringComparer.Ordinal);
            string? best = null;
            var bestFree = double.MinValue;
            foreach (var node in nodes)
            {
                var name = Json.Name(node);
                if (Refusal(node, pod, wants, used[name]) is { } why)
                {
                    foreach (var reason in why)
                    {
                        reasons[reason] = reasons.GetValueOrDefault(reason) + 1;
                    }

                    continue;
                }

                // Least allocated: the node with the most room left, in CPU and memory alike.
                var free = Fraction(Allocatable(node, "cpu") - used[name].Cpu - wants.Cpu, Allocatable(node, "cpu"))
                    + Fraction(Allocatable(node, "memory") - used[name].Memory - wants.Memory, Allocatable(node, "memory"));
                if (free > bestFree)
                {
                    (best, bestFree) = (name, free);
                }
            }

            var ns = Json.Namespace(pod)!;
            var podName = Json.Name(pod);
            if (best is not null)
            {
                used[best].Add(wants);
                _bound[Json.Uid(pod)] = (best, wants);
                store.MergePatch(Pods, ns, podName, new JsonObject { ["spec"] = new JsonObject { ["nodeName"] = best } }, statusOnly: false, Component);
                var bound = store.GetShared(Pods, ns, podName)!;
                var status = (bound["status"] as JsonObject)?.DeepClone().AsObject() ?? [];
                status["phase"] ??= "Pending";
                Json.SetCondition(status, "PodScheduled", "True", string.Empty, string.Empty, now);
                store.Update(Pods, ns, podName, new JsonObject { ["status"] = status }, statusOnly: true, Component);
                events.Normal(pod, "Scheduled", $"Successfully assigned {ns}/{podName} to {best}", Component);
                continue;
            }

            var message = nodes.Count == 0
                ? "no nodes available to schedule pods"
                : $"0/{nodes.Count} nodes are available: {string.Join(", ", reasons.Select(kv => $"{kv.Value} {kv.Key}"))}. preemption: 0/{nodes.Count} nodes are available: {nodes.Count} Preemption is not helpful for scheduling.";
            // Tried again on the next change; written only when the reason is new.
            _pending.Add((ns, podName));
            if (Json.Condition(pod["status"] as JsonObject, "PodScheduled") is { } condition && Json.Str(condition["message"]) == message)
            {
                continue;
            }

            var pendingStatus = (pod["status"] as JsonObject)?.DeepClone().AsObject() ?? [];
            pendingStatus["phase"] = "Pending";
            Json.SetCondition(pendingStatus, "PodScheduled", "False", "Unschedulable", message, now);
            store.Update(Pods, ns, podName, new JsonObject { ["status"] = pendingStatus }, statusOnly: true, Component);
            events.Warning(pod, "FailedScheduling", message, Component);
        }

    }

    private static bool Unbound(JsonObject pod) =>
        pod["spec"]?["nodeName"] is null && !Json.Deleting(pod) && Json.Str(pod["status"]?["phase"]) is not ("Succeeded" or "Failed");

    /// <summary>Follows a pod: pending without a node; counted on its node while it runs there; forgotten when gone or finished.</summary>
    private void Track(JsonObject pod, bool deleted)
    {
        var uid = Json.Uid(pod);
        if (deleted || Json.Str(pod["status"]?["phase"]) is "Succeeded" or "Failed")
        {
            _bound.Remove(uid);
            return;
        }

        if (Json.Str(pod["spec"]?["nodeName"]) is { } node)
        {
            if (!_bound.ContainsKey(uid))
            {
                _bound[uid] = (node, Requests(pod));
            }

            return;
        }

        if (Unbound(pod))
        {
            _pending.Add((Json.Namespace(pod)!, Json.Name(pod)));
        }
    }

    /// <summary>
    /// Why a node cannot take a pod, or null when it can: kube-scheduler's reasons, from the first of its filters that
    /// refuses (unschedulable, taints, node affinity and selector, then resources, which may give several).
    /// </summary>
    private static List<string>? Refusal(JsonObject node, JsonObject pod, Usage wants, Usage used)
    {
        if (node["spec"]?["unschedulable"]?.GetValue<bool>() == true)
        {
            return ["node(s) were unschedulable"];
        }

        var tolerations = pod["spec"]?["tolerations"] as JsonArray ?? [];
        foreach (var taint in (node["spec"]?["taints"] as JsonArray ?? []).OfType<JsonObject>())
        {
            if (Json.Str(taint["effect"]) is "NoSchedule" or "NoExecute" && !tolerations.OfType<JsonObject>().Any(t => Taints.Tolerates(t, taint)))
            {
                return [$"node(s) had untolerated taint {{{Json.Str(taint["key"])}: {Json.Str(taint["value"])}}}"];
            }
        }

        var selector = pod["spec"]?["nodeSelector"] as JsonObject ?? [];
        if (!selector.All(kv => Json.Str(node["metadata"]?["labels"]?[kv.Key]) == Json.Str(kv.Value))
            || !Affinity.Admits(node, pod["spec"]?["affinity"]?["nodeAffinity"]?["requiredDuringSchedulingIgnoredDuringExecution"] as JsonObject))
        {
            return ["node(s) didn't match Pod's node affinity/selector"];
        }

        var why = new List<string>();
        if (used.Pods + 1 > Allocatable(node, "pods"))
        {
            why.Add("Too many pods");
        }

        if (wants.Cpu > 0 && used.Cpu + wants.Cpu > Allocatable(node, "cpu"))
        {
            why.Add("Insufficient cpu");
        }

        if (wants.Memory > 0 && used.Memory + wants.Memory > Allocatable(node, "memory"))
        {
            why.Add("Insufficient memory");
        }

        return why.Count == 0 ? null : why;
    }

    /// <summary>A pod's requests: its containers' summed, or the largest init container's when larger (limits when no request is set).</summary>
    private static Usage Requests(JsonObject pod)
    {
        static (BigInteger Cpu, BigInteger Memory) Of(JsonNode? container)
        {
            BigInteger Get(string resource) =>
                (Json.Str(container?["resources"]?["requests"]?[resource]) ?? Json.Str(container?["resources"]?["limits"]?[resource])) is { } text && Quantity.TryParse(text, out var q)
                    ? q.Nanos
                    : BigInteger.Zero;
            return (Get("cpu"), Get("memory"));
        }

        var sum = (Cpu: BigInteger.Zero, Memory: BigInteger.Zero);
        foreach (var c in pod["spec"]?["containers"] as JsonArray ?? [])
        {
            var (cpu, memory) = Of(c);
            sum = (sum.Cpu + cpu, sum.Memory + memory);
        }

        foreach (var c in pod["spec"]?["initContainers"] as JsonArray ?? [])
        {
            var (cpu, memory) = Of(c);
            sum = (BigInteger.Max(sum.Cpu, cpu), BigInteger.Max(sum.Memory, memory));
        }

        return new Usage { Cpu = sum.Cpu, Memory = sum.Memory, Pods = 1 };
    }

    private static BigInteger Allocatable(JsonObject node, string resource) =>
        (Json.Str(node["status"]?["allocatable"]?[resource]) ?? Json.Str(node["status"]?["capacity"]?[resource])) is { } text && Quantity.TryParse(text, out var q)
            ? q.Nanos / (resource == "pods" ? 1_000_000_000 : 1)
            : BigInteger.Zero;

    private static double Fraction(BigInteger free, BigInteger total) => total.IsZero ? 0 : (double)free / (double)total;

    private sealed class Usage
    {
        public BigInteger Cpu { get; set; }

        public BigInteger Memory { get; set; }

        public int Pods { get; set; }

        public void Add(Usage other)
        {
            Cpu += other.Cpu;
            Memory += other.Memory;
            Pods += other.Pods;
        }
    }
}
