using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.LocalCluster.Store;

namespace Capstan.LocalCluster.Controllers;

/// <summary>
/// The simulated node agent. It does not run containers; it gives each pod the status a real kubelet would:
/// ErrImagePull/ImagePullBackOff for an image the catalog lacks, CreateContainerConfigError for a missing ConfigMap or
/// Secret, CrashLoopBackOff for a container whose environment still holds an unresolved <c>$(VAR)</c> after expansion
/// (service variables are those of the Services that existed when the pod was first seen, as the issue specifies; a
/// real kubelet recomputes them when a container restarts), then Running and Ready after the configured delays. Job
/// pods exit after their run time.
/// </summary>
internal sealed partial class Kubelet(ObjectStore store, FaultInjector faults, ImageCatalog images, SimulationTiming timing, TimeProvider time, EventRecorder events)
{
    private const string Manager = "kubelet";

    private const string LinksAnnotation = "local.capstan.dev/service-links";

    private static readonly ResourceType Pods = ResourceTypes.ByKind("Pod")!;

    private static readonly ResourceType Services = ResourceTypes.ByKind("Service")!;

    private static readonly ResourceType ConfigMaps = ResourceTypes.ByKind("ConfigMap")!;

    private static readonly ResourceType Secrets = ResourceTypes.ByKind("Secret")!;

    private static readonly ResourceType Nodes = ResourceTypes.ByKind("Node")!;

    /// <summary>The images each node holds (pulled in full), with their sizes: its <c>status.images</c>.</summary>
    private readonly Dictionary<string, SortedDictionary<string, long>> _nodeImages = new(StringComparer.Ordinal);

    private readonly ConcurrentDictionary<string, DateTimeOffset> _firstSeen = new(StringComparer.Ordinal);

    /// <summary>
    /// Pods whose state cannot change by itself (running and ready for good, or finished), with the resourceVersion and
    /// fault version they were judged at: until the pod or the faults change, a pass skips them, so an idle cluster
    /// costs next to nothing.
    /// </summary>
    private readonly Dictionary<string, (string ResourceVersion, long Faults)> _settled = new(StringComparer.Ordinal);

    /// <summary>Every pod is looked at this often even when no change points at it, as informers resync.</summary>
    private static readonly TimeSpan Resync = TimeSpan.FromSeconds(2);

    /// <summary>Pods not yet settled (starting, failing, terminating): their state moves with time, not only with writes.</summary>
    private readonly HashSet<(string Ns, string Name)> _unsettled = [];
    private readonly ChangeCursor _changes = new(store);
    private long _lastFaults = -1;
    private DateTimeOffset _lastFull = DateTimeOffset.MinValue;

    /// <summary>Image distribution to the nodes; null when images are simply there (pods start without pulling).</summary>
    internal ImagePulls? Pulls { get; init; }

    /// <summary>Each pod's pull: when it was asked for and, per image, the bytes its node lacked then; then when its images were all there.</summary>
    private readonly Dictionary<string, (DateTimeOffset Since, IReadOnlyList<(string Image, long Missing, long Size)> Pulls)> _pullStarted = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DateTimeOffset> _pulled = new(StringComparer.Ordinal);

    /// <summary>How many pods the kubelet looked at, since start (tests check that work follows what changed).</summary>
    internal long PodsExamined { get; private set; }

