using System.Globalization;
using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Controllers;

/// <content>The kubelet's container status calculation: a pod's phase, conditions and each container's state from its spec, the faults, the images and the time since it was first seen.</content>
internal sealed partial class Kubelet
{
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
        var spec = Json.Obj(pod, "spec");
        var restartPolicy = Json.Str(spec["restartPolicy"]) ?? "Always";
        var containers = (spec["containers"] as JsonArray ?? []).OfType<JsonObject>().ToList();
        var initContainers = (spec["initContainers"] as JsonArray ?? []).OfType<JsonObject>().ToList();
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

        KeepQosClass(status, pod);

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
                // As a kubelet reports a registry that has no such manifest: the pull's error, then the back-off.
                return sinceFirstSeen < timing.CrashRestart
                    ? ("ErrImagePull", PullError(image), Json.Str(c["name"]))
                    : ("ImagePullBackOff", $"Back-off pulling image \"{image}\"", Json.Str(c["name"]));
            }
        }

        return null;
    }

    /// <summary>The runtime's error for an image its registry does not have (<c>manifest unknown</c>).</summary>
    internal static string PullError(string image)
    {
        var at = image.LastIndexOf('@');
        var colon = image.LastIndexOf(':');
        var (repository, reference) = at > 0 ? (image[..at], image[(at + 1)..])
            : colon > image.LastIndexOf('/') ? (image[..colon], image[(colon + 1)..])
            : (image, "latest");
        return $"rpc error: code = Unknown desc = reading manifest {reference} in {repository}: manifest unknown";
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

    /// <summary>The pod's QoS class, set when it was created, stays in every status the kubelet writes (as on a real node).</summary>
    private static void KeepQosClass(JsonObject status, JsonObject pod)
    {
        if (pod["status"]?["qosClass"] is { } qos)
        {
            status["qosClass"] = qos.DeepClone();
        }
    }

    /// <summary>
    /// The IDs a started container has on a real node: the image by digest, the container by the runtime's id. Here both
    /// are derived from what identifies them (the image's name; the container, its image and when it started).
    /// </summary>
    private static void Identify(JsonObject status, DateTimeOffset started)
    {
        var image = Json.Str(status["image"]) ?? string.Empty;
        status["imageID"] = $"{image.Split('@')[0]}@sha256:{Hash(image)}";
        status["containerID"] = $"containerd://{Hash($"{Json.Str(status["name"])}\n{image}\n{Json.Stamp(started)}")}";
    }

    private static string Hash(string text) =>
        Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text))).ToLowerInvariant();

    private static JsonObject Condition(string type, bool value) => new() { ["type"] = type, ["status"] = value ? "True" : "False" };

    private static JsonObject Base(JsonObject c, bool ready, int restarts) => new()
    {
        ["name"] = Json.Str(c["name"]),
        ["image"] = Json.Str(c["image"]),
        ["imageID"] = string.Empty,
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
        Identify(s, started);
        s["state"] = new JsonObject { ["running"] = new JsonObject { ["startedAt"] = Json.Stamp(started) } };
        s["started"] = true;
        return s;
    }

    private static JsonObject Terminated(JsonObject c, int code, string reason, string? message, DateTimeOffset started)
    {
        var s = Base(c, false, 0);
        Identify(s, started);
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
