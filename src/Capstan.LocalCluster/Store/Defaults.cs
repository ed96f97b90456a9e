using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Store;

/// <summary>
/// The defaults the real API server fills in on every write, for the fields Capstan's objects leave out. A Service
/// keeps the cluster IP and node ports it was given (immutable, as on a real server); new ones are allocated by the
/// store (<see cref="ServiceAddresses"/>), unique in the cluster.
/// </summary>
internal static class Defaults
{
    public static JsonObject Apply(ResourceType type, JsonObject obj, JsonObject? live = null)
    {
        var spec = obj["spec"] as JsonObject;
        switch (type.Kind)
        {
            case "Deployment" when spec is not null:
                spec["replicas"] ??= 1;
                spec["revisionHistoryLimit"] ??= 10;
                spec["progressDeadlineSeconds"] ??= 600;
                // As Go's defaulting: a strategy without a type (absent, or the {} a typed client sends) rolls, by 25 %.
                var strategy = spec["strategy"] as JsonObject ?? (JsonObject)(spec["strategy"] = new JsonObject());
                strategy["type"] ??= "RollingUpdate";
                if (strategy["type"] is JsonValue kind && kind.TryGetValue<string>(out var name) && name == "RollingUpdate")
                {
                    var rolling = strategy["rollingUpdate"] as JsonObject ?? (JsonObject)(strategy["rollingUpdate"] = new JsonObject());
                    rolling["maxUnavailable"] ??= "25%";
                    rolling["maxSurge"] ??= "25%";
                }

                PodSpec(spec["template"]?["spec"] as JsonObject, "Always");
                break;
            case "DaemonSet" when spec is not null:
                spec["revisionHistoryLimit"] ??= 10;
                var update = spec["updateStrategy"] as JsonObject ?? (JsonObject)(spec["updateStrategy"] = new JsonObject());
                update["type"] ??= "RollingUpdate";
                if (update["type"] is JsonValue updateKind && updateKind.TryGetValue<string>(out var updateName) && updateName == "RollingUpdate")
                {
                    var rollingDaemons = update["rollingUpdate"] as JsonObject ?? (JsonObject)(update["rollingUpdate"] = new JsonObject());
                    rollingDaemons["maxUnavailable"] ??= 1;
                    rollingDaemons["maxSurge"] ??= 0;
                }

                PodSpec(spec["template"]?["spec"] as JsonObject, "Always");
                break;
            case "StatefulSet" when spec is not null:
                spec["replicas"] ??= 1;
                spec["podManagementPolicy"] ??= "OrderedReady";
                spec["revisionHistoryLimit"] ??= 10;
                spec["persistentVolumeClaimRetentionPolicy"] ??= new JsonObject { ["whenDeleted"] = "Retain", ["whenScaled"] = "Retain" };
                var setUpdate = spec["updateStrategy"] as JsonObject ?? (JsonObject)(spec["updateStrategy"] = new JsonObject());
                setUpdate["type"] ??= "RollingUpdate";
                if (setUpdate["type"] is JsonValue setKind && setKind.TryGetValue<string>(out var setName) && setName == "RollingUpdate")
                {
                    var rollingSet = setUpdate["rollingUpdate"] as JsonObject ?? (JsonObject)(setUpdate["rollingUpdate"] = new JsonObject());
                    rollingSet["partition"] ??= 0;
                }

                PodSpec(spec["template"]?["spec"] as JsonObject, "Always");
                break;
            case "ReplicaSet" when spec is not null:
                spec["replicas"] ??= 1;
                break;
            case "Service" when spec is not null:
                if (live is null)
                {
                    obj["status"] ??= new JsonObject { ["loadBalancer"] = new JsonObject() };
                }

                spec["type"] ??= "ClusterIP";
                spec["sessionAffinity"] ??= "None";
                if (spec["clusterIP"] is null && live?["spec"]?["clusterIP"] is { } kept)
                {
                    spec["clusterIP"] = kept.DeepClone();
                }

                // A port that had a node port keeps it when the write leaves it out (the store allocates new ones).
                var livePorts = live?["spec"]?["ports"] as JsonArray ?? [];
                foreach (var port in spec["ports"] as JsonArray ?? [])
                {
                    if (port is JsonObject p && p["nodePort"] is null && spec["type"]?.GetValue<string>() is "NodePort" or "LoadBalancer"
                        && livePorts.OfType<JsonObject>().FirstOrDefault(l => JsonNode.DeepEquals(l["port"], p["port"]) && l["nodePort"] is not null) is { } same)
                    {
                        p["nodePort"] = same["nodePort"]!.DeepClone();
                    }
                }

                foreach (var port in spec["ports"] as JsonArray ?? [])
                {
                    port!["protocol"] ??= "TCP";
                    port["targetPort"] ??= port["port"]?.DeepClone();
                }

                break;
            case "Job" when spec is not null:
                JobSpec(spec);
                break;
            case "CronJob" when spec is not null:
                spec["concurrencyPolicy"] ??= "Allow";
                spec["suspend"] ??= false;
                spec["successfulJobsHistoryLimit"] ??= 3;
                spec["failedJobsHistoryLimit"] ??= 1;
                if (spec["jobTemplate"]?["spec"] is JsonObject jobTemplate)
                {
                    JobSpec(jobTemplate);
                }

                break;
            case "Pod" when spec is not null:
                PodSpec(spec, "Always");

                // What admission and the Pod's own defaulting add on a real server (not to a template): the service
                // account, service links, and a status from the moment it is created.
                spec["serviceAccountName"] ??= spec["serviceAccount"]?.DeepClone() ?? "default";
                spec["serviceAccount"] ??= spec["serviceAccountName"]!.DeepClone();
                spec["enableServiceLinks"] ??= true;
                if (live is null)
                {
                    obj["status"] ??= new JsonObject { ["phase"] = "Pending", ["qosClass"] = QosClass(spec) };
                }

                break;
        }

        return obj;
    }

