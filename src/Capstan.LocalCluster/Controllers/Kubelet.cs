using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Core.Kubernetes;
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
    private bool PullDone(JsonObject pod, DateTimeOffset now)
    {
        var uid = Json.Uid(pod);
        if (_pulled.ContainsKey(uid))
        {
            return true;
        }

        var containers = (pod["spec"]?["containers"] as JsonArray ?? []).Concat(pod["spec"]?["initContainers"] as JsonArray ?? []).OfType<JsonObject>().ToList();
        var wanted = containers.Select(c => Json.Str(c["image"]) ?? string.Empty).Where(images.Exists).Distinct(StringComparer.Ordinal).ToList();
        var (readyAt, pulls) = Pulls!.Request(Json.Str(pod["spec"]!["nodeName"])!, wanted, now);
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
            if (!JsonNode.DeepEquals(waiting, pod["status"]))
            {
                store.Update(Pods, Json.Namespace(pod)!, Json.Name(pod), new JsonObject { ["status"] = waiting }, statusOnly: true, Manager);
            }

            return false;
        }

        var at = readyAt.Value > started.Since ? readyAt.Value : started.Since;
        _pulled[uid] = at;
        Hold(Json.Str(pod["spec"]!["nodeName"])!, wanted);
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

    /// <summary>
    /// True when nothing but a change of the pod (or of the faults) can change its state: finished, or running with
    /// every container ready and no back-off pending.
    /// </summary>
    private static bool Settled(JsonObject pod, JsonObject status) =>
        Json.Str(status["phase"]) is "Succeeded" or "Failed"
        || (Json.Str(status["phase"]) == "Running" && Json.Str(Json.Condition(status, "Ready")?["status"]) == "True"
            && Json.Str(pod["spec"]?["restartPolicy"]) is null or "Always");

    private JsonObject Compute(JsonObject pod, DateTimeOffset firstSeen, DateTimeOffset now)
    {
        var ns = Json.Namespace(pod)!;
        var spec = pod["spec"]!.AsObject();
        var restartPolicy = Json.Str(spec["restartPolicy"]) ?? "Always";
        var containers = (spec["containers"] as JsonArray ?? []).Select(c => c!.AsObject()).ToList();
        var initContainers = (spec["initContainers"] as JsonArray ?? []).Select(c => c!.AsObject()).ToList();
        var slow = faults.ForPod(FaultInjector.PodFaultKind.Slow, pod)?.Delay ?? TimeSpan.Zero;
        var startAt = firstSeen + timing.PodStart + slow;
        var readyAt = startAt + timing.PodReady;
        var podIp = "10.244." + (Math.Abs(Json.Uid(pod).GetHashCode(StringComparison.Ordinal)) % 250).ToString(CultureInfo.InvariantCulture) + "." +
                    ((Math.Abs(Json.Uid(pod).GetHashCode(StringComparison.Ordinal)) / 250 % 250) + 2).ToString(CultureInfo.InvariantCulture);

        var imageProblem = ImageProblem(initContainers.Concat(containers), now - firstSeen);
        var problem = imageProblem is { } ip ? (ip.Reason, ip.Message) : ConfigProblem(ns, spec, initContainers.Concat(containers));
        var statuses = new JsonArray();
        var initStatuses = new JsonArray();
        string phase;
        var ready = false;
        var crash = faults.ForPod(FaultInjector.PodFaultKind.CrashLoop, pod) is not null;
        var failJob = faults.ForPod(FaultInjector.PodFaultKind.FailJob, pod) is not null;

        if (problem is { } p)
        {
            phase = "Pending";
            foreach (var c in containers)
            {
                // A missing image stops its own container; the others wait for the pod to start.
                statuses.Add(imageProblem is { } img && img.Container != Json.Str(c["name"])
                    ? Waiting(c, "ContainerCreating", null, 0)
                    : Waiting(c, p.Reason, p.Message, 0));
            }
        }
        else if (now < startAt)
        {
            phase = "Pending";
            foreach (var c in containers)
            {
                statuses.Add(Waiting(c, "ContainerCreating", null, 0));
            }
        }
        else
        {
            var services = Linked(pod);
            var allRunning = true;
            var finished = 0;
            var failed = 0;
            foreach (var c in containers)
            {
                var unresolved = Unresolved(c, services, pod, podIp);
                if (crash || unresolved is not null)
                {
                    var why = unresolved is not null ? $"unresolved $({unresolved.Value.Var}) in env {unresolved.Value.Env}" : "injected crash";
                    if (restartPolicy == "Never")
                    {
                        statuses.Add(Terminated(c, 1, "Error", why, startAt));
                        failed++;
                        continue;
                    }

                    var restarts = 1 + (int)((now - startAt).Ticks / Math.Max(1, timing.CrashRestart.Ticks));
                    var waiting = Waiting(c, "CrashLoopBackOff", $"back-off restarting failed container {Json.Str(c["name"])}: {why}", restarts);
                    waiting["lastState"] = new JsonObject { ["terminated"] = TerminatedState(1, "Error", why, startAt) };
                    statuses.Add(waiting);
                    allRunning = false;
                    continue;
                }

                if (restartPolicy != "Always" && now >= startAt + timing.JobRun)
                {
                    var code = failJob ? 1 : 0;
                    statuses.Add(Terminated(c, code, code == 0 ? "Completed" : "Error", null, startAt));
                    finished++;
                    failed += code;
                    continue;
                }

                var isReady = now >= readyAt;
                statuses.Add(Running(c, startAt, isReady));
                allRunning &= isReady;
            }

            phase = failed > 0 && restartPolicy != "Always" && finished + failed == containers.Count ? "Failed"
                : failed > 0 && restartPolicy == "Never" ? "Failed"
                : finished == containers.Count && containers.Count > 0 ? "Succeeded"
                : "Running";
            ready = phase == "Running" && allRunning;
            foreach (var ic in initContainers.Where(ic => Json.Str(ic["restartPolicy"]) == "Always"))
            {
                initStatuses.Add(phase == "Running" ? Running(ic, startAt, now >= readyAt) : Terminated(ic, 0, "Completed", null, startAt));
            }
        }

        var status = new JsonObject
        {
            ["phase"] = phase,
            ["conditions"] = new JsonArray(
                Condition("PodScheduled", true),
                Condition("Initialized", phase != "Pending" || problem is null),
                Condition("ContainersReady", ready),
                Condition("Ready", ready)),
            ["hostIP"] = "10.0.0.1",
            ["podIP"] = phase is "Running" or "Succeeded" or "Failed" ? podIp : null,
            ["startTime"] = Json.Stamp(firstSeen),
            ["containerStatuses"] = statuses,
        };
        if (initStatuses.Count > 0)
        {
            status["initContainerStatuses"] = initStatuses;
        }

        if (status["podIP"] is null)
        {
            status.Remove("podIP");
        }

        return status;
    }

    private (string Reason, string Message, string? Container)? ImageProblem(IEnumerable<JsonObject> containers, TimeSpan sinceFirstSeen)
    {
        foreach (var c in containers)
        {
            var image = Json.Str(c["image"]) ?? string.Empty;
            if (!images.Exists(image))
            {
                var reason = sinceFirstSeen < timing.CrashRestart ? "ErrImagePull" : "ImagePullBackOff";
                return (reason, $"Back-off pulling image \"{image}\": not found in the image store (container {Json.Str(c["name"])})", Json.Str(c["name"]));
            }
        }

        return null;
    }

    private (string Reason, string Message)? ConfigProblem(string ns, JsonObject spec, IEnumerable<JsonObject> containers)
    {
        foreach (var volume in spec["volumes"] as JsonArray ?? [])
        {
            if (volume?["configMap"] is JsonObject cm && !(cm["optional"]?.GetValue<bool>() ?? false) && store.GetShared(ConfigMaps, ns, Json.Str(cm["name"]) ?? string.Empty) is null)
            {
                return ("CreateContainerConfigError", $"configmap \"{Json.Str(cm["name"])}\" not found");
            }

            if (volume?["secret"] is JsonObject secret && !(secret["optional"]?.GetValue<bool>() ?? false) && store.GetShared(Secrets, ns, Json.Str(secret["secretName"]) ?? string.Empty) is null)
            {
                return ("CreateContainerConfigError", $"secret \"{Json.Str(secret["secretName"])}\" not found");
            }
        }

        foreach (var c in containers)
        {
            foreach (var env in c["env"] as JsonArray ?? [])
            {
                foreach (var (kind, type, field) in new[] { ("configMapKeyRef", ConfigMaps, "configmap"), ("secretKeyRef", Secrets, "secret") })
                {
                    if (env?["valueFrom"]?[kind] is JsonObject reference && !(reference["optional"]?.GetValue<bool>() ?? false))
                    {
                        var obj = store.GetShared(type, ns, Json.Str(reference["name"]) ?? string.Empty);
                        if (obj is null)
                        {
                            return ("CreateContainerConfigError", $"{field} \"{Json.Str(reference["name"])}\" not found");
                        }

                        if (obj["data"]?[Json.Str(reference["key"]) ?? string.Empty] is null)
                        {
                            return ("CreateContainerConfigError", $"couldn't find key {Json.Str(reference["key"])} in {field} {ns}/{Json.Str(reference["name"])}");
                        }
                    }
                }
            }
        }

        return null;
    }

    private List<JsonObject> Linked(JsonObject pod)
    {
        if (pod["spec"]?["enableServiceLinks"]?.GetValue<bool>() == false)
        {
            return [];
        }

        var ns = Json.Namespace(pod)!;
        var names = (Json.Str(pod["metadata"]?["annotations"]?[LinksAnnotation]) ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries);
        return [.. names.Select(n => store.GetShared(Services, ns, n)).OfType<JsonObject>()];
    }

    /// <summary>The first reference left unresolved after Kubernetes' <c>$(VAR)</c> expansion, if any.</summary>
    private static (string Env, string Var)? Unresolved(JsonObject container, List<JsonObject> services, JsonObject pod, string podIp)
    {
        var vars = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var svc in services)
        {
            var prefix = KubeNames.ServiceEnvPrefix(Json.Name(svc));
            var ip = Json.Str(svc["spec"]?["clusterIP"]) ?? "10.96.0.1";
            var ports = svc["spec"]?["ports"] as JsonArray ?? [];
            vars[prefix + "_SERVICE_HOST"] = ip;
            if (ports.Count > 0)
            {
                vars[prefix + "_SERVICE_PORT"] = Json.Int(ports[0]?["port"]).ToString(CultureInfo.InvariantCulture);
            }

            foreach (var port in ports)
            {
                if (Json.Str(port?["name"]) is { Length: > 0 } portName)
                {
                    vars[prefix + "_SERVICE_PORT_" + KubeNames.ServiceEnvPrefix(portName)] = Json.Int(port!["port"]).ToString(CultureInfo.InvariantCulture);
                }
            }
        }

        foreach (var env in container["env"] as JsonArray ?? [])
        {
            var name = Json.Str(env?["name"]) ?? string.Empty;
            if (env?["value"] is { } value)
            {
                var (expanded, missing) = Expand(value.GetValue<string>(), vars);
                if (missing is not null)
                {
                    return (name, missing);
                }

                vars[name] = expanded;
            }
            else if (env?["valueFrom"]?["fieldRef"]?["fieldPath"] is { } fieldPath)
            {
                vars[name] = fieldPath.GetValue<string>() switch
                {
                    "metadata.name" => Json.Name(pod),
                    "metadata.namespace" => Json.Namespace(pod) ?? string.Empty,
                    "spec.nodeName" => "local-node-1",
                    "status.podIP" => podIp,
                    _ => string.Empty,
                };
            }
            else
            {
                vars[name] = string.Empty;
            }
        }

        return null;
    }

    /// <summary>Expands <c>$(VAR)</c> as Kubernetes does: known variables are replaced, <c>$$</c> escapes, unknown ones stay.</summary>
    internal static (string Value, string? Missing) Expand(string value, IReadOnlyDictionary<string, string> vars) =>
        Core.Kubernetes.ContainerExpansion.Expand(value, vars);

    private static JsonObject Condition(string type, bool value) => new() { ["type"] = type, ["status"] = value ? "True" : "False" };

    private static JsonObject Base(JsonObject c, bool ready, int restarts) => new()
    {
        ["name"] = Json.Str(c["name"]),
        ["image"] = Json.Str(c["image"]),
        ["ready"] = ready,
        ["restartCount"] = restarts,
    };

    private static JsonObject Waiting(JsonObject c, string reason, string? message, int restarts)
    {
        var s = Base(c, false, restarts);
        var waiting = new JsonObject { ["reason"] = reason };
        if (message is not null)
        {
            waiting["message"] = message;
        }

        s["state"] = new JsonObject { ["waiting"] = waiting };
        return s;
    }

    private static JsonObject Running(JsonObject c, DateTimeOffset started, bool ready)
    {
        var s = Base(c, ready, 0);
        s["state"] = new JsonObject { ["running"] = new JsonObject { ["startedAt"] = Json.Stamp(started) } };
        s["started"] = true;
        return s;
    }

    private static JsonObject Terminated(JsonObject c, int code, string reason, string? message, DateTimeOffset started)
    {
        var s = Base(c, false, 0);
        s["state"] = new JsonObject { ["terminated"] = TerminatedState(code, reason, message, started) };
        return s;
    }

    private static JsonObject TerminatedState(int code, string reason, string? message, DateTimeOffset started)
    {
        var t = new JsonObject { ["exitCode"] = code, ["reason"] = reason, ["startedAt"] = Json.Stamp(started), ["finishedAt"] = Json.Stamp(started) };
        if (message is not null)
        {
            t["message"] = message;
        }

        return t;
    }
}
