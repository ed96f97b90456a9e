using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Controllers;

/// <content>Graceful termination of deleted pods.</content>
internal sealed partial class Kubelet
{
    /// <summary>
    /// A deleted pod: Terminating (containers stopping, not ready) for its grace period as the timing allows, then
    /// removed once no finalizer holds it.
    /// </summary>
    private void Terminate(JsonObject pod, DateTimeOffset now)
    {
        var ns = Json.Namespace(pod)!;
        var name = Json.Name(pod);
        var grace = TimeSpan.FromSeconds(Json.Int(pod["metadata"]?["deletionGracePeriodSeconds"]));
        var started = (Json.Time(pod["metadata"]?["deletionTimestamp"]) ?? now) - grace;
        var stopAfter = grace < timing.PodTerminate ? grace : timing.PodTerminate;
        if (now - started >= stopAfter)
        {
            if (store.Remove(Pods, ns, name))
            {
                _firstSeen.TryRemove(Json.Uid(pod), out _);
            }

            return;
        }

        if (pod["status"] is JsonObject status && Json.Str(Json.Condition(status, "Ready")?["reason"]) != "PodTerminating")
        {
            foreach (var container in status["containerStatuses"] as JsonArray ?? [])
            {
                events.Normal(pod, "Killing", $"Stopping container {Json.Str(container?["name"])}", "kubelet");
            }

            var stopping = (JsonObject)status.DeepClone();
            foreach (var container in (stopping["containerStatuses"] as JsonArray ?? []).OfType<JsonObject>())
            {
                container["ready"] = false;
            }

            Json.SetCondition(stopping, "Ready", "False", "PodTerminating", "the pod is being deleted", Json.Stamp(now));
            Json.SetCondition(stopping, "ContainersReady", "False", "PodTerminating", "the pod is being deleted", Json.Stamp(now));
            store.Update(Pods, ns, name, new JsonObject { ["status"] = stopping }, statusOnly: true, Manager);
        }
    }
}
