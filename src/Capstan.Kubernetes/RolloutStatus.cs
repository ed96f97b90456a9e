using System.Globalization;
using System.Text.Json.Nodes;

namespace Capstan.Kubernetes;

/// <summary>
/// A Deployment's rollout as <c>kubectl rollout status</c> judges it: done when the controller observed the newest
/// generation and every replica of the newest ReplicaSet is updated and available, failed when the Progressing
/// condition says ProgressDeadlineExceeded, or paused. <see cref="PodProblem"/> names the first pod-level reason. A Recreate
/// rollout is done only once no pod of an older ReplicaSet is left, terminating ones included (<see cref="OldPods"/>).
/// </summary>
public sealed record RolloutStatus(
    bool Done,
    bool Failed,
    int Desired,
    int Updated,
    int Available,
    string? NewReplicaSet,
    string Message,
    string? PodProblem,
    bool Paused = false,
    int OldPods = 0)
{
    /// <summary>
    /// The status of a Deployment from its namespace's ReplicaSets and Pods (others' are ignored: ReplicaSets are matched
    /// by owner, pods by their ReplicaSet).
    /// </summary>
    public static RolloutStatus Of(JsonObject deployment, IReadOnlyList<JsonObject> replicaSets, IReadOnlyList<JsonObject> pods)
    {
        var uid = deployment["metadata"]?["uid"]?.GetValue<string>();
        return From(deployment, [.. replicaSets.Where(rs => OwnedBy(rs, uid))], pods);
    }

    internal static bool OwnedBy(JsonObject obj, string? uid) =>
        uid is not null && (obj["metadata"]?["ownerReferences"] as JsonArray ?? []).Any(r => r?["uid"]?.GetValue<string>() == uid);

    internal static bool IsRecreate(JsonObject deployment) => deployment["spec"]?["strategy"]?["type"]?.GetValue<string>() == "Recreate";

    internal static RolloutStatus From(JsonObject deployment, IReadOnlyList<JsonObject> replicaSets, IReadOnlyList<JsonObject> pods)
    {
        var spec = deployment["spec"] as JsonObject;
        var status = deployment["status"] as JsonObject;
        var desired = Number(spec?["replicas"], 1);
        var generation = Number(deployment["metadata"]?["generation"], 0);
        var observed = Number(status?["observedGeneration"], 0);
        var newSet = FindNewReplicaSet(deployment, replicaSets);
        var newSetName = newSet?["metadata"]?["name"]?.GetValue<string>();
        var newAvailable = Number(newSet?["status"]?["availableReplicas"], 0);
        var updated = Number(status?["updatedReplicas"], 0);
        var total = Number(status?["replicas"], 0);
        var progressing = (status?["conditions"] as JsonArray ?? []).FirstOrDefault(c => c?["type"]?.GetValue<string>() == "Progressing");
        // Conditions describe the generation the controller observed: one left from an earlier rollout says nothing
        // about this one until the controller has caught up (as kubectl rollout status reads them).
        var current = observed >= generation;
        var paused = spec?["paused"]?.GetValue<bool>() == true;
        var failed = (current && progressing?["reason"]?.GetValue<string>() == "ProgressDeadlineExceeded") || paused;
        var problem = PodProblemOf(newSet, pods);
        // Recreate: the new pods start only once the old ones are gone, and a rollout that has not seen them go is not done.
        var oldSets = replicaSets.Where(rs => rs != newSet).Select(rs => rs["metadata"]?["uid"]?.GetValue<string>()).OfType<string>().ToHashSet(StringComparer.Ordinal);
        var oldPods = IsRecreate(deployment) ? pods.Count(p => (p["metadata"]?["ownerReferences"] as JsonArray ?? []).Any(r => r?["uid"]?.GetValue<string>() is { } owner && oldSets.Contains(owner))) : 0;
        var done = !paused && current && newSet is not null && updated >= desired && newAvailable >= desired && total == updated && oldPods == 0;
        var name = deployment["metadata"]?["name"]?.GetValue<string>();
        var message = done
            ? $"deployment \"{name}\" successfully rolled out"
            : paused
                ? $"deployment \"{name}\" is paused (spec.paused), so it will not roll out; resume it (kubectl rollout resume deployment/{name}) and deploy again"
            : failed
                ? $"deployment \"{name}\" exceeded its progress deadline" + (problem is null ? string.Empty : $": {problem}")
                : !current
                    ? $"waiting for deployment \"{name}\" spec update to be observed"
                    : oldPods > 0
                        ? $"waiting for deployment \"{name}\" rollout: {oldPods} old pods still terminating (Recreate)"
                        : $"waiting for deployment \"{name}\" rollout: {newAvailable} of {desired} new replicas available";
        return new RolloutStatus(done, failed, desired, updated, newAvailable, newSetName, message, problem, paused, oldPods);
    }

    /// <summary>
    /// The ReplicaSet the Deployment rolls out to, found as the controller finds it: the one whose pod template equals
    /// the Deployment's apart from the <c>pod-template-hash</c> label (the newest revision when several do), so a
    /// revision annotation that has not caught up never points at an old ReplicaSet. None until the controller made it.
    /// </summary>
    internal static JsonObject? FindNewReplicaSet(JsonObject deployment, IReadOnlyList<JsonObject> replicaSets)
    {
        var template = deployment["spec"]?["template"];
        return template is null
            ? null
            : replicaSets
                .Where(rs => JsonNode.DeepEquals(WithoutHashLabel(rs["spec"]?["template"]), template))
                .OrderByDescending(Revision)
                .FirstOrDefault();
    }

    private static JsonNode? WithoutHashLabel(JsonNode? template)
    {
        if (template?["metadata"]?["labels"] is not JsonObject labels || !labels.ContainsKey(PodTemplateHash))
        {
            return template;
        }

        var copy = template.DeepClone();
        var copyLabels = copy["metadata"]!["labels"]!.AsObject();
        copyLabels.Remove(PodTemplateHash);
        if (copyLabels.Count == 0)
        {
            copy["metadata"]!.AsObject().Remove("labels");
        }

        return copy;
    }

    private static long Revision(JsonObject obj) =>
        long.TryParse(obj["metadata"]?["annotations"]?[RevisionAnnotation]?.GetValue<string>(), NumberStyles.None, CultureInfo.InvariantCulture, out var r) ? r : 0;

    private const string PodTemplateHash = "pod-template-hash";
    private const string RevisionAnnotation = "deployment.kubernetes.io/revision";

    private static string? PodProblemOf(JsonObject? newSet, IReadOnlyList<JsonObject> pods)
    {
        var uid = newSet?["metadata"]?["uid"]?.GetValue<string>();
        foreach (var pod in pods.Where(p => (p["metadata"]?["ownerReferences"] as JsonArray ?? []).Any(r => r?["uid"]?.GetValue<string>() == uid)))
        {
            foreach (var container in (pod["status"]?["containerStatuses"] as JsonArray ?? []).Concat(pod["status"]?["initContainerStatuses"] as JsonArray ?? []))
            {
                if (container?["state"]?["waiting"] is JsonObject waiting && waiting["reason"]?.GetValue<string>() is { } reason && reason is not ("ContainerCreating" or "PodInitializing"))
                {
                    var message = waiting["message"]?.GetValue<string>();
                    return $"{reason} on {container["name"]?.GetValue<string>()}" + (message is null ? string.Empty : $": {message}");
                }

                if (container?["state"]?["terminated"] is JsonObject terminated && Number(terminated["exitCode"], 0) != 0)
                {
                    return $"{container["name"]?.GetValue<string>()} exited with code {Number(terminated["exitCode"], 0).ToString(CultureInfo.InvariantCulture)}";
                }
            }
        }

        return null;
    }

    internal static int Number(JsonNode? node, int fallback) => Core.Kubernetes.JsonNumbers.Long(node) is { } n ? (int)n : fallback;
}
