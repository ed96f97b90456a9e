using System.Text.Json.Nodes;
using Capstan.LocalCluster.Store;

namespace Capstan.LocalCluster.Controllers;

/// <summary>Runs Jobs to completion: one pod at a time, retried up to backoffLimit, then Complete or Failed; removes finished Jobs after ttlSecondsAfterFinished.</summary>
internal sealed class JobController(ObjectStore store, TimeProvider time, EventRecorder events)
{
    private const string Manager = "kube-controller-manager";
    private static readonly ResourceType Jobs = ResourceTypes.ByKind("Job")!;
    private static readonly ResourceType Pods = ResourceTypes.ByKind("Pod")!;

    public void Reconcile()
    {
        // Pods are grouped by owner only for the namespaces that have Jobs, when a pass first needs them.
        var podsByNamespace = new Dictionary<string, Dictionary<string, List<JsonObject>>>(StringComparer.Ordinal);
        Dictionary<string, List<JsonObject>> PodsIn(string ns)
        {
            if (!podsByNamespace.TryGetValue(ns, out var byOwner))
            {
                byOwner = ReplicaSetController.ByOwner(store.ListShared(Pods, ns).Items);
                podsByNamespace[ns] = byOwner;
            }

            return byOwner;
        }

        foreach (var job in store.ListShared(Jobs, null).Items)
        {
            if (Json.Deleting(job))
            {
                continue;
            }

            var ns = Json.Namespace(job)!;
            var uid = Json.Uid(job);
            var pods = PodsIn(ns).GetValueOrDefault(uid, []);
            var succeeded = pods.Count(p => Json.Str(p["status"]?["phase"]) == "Succeeded");
            var failed = pods.Count(p => Json.Str(p["status"]?["phase"]) == "Failed");
            var active = pods.Count - succeeded - failed;
            var status = job["status"]?.DeepClone() as JsonObject ?? [];
            var now = time.GetUtcNow();
            var finished = Json.Condition(status, "Complete") is not null || Json.Condition(status, "Failed") is not null;
            var backoffLimit = Json.Int(job["spec"]?["backoffLimit"], 6);
            var completions = Json.Int(job["spec"]?["completions"], 1);

            if (!finished)
            {
                status["startTime"] ??= Json.Stamp(now);
                if (succeeded >= completions)
                {
                    status["completionTime"] = Json.Stamp(now);
                    Json.SetCondition(status, "Complete", "True", "Completed", "Job completed", Json.Stamp(now));
                    events.Normal(job, "Completed", "Job completed", "job-controller");
                }
                else if (failed > backoffLimit)
                {
                    Json.SetCondition(status, "Failed", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit", Json.Stamp(now));
                    events.Warning(job, "BackoffLimitExceeded", "Job has reached the specified backoff limit", "job-controller");
                }
                else if (active == 0 && !(job["spec"]?["suspend"]?.GetValue<bool>() ?? false))
                {
                    CreatePod(job);
                    active = 1;
                }
            }
            else if (Json.Int(job["spec"]?["ttlSecondsAfterFinished"], -1) is var ttl and >= 0 &&
                     Json.Time(status["completionTime"] ?? Json.Condition(status, "Failed")?["lastTransitionTime"]) is { } finishedAt &&
                     now >= finishedAt + TimeSpan.FromSeconds(ttl))
            {
                store.Delete(Jobs, ns, Json.Name(job), "Background");
                continue;
            }

            status["active"] = active;
            status["succeeded"] = succeeded;
            status["failed"] = failed;
            status["ready"] = pods.Count(p => ReplicaSetController.Ready(p) == 1);
            if (!JsonNode.DeepEquals(status, job["status"]))
            {
                store.Update(Jobs, ns, Json.Name(job), new JsonObject { ["status"] = status }, statusOnly: true, Manager);
            }
        }
    }

    private void CreatePod(JsonObject job)
    {
        var ns = Json.Namespace(job)!;
        var template = job["spec"]?["template"] as JsonObject ?? [];
        var labels = template["metadata"]?["labels"]?.DeepClone() as JsonObject ?? [];
        labels["batch.kubernetes.io/job-name"] = Json.Name(job);
        labels["job-name"] = Json.Name(job);
        labels["batch.kubernetes.io/controller-uid"] = Json.Uid(job);
        var name = Json.Name(job);
        var pod = new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Pod",
            ["metadata"] = new JsonObject
            {
                ["name"] = $"{(name.Length > 57 ? name[..57] : name)}-{Json.Suffix()}",
                ["namespace"] = ns,
                ["labels"] = labels,
                ["annotations"] = template["metadata"]?["annotations"]?.DeepClone(),
                ["ownerReferences"] = new JsonArray(Json.OwnerReference(job)),
            },
            ["spec"] = template["spec"]?.DeepClone(),
        };
        try
        {
            var created = store.Create(Pods, ns, pod, Manager);
            events.Normal(job, "SuccessfulCreate", $"Created pod: {Json.Name(created)}", "job-controller");
        }
        catch (ApiError refused) when (refused.Code == 403 && refused.Message.Contains("is forbidden:", StringComparison.Ordinal))
        {
            // Refused by a quota or a LimitRange: said on the Job as the real controller says it; the next pass tries again.
            events.Warning(job, "FailedCreate", $"Error creating: {refused.Message}", "job-controller");
        }
        catch (ApiError)
        {
            // Namespace terminating: the Job goes with it.
        }
    }
}