    public void Reconcile()
    {
        var now = time.GetUtcNow();
        Pulls?.Advance(now);
        var faultsVersion = faults.PodFaultsVersion;
        var (changes, complete) = _changes.Next();
        List<JsonObject> pods;
        if (!complete || faultsVersion != _lastFaults || now - _lastFull > Resync)
        {
            // Everything, now and then (and when the faults or the history ask for it).
            _lastFull = now;
            _lastFaults = faultsVersion;
            _unsettled.Clear();
            pods = store.ListShared(Pods, null).Items;
            if (_settled.Count > pods.Count * 2 || _pulled.Count + _pullStarted.Count > pods.Count * 2 || _firstSeen.Count > pods.Count * 2)
            {
                // What was kept about pods that are gone (a long-running cluster sees many come and go).
                var live = pods.Select(Json.Uid).ToHashSet(StringComparer.Ordinal);
                foreach (var gone in _settled.Keys.Where(uid => !live.Contains(uid)).ToList())
                {
                    _settled.Remove(gone);
                }

                foreach (var gone in _pulled.Keys.Concat(_pullStarted.Keys).Where(uid => !live.Contains(uid)).ToList())
                {
                    _pulled.Remove(gone);
                    _pullStarted.Remove(gone);
                }

                foreach (var gone in _firstSeen.Keys.Where(uid => !live.Contains(uid)).ToList())
                {
                    _firstSeen.TryRemove(gone, out _);
                }
            }
        }
        else
        {
            // Otherwise the pods a change points at, and those still on their way.
            foreach (var e in changes)
            {
                if (e.Resource == Pods && e.Type != "DELETED")
                {
                    _unsettled.Add((Json.Namespace(e.Object) ?? string.Empty, Json.Name(e.Object)));
                }
            }

            pods = [.. _unsettled.Select(k => store.GetShared(Pods, k.Ns, k.Name)).OfType<JsonObject>()];
            _unsettled.Clear();
        }

        PodsExamined += pods.Count;
        foreach (var pod in pods)
        {
            var ns = Json.Namespace(pod)!;
            var name = Json.Name(pod);
            var rv = Json.Str(pod["metadata"]?["resourceVersion"]) ?? string.Empty;
            if (_settled.TryGetValue(Json.Uid(pod), out var settled) && settled.ResourceVersion == rv && settled.Faults == faultsVersion)
            {
                continue;
            }

            // A pod found settled when the cluster starts (loaded from disk) is taken as it is, not recomputed.
            if (settled == default && pod["status"] is JsonObject stored && Settled(pod, stored) && !Json.Deleting(pod) && !faults.Any)
            {
                _settled[Json.Uid(pod)] = (rv, faultsVersion);
                continue;
            }

            // Anything past this point is not settled: the next pass looks at it again.
            _unsettled.Add((ns, name));

            if (Json.Deleting(pod))
            {
                Terminate(pod, now);
                continue;
            }

            if (Json.Str(pod["spec"]?["nodeName"]) is null)
            {
                // Not bound to a node yet: the scheduler's, not a kubelet's.
                continue;
            }

            if (pod["metadata"]?["annotations"]?[LinksAnnotation] is null)
            {
                // First sight of the pod: freeze the Services whose variables its containers get.
                var links = store.ListShared(Services, ns).Items.Select(Json.Name).ToList();
                store.MergePatch(Pods, ns, name, new JsonObject
                {
                    ["metadata"] = new JsonObject { ["annotations"] = new JsonObject { [LinksAnnotation] = string.Join(",", links) } },
                }, statusOnly: false, Manager);
                continue;
            }

            // With image distribution simulated, a pod starts once its node holds its images.
            if (Pulls is not null && !_pulled.ContainsKey(Json.Uid(pod)) && Json.Str(pod["status"]?["phase"]) is null or "Pending" && !PullDone(pod, now))
            {
                continue;
            }

            // A pod this kubelet has not seen yet starts now (or when its images arrived); one that already ran (the
            // server restarted) keeps the start it had. Either way the start is never before the pod was created.
            var firstSeen = _firstSeen.GetOrAdd(Json.Uid(pod), uid =>
                _pulled.TryGetValue(uid, out var pulledAt) ? pulledAt
                : Json.Str(pod["status"]?["phase"]) is null ? now : Json.Time(pod["status"]?["startTime"]) ?? Json.Time(pod["metadata"]?["creationTimestamp"]) ?? now);
            var status = Compute(pod, firstSeen, now);
            if (!JsonNode.DeepEquals(status, pod["status"]))
            {
                store.Update(Pods, ns, name, new JsonObject { ["status"] = status }, statusOnly: true, Manager);
                RecordTransitions(pod, pod["status"] as JsonObject, status);
            }
            else if (Settled(pod, status))
            {
                _settled[Json.Uid(pod)] = (rv, faultsVersion);
                _unsettled.Remove((ns, name));
            }
        }
    }