    /// <summary>A Job's defaults (also in a CronJob's job template), as kube-apiserver's for batch/v1.</summary>
    private static void JobSpec(JsonObject spec)
    {
        spec["backoffLimit"] ??= 6;
        spec["completions"] ??= 1;
        spec["parallelism"] ??= 1;
        spec["completionMode"] ??= "NonIndexed";
        spec["suspend"] ??= false;
        spec["podReplacementPolicy"] ??= spec["podFailurePolicy"] is null ? "TerminatingOrFailed" : "Failed";
        PodSpec(spec["template"]?["spec"] as JsonObject, "Never");
    }

    private static void PodSpec(JsonObject? spec, string restartPolicy)
    {
        if (spec is null)
        {
            return;
        }

        spec["restartPolicy"] ??= restartPolicy;
        spec["terminationGracePeriodSeconds"] ??= 30;
        spec["dnsPolicy"] ??= "ClusterFirst";
        spec["schedulerName"] ??= "default-scheduler";
        spec["securityContext"] ??= new JsonObject();
        foreach (var container in (spec["containers"] as JsonArray ?? []).Concat(spec["initContainers"] as JsonArray ?? []))
        {
            if (container is not JsonObject c)
            {
                continue;
            }

            c["imagePullPolicy"] ??= PullPolicy(c["image"]?.GetValue<string>());
            c["terminationMessagePath"] ??= "/dev/termination-log";
            c["terminationMessagePolicy"] ??= "File";
            foreach (var port in c["ports"] as JsonArray ?? [])
            {
                port!["protocol"] ??= "TCP";
            }
        }
    }

    /// <summary>As kube-apiserver defaults it: Always for an image without a tag or tagged latest, IfNotPresent otherwise.</summary>
    private static string PullPolicy(string? image)
    {
        if (image is null || image.Contains('@', StringComparison.Ordinal))
        {
            return "IfNotPresent";
        }

        var slash = image.LastIndexOf('/');
        var colon = image.LastIndexOf(':');
        return colon <= slash || image[(colon + 1)..] == "latest" ? "Always" : "IfNotPresent";
    }

    /// <summary>
    /// A pod's quality-of-service class: Guaranteed when every container's requests equal its limits for both cpu and
    /// memory, BestEffort when no container asks for or limits either, Burstable otherwise.
    /// </summary>
    private static string QosClass(JsonObject spec)
    {
        var containers = (spec["containers"] as JsonArray ?? []).Concat(spec["initContainers"] as JsonArray ?? []).OfType<JsonObject>().ToList();
        static JsonObject? Of(JsonObject c, string what) => c["resources"]?[what] as JsonObject;
        bool Any(JsonObject c) => new[] { "requests", "limits" }.Any(w => Of(c, w) is { } r && (r.ContainsKey("cpu") || r.ContainsKey("memory")));
        if (!containers.Any(Any))
        {
            return "BestEffort";
        }

        return containers.All(c => new[] { "cpu", "memory" }.All(r => Of(c, "limits")?[r] is { } limit
            && (Of(c, "requests")?[r] is not { } request || Quantity(request) == Quantity(limit))))
            ? "Guaranteed"
            : "Burstable";
    }

    private static System.Numerics.BigInteger? Quantity(JsonNode node) =>
        Capstan.Core.Kubernetes.Quantity.TryParse(node.ToString(), out var value) ? value.Nanos : null;
}
