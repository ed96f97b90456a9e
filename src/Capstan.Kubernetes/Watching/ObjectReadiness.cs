using System.Text.Json.Nodes;
using Capstan.Core.Kubernetes;

namespace Capstan.Kubernetes.Watching;

/// <summary>Where an applied object stands, as kubectl's rollout status and kstatus judge it.</summary>
public enum Readiness
{
    /// <summary>It has reached what was applied (or its kind has nothing to wait for).</summary>
    Current,

    /// <summary>Its controller is still working towards it.</summary>
    InProgress,

    /// <summary>It will not get there by itself (a Job that failed, a workload that stalled).</summary>
    Failed,
}

/// <summary>
/// Judges an applied workload from its status alone, kind by kind, as <c>kubectl rollout status</c> and kstatus do: a
/// StatefulSet when every replica is updated and ready at the update revision (up to its partition), a DaemonSet when
/// every scheduled pod is updated and available, a Job when it completes (its Failed condition fails it), a ReplicaSet
/// when its replicas are available, a Pod when it is ready or succeeded, a CustomResourceDefinition when it is
/// established, and any other kind that reports an observed
/// generation or Ready/Stalled conditions by those. Deployments have <see cref="RolloutStatus"/> (their pods tell why).
/// Kinds without status (ConfigMaps, Services, roles) are current once applied.
/// </summary>
public static class ObjectReadiness
{
    /// <summary>The kinds with no status to wait for: current as soon as the server accepted them.</summary>
    private static readonly HashSet<string> Statusless = new(StringComparer.Ordinal)
    {
        "ConfigMap", "Secret", "Service", "ServiceAccount", "Namespace", "NetworkPolicy", "LimitRange", "ResourceQuota",
        "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "CronJob", "HorizontalPodAutoscaler", "PodDisruptionBudget",
        "Ingress", "PersistentVolumeClaim", "Event", "Node",
    };

    /// <summary>True when a wait on <paramref name="kind"/> means anything (Deployments aside, which have their own).</summary>
    public static bool Waits(string kind) => kind != "Deployment" && !Statusless.Contains(kind);

    /// <summary>Where <paramref name="obj"/> stands, and a line that says so.</summary>
    public static (Readiness State, string Message) Judge(JsonObject obj)
    {
        var kind = obj["kind"]?.GetValue<string>() ?? string.Empty;
        var status = obj["status"] as JsonObject;
        var generation = obj.Kube.Generation;
        var observed = JsonNumbers.Long(status?["observedGeneration"]);
        if (observed is { } seen && seen < generation)
        {
            return (Readiness.InProgress, $"waiting for the controller to see generation {generation} (it has seen {seen})");
        }

        var desired = (int)(JsonNumbers.Long(obj["spec"]?["replicas"]) ?? 1);
        int Count(string field) => (int)(JsonNumbers.Long(status?[field]) ?? 0);
        switch (kind)
        {
            case "StatefulSet":
                if (observed is null)
                {
                    return (Readiness.InProgress, "waiting for the controller to report");
                }

                var partition = (int)(JsonNumbers.Long(obj["spec"]?["updateStrategy"]?["rollingUpdate"]?["partition"]) ?? 0);
                if (obj["spec"]?["updateStrategy"]?["type"]?.GetValue<string>() == "OnDelete")
                {
                    return (Readiness.Current, "OnDelete: pods are replaced when deleted");
                }

                if (Count("updatedReplicas") < desired - partition)
                {
                    return (Readiness.InProgress, $"waiting {Count("updatedReplicas")}/{desired - partition} updated");
                }

                if (Count("readyReplicas") < desired)
                {
                    return (Readiness.InProgress, $"waiting {Count("readyReplicas")}/{desired} ready");
                }

                return partition == 0 && status?["updateRevision"]?.GetValue<string>() is { } update && status["currentRevision"]?.GetValue<string>() != update
                    ? (Readiness.InProgress, "waiting for the update revision to become current")
                    : (Readiness.Current, $"{desired}/{desired} ready");
            case "DaemonSet":
                if (observed is null)
                {
                    return (Readiness.InProgress, "waiting for the controller to report");
                }

                var scheduled = Count("desiredNumberScheduled");
                if (Count("updatedNumberScheduled") < scheduled)
                {
                    return (Readiness.InProgress, $"waiting {Count("updatedNumberScheduled")}/{scheduled} updated");
                }

                return Count("numberAvailable") < scheduled
                    ? (Readiness.InProgress, $"waiting {Count("numberAvailable")}/{scheduled} available")
                    : (Readiness.Current, $"{scheduled}/{scheduled} available");
            case "ReplicaSet":
                return Count("availableReplicas") < desired
                    ? (Readiness.InProgress, $"waiting {Count("availableReplicas")}/{desired} available")
                    : (Readiness.Current, $"{desired}/{desired} available");
            case "Job":
                if (Condition(status, "Failed") is { } failed && failed["status"]?.GetValue<string>() == "True")
                {
                    return (Readiness.Failed, $"failed: {failed["reason"]?.GetValue<string>()}: {failed["message"]?.GetValue<string>()}".TrimEnd(' ', ':'));
                }

                return Condition(status, "Complete")?["status"]?.GetValue<string>() == "True"
                    ? (Readiness.Current, "complete")
                    : (Readiness.InProgress, $"waiting for completion ({Count("succeeded")} succeeded, {Count("active")} active)");
            case "Pod":
                var phase = status?["phase"]?.GetValue<string>();
                return phase switch
                {
                    "Succeeded" => (Readiness.Current, "succeeded"),
                    "Failed" => (Readiness.Failed, $"failed: {status?["reason"]?.GetValue<string>() ?? status?["message"]?.GetValue<string>() ?? "its containers exited"}"),
                    _ when Condition(status, "Ready")?["status"]?.GetValue<string>() == "True" => (Readiness.Current, "ready"),
                    _ => (Readiness.InProgress, $"waiting for the pod to be ready ({phase ?? "Pending"})"),
                };
            case "CustomResourceDefinition":
                // As kstatus: its resource is served once established; names another resource holds never will be.
                if (Condition(status, "NamesAccepted") is { } names && names["status"]?.GetValue<string>() == "False")
                {
                    return (Readiness.Failed, $"names not accepted: {names["message"]?.GetValue<string>()}");
                }

                return Condition(status, "Established")?["status"]?.GetValue<string>() == "True"
                    ? (Readiness.Current, "established")
                    : (Readiness.InProgress, "waiting for the definition to be established");
            default:
                if (Condition(status, "Stalled") is { } stalled && stalled["status"]?.GetValue<string>() == "True")
                {
                    return (Readiness.Failed, $"stalled: {stalled["message"]?.GetValue<string>()}");
                }

                return Condition(status, "Ready") is { } ready && ready["status"]?.GetValue<string>() != "True"
                    ? (Readiness.InProgress, $"waiting for Ready ({ready["reason"]?.GetValue<string>() ?? ready["status"]?.GetValue<string>()})")
                    : (Readiness.Current, "current");
        }
    }

    private static JsonObject? Condition(JsonObject? status, string type) =>
        (status?["conditions"] as JsonArray ?? []).OfType<JsonObject>().FirstOrDefault(c => c["type"]?.GetValue<string>() == type);
}
