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
                spec["strategy"] ??= new JsonObject { ["type"] = "RollingUpdate", ["rollingUpdate"] = new JsonObject { ["maxSurge"] = "25%", ["maxUnavailable"] = "25%" } };
                PodSpec(spec["template"]?["spec"] as JsonObject, "Always");
                break;
            case "ReplicaSet" when spec is not null:
                spec["replicas"] ??= 1;
                break;
            case "Service" when spec is not null:
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
                spec["backoffLimit"] ??= 6;
                spec["completions"] ??= 1;
                spec["parallelism"] ??= 1;
                PodSpec(spec["template"]?["spec"] as JsonObject, "Never");
                break;
            case "CronJob" when spec is not null:
                spec["concurrencyPolicy"] ??= "Allow";
                spec["suspend"] ??= false;
                spec["successfulJobsHistoryLimit"] ??= 3;
                spec["failedJobsHistoryLimit"] ??= 1;
                break;
            case "Pod" when spec is not null:
                PodSpec(spec, "Always");
                break;
        }

        return obj;
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
        foreach (var container in (spec["containers"] as JsonArray ?? []).Concat(spec["initContainers"] as JsonArray ?? []))
        {
            foreach (var port in container?["ports"] as JsonArray ?? [])
            {
                port!["protocol"] ??= "TCP";
            }
        }
    }
}
