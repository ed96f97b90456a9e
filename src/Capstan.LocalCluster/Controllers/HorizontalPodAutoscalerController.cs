using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Capstan.LocalCluster.Store;

namespace Capstan.LocalCluster.Controllers;

/// <summary>
/// autoscaling/v2 HorizontalPodAutoscalers: each sets its target's replicas through the target's <c>/scale</c>, as
/// the real controller does, and so owns <c>spec.replicas</c>. No metrics run here: the wanted count holds at
/// <c>minReplicas</c>, or at a value set through <c>POST /capstan/autoscale</c>, always within min and max.
/// </summary>
internal sealed class HorizontalPodAutoscalerController(ObjectStore store, TimeProvider time, TimeSpan syncPeriod)
{
    private const string Manager = "horizontal-pod-autoscaler";
    private static readonly ResourceType Autoscalers = ResourceTypes.ByKind("HorizontalPodAutoscaler")!;
    private readonly ConcurrentDictionary<(string Ns, string Name), int> _wanted = new();
    private readonly ConcurrentDictionary<string, DateTimeOffset> _synced = new(StringComparer.Ordinal);

    /// <summary>Sets the simulated metric's answer for one autoscaler (null: back to minReplicas).</summary>
    public void Want(string ns, string name, int? replicas)
    {
        // A new answer of the metric is acted on at the next pass, not the next sync period.
        _synced.Clear();

        if (replicas is { } n)
        {
            _wanted[(ns, name)] = n;
        }
        else
        {
            _wanted.TryRemove((ns, name), out _);
        }
    }

    public void Reconcile()
    {
        var at = time.GetUtcNow();
        var autoscalers = store.ListShared(Autoscalers, null).Items;
        foreach (var gone in _synced.Keys.Except(autoscalers.Select(h => Json.Str(h["metadata"]?["uid"]) ?? string.Empty)))
        {
            _synced.TryRemove(gone, out _);
        }

        foreach (var hpa in autoscalers.Where(h => !Json.Deleting(h)))
        {
            // Once per sync period, unless the spec is new or changed (or a simulated metric was set since).
            var uid = Json.Str(hpa["metadata"]?["uid"]) ?? string.Empty;
            var seen = Json.Int(hpa["status"]?["observedGeneration"], -1) == Json.Generation(hpa);
            if (seen && _synced.TryGetValue(uid, out var last) && at - last < syncPeriod)
            {
                continue;
            }

            _synced[uid] = at;
            var ns = Json.Namespace(hpa)!;
            var spec = hpa["spec"] as JsonObject ?? [];
            var targetRef = spec["scaleTargetRef"] as JsonObject ?? [];
            // The target by apiVersion and kind (a custom resource with a scale subresource too), or a built-in kind alone.
            var type = Json.Str(targetRef["apiVersion"]) is { } apiVersion
                ? store.Types.ByKind(apiVersion, Json.Str(targetRef["kind"]))
                : ResourceTypes.ByKind(Json.Str(targetRef["kind"]) ?? string.Empty);
            var paths = type?.Custom?.Scale ?? new ScalePaths(".spec.replicas", ".status.replicas", null);
            var min = Json.Int(spec["minReplicas"], 1);
            var max = Json.Int(spec["maxReplicas"], min);
            var wanted = Math.Clamp(_wanted.GetValueOrDefault((ns, Json.Name(hpa)), min), min, max);
            var target = type is { HasScale: true } ? store.GetShared(type, ns, Json.Str(targetRef["name"]) ?? string.Empty) : null;
            var status = new JsonObject
            {
                ["currentReplicas"] = target is null ? 0 : Json.Int(CustomResource.At(target, paths.StatusReplicas)),
                ["desiredReplicas"] = wanted,
                ["lastScaleTime"] = hpa["status"]?["lastScaleTime"]?.DeepClone(),
                ["observedGeneration"] = Json.Generation(hpa),
            };
            var now = Json.Stamp(time.GetUtcNow());
            if (target is null)
            {
                Json.SetCondition(status, "AbleToScale", "False", "FailedGetScale", $"the HPA controller was unable to get the target's current scale: {Json.Str(targetRef["kind"])} \"{Json.Str(targetRef["name"])}\" not found", now);
            }
            else
            {
                Json.SetCondition(status, "AbleToScale", "True", "SucceededRescale", "the HPA controller was able to update the target scale", now);
                if (Json.Int(CustomResource.At(target, paths.SpecReplicas), 1) != wanted)
                {
                    var patch = new JsonObject();
                    CustomResource.Set(patch, paths.SpecReplicas, wanted);
                    store.MergePatch(type!, ns, Json.Name(target), patch, statusOnly: false, Manager);
                    status["lastScaleTime"] = now;
                }
            }

            foreach (var condition in (hpa["status"]?["conditions"] as JsonArray ?? []).OfType<JsonObject>())
            {
                var existing = Json.Condition(status, Json.Str(condition["type"]) ?? string.Empty);
                if (existing is not null && Json.Str(existing["status"]) == Json.Str(condition["status"]))
                {
                    existing["lastTransitionTime"] = condition["lastTransitionTime"]?.DeepClone();
                }
            }

            // autoscaling/v2's conditions have no lastUpdateTime: without it the status is the same from one pass to the
            // next, so it is written only when something changed (a client's read-modify-write does not lose to it).
            foreach (var condition in (status["conditions"] as JsonArray ?? []).OfType<JsonObject>())
            {
                condition.Remove("lastUpdateTime");
            }

            if (!JsonNode.DeepEquals(status, hpa["status"]))
            {
                store.Update(Autoscalers, ns, Json.Name(hpa), new JsonObject { ["status"] = status }, statusOnly: true, Manager);
            }
        }
    }
}
