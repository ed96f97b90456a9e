using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Controllers;

/// <content>The Events the kubelet records.</content>
internal sealed partial class Kubelet
{
    /// <summary>The Events a real kubelet records when a container's state changes: pulls, starts, back-offs.</summary>
    private void RecordTransitions(JsonObject pod, JsonObject? before, JsonObject after)
    {
        var specs = (pod["spec"]?["containers"] as JsonArray ?? []).Concat(pod["spec"]?["initContainers"] as JsonArray ?? []).OfType<JsonObject>()
            .ToDictionary(c => Json.Str(c["name"]) ?? string.Empty, StringComparer.Ordinal);
        var old = (before?["containerStatuses"] as JsonArray ?? []).Concat(before?["initContainerStatuses"] as JsonArray ?? []).OfType<JsonObject>()
            .ToDictionary(c => Json.Str(c["name"]) ?? string.Empty, StringComparer.Ordinal);
        foreach (var current in (after["containerStatuses"] as JsonArray ?? []).Concat(after["initContainerStatuses"] as JsonArray ?? []).OfType<JsonObject>())
        {
            var name = Json.Str(current["name"]) ?? string.Empty;
            var image = Json.Str(specs.GetValueOrDefault(name)?["image"]) ?? string.Empty;
            var previous = old.GetValueOrDefault(name);
            var was = Json.Str(previous?["state"]?["waiting"]?["reason"]);
            var now = Json.Str(current["state"]?["waiting"]?["reason"]);
            if (current["state"]?["running"] is not null && previous?["state"]?["running"] is null)
            {
                // With pulls simulated, the pull itself recorded how the image got there.
                if (Pulls is null)
                {
                    events.Normal(pod, "Pulled", $"Container image \"{image}\" already present on machine", "kubelet");
                }

                events.Normal(pod, "Created", $"Created container: {name}", "kubelet");
                events.Normal(pod, "Started", $"Started container {name}", "kubelet");
            }
            else if (now == "ErrImagePull" && was != now)
            {
                events.Normal(pod, "Pulling", $"Pulling image \"{image}\"", "kubelet");
                events.Warning(pod, "Failed", $"Failed to pull image \"{image}\": {PullError(image)}", "kubelet");
                events.Warning(pod, "Failed", "Error: ErrImagePull", "kubelet");
            }
            else if (now == "ImagePullBackOff" && was != now)
            {
                events.Normal(pod, "BackOff", $"Back-off pulling image \"{image}\"", "kubelet");
                events.Warning(pod, "Failed", "Error: ImagePullBackOff", "kubelet");
            }
            else if (now == "CrashLoopBackOff" && Json.Int(current["restartCount"]) > Json.Int(previous?["restartCount"]))
            {
                events.Warning(pod, "BackOff", $"Back-off restarting failed container {name} in pod {Json.Name(pod)}_{Json.Namespace(pod)}({Json.Uid(pod)})", "kubelet");
            }
            else if (now == "CreateContainerConfigError" && was != now)
            {
                events.Warning(pod, "Failed", $"Error: {Json.Str(current["state"]?["waiting"]?["message"])}", "kubelet");
            }
        }
    }
}