    /// <summary>
    /// Pulls a pod's images to its node (the layers the node lacks): false while they are on their way, with the pod
    /// shown waiting in ContainerCreating; true once they are there, with Pulling and Pulled events as a kubelet records.
    /// </summary>
    /// <summary>The node a scheduled pod is bound to.</summary>
    private static string NodeOf(JsonObject pod) =>
        Json.Str(pod["spec"]?["nodeName"]) ?? throw new InvalidOperationException($"pod {Json.Namespace(pod)}/{Json.Name(pod)} pulls images but is on no node");

    private bool PullDone(JsonObject pod, DateTimeOffset now)
    {
        var uid = Json.Uid(pod);
        if (_pulled.ContainsKey(uid))
        {
            return true;
        }

        var containers = (pod["spec"]?["containers"] as JsonArray ?? []).Concat(pod["spec"]?["initContainers"] as JsonArray ?? []).OfType<JsonObject>().ToList();
        var wanted = containers.Select(c => Json.Str(c["image"]) ?? string.Empty).Where(images.Exists).Distinct(StringComparer.Ordinal).ToList();
        var (readyAt, pulls) = Pulls!.Request(NodeOf(pod), wanted, now);
        if (!_pullStarted.TryGetValue(uid, out var started))
        {
            started = (now, pulls);
            _pullStarted[uid] = started;
            foreach (var pull in pulls.Where(p => p.Missing > 0))
            {
                events.Normal(pod, "Pulling", $"Pulling image \"{pull.Image}\"", Manager);
            }
        }

        if (readyAt is null)
        {
            var waiting = new JsonObject
            {
                ["phase"] = "Pending",
                ["conditions"] = new JsonArray(Condition("PodScheduled", true), Condition("Initialized", false), Condition("ContainersReady", false), Condition("Ready", false)),
                ["hostIP"] = "10.0.0.1",
                ["containerStatuses"] = new JsonArray([.. (pod["spec"]?["containers"] as JsonArray ?? []).OfType<JsonObject>().Select(c => (JsonNode)Waiting(c, "ContainerCreating", null, 0))]),
            };
            KeepQosClass(waiting, pod);
            if (!JsonNode.DeepEquals(waiting, pod["status"]))
            {
                store.Update(Pods, Json.Namespace(pod)!, Json.Name(pod), new JsonObject { ["status"] = waiting }, statusOnly: true, Manager);
            }

            return false;
        }

        var at = readyAt.Value > started.Since ? readyAt.Value : started.Since;
        _pulled[uid] = at;
        Hold(NodeOf(pod), wanted);
        _pullStarted.Remove(uid);
        foreach (var (image, missing, size) in started.Pulls)
        {
            events.Normal(pod, "Pulled", missing > 0
                ? $"Successfully pulled image \"{image}\" in {(at - started.Since).TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)}s. Image size: {size} bytes, of which this node lacked {missing}"
                : $"Container image \"{image}\" already present on machine", Manager);
        }

        return true;
    }

    /// <summary>
    /// Records images a node now holds in its <c>status.images</c>, largest first and at most 50, as a kubelet reports
    /// them (clients such as a pre-pull read it to skip nodes that are warm already).
    /// </summary>
    private void Hold(string node, IEnumerable<string> images)
    {
        if (!_nodeImages.TryGetValue(node, out var held))
        {
            held = new SortedDictionary<string, long>(StringComparer.Ordinal);
            _nodeImages[node] = held;
        }

        var added = false;
        foreach (var image in images.Where(i => !held.ContainsKey(i)))
        {
            held[image] = Pulls!.Size(image);
            added = true;
        }

        if (added && store.GetShared(Nodes, null, node) is not null)
        {
            var list = new JsonArray([.. held.OrderByDescending(kv => kv.Value).Take(50).Select(kv => (JsonNode)new JsonObject { ["names"] = new JsonArray(kv.Key), ["sizeBytes"] = kv.Value })]);
            try
            {
                store.MergePatch(Nodes, null, node, new JsonObject { ["status"] = new JsonObject { ["images"] = list } }, statusOnly: true, Manager);
            }
            catch (ApiError)
            {
                // The node went away in between: nothing to report to.
            }
        }
    }
}
