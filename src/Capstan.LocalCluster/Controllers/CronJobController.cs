using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Core.Config;
using Capstan.LocalCluster.Store;

namespace Capstan.LocalCluster.Controllers;

/// <summary>
/// Creates Jobs from CronJobs at their scheduled times against the injected clock, honouring suspend,
/// concurrencyPolicy (Allow, Forbid, Replace) and the history limits; like the real controller it starts only the most
/// recent missed run.
/// </summary>
internal sealed class CronJobController(ObjectStore store, TimeProvider time, EventRecorder events)
{
    private const string Manager = "kube-controller-manager";
    private static readonly ResourceType CronJobs = ResourceTypes.ByKind("CronJob")!;
    private static readonly ResourceType Jobs = ResourceTypes.ByKind("Job")!;

    public void Reconcile()
    {
        var jobsByOwner = ReplicaSetController.ByOwner(store.ListShared(Jobs, null).Items);
        var now = time.GetUtcNow();
        foreach (var cronJob in store.ListShared(CronJobs, null).Items)
        {
            if (Json.Deleting(cronJob))
            {
                continue;
            }

            var ns = Json.Namespace(cronJob)!;
            var uid = Json.Uid(cronJob);
            var spec = Json.Obj(cronJob, "spec");
            var jobs = jobsByOwner.GetValueOrDefault(uid, []).Where(j => Json.Namespace(j) == ns && !Json.Deleting(j)).ToList();
            var running = jobs.Where(j => !Finished(j)).ToList();
            var status = cronJob["status"]?.DeepClone() as JsonObject ?? [];

            if (!(spec["suspend"]?.GetValue<bool>() ?? false) && CronSchedule.TryParse(Json.Str(spec["schedule"]) ?? string.Empty, out var schedule, out _))
            {
                var last = Json.Time(status["lastScheduleTime"]) ?? Json.Time(cronJob["metadata"]?["creationTimestamp"]) ?? now;
                DateTimeOffset? due = null;
                for (var next = schedule.NextAfter(last); next <= now; next = schedule.NextAfter(next))
                {
                    due = next;
                }

                if (due is { } scheduled)
                {
                    var policy = Json.Str(spec["concurrencyPolicy"]) ?? "Allow";
                    if (policy == "Forbid" && running.Count > 0)
                    {
                        // Skipped, and not retried later: the next run is the next schedule.
                        status["lastScheduleTime"] = Json.Stamp(scheduled);
                    }
                    else
                    {
                        if (policy == "Replace")
                        {
                            foreach (var job in running)
                            {
                                store.Delete(Jobs, ns, Json.Name(job), "Background");
                                events.Normal(cronJob, "SuccessfulDelete", $"Deleted job {Json.Name(job)}", "cronjob-controller");
                            }

                            running.Clear();
                        }

                        var created = CreateJob(cronJob, scheduled);
                        if (created is not null)
                        {
                            running.Add(created);
                        }

                        status["lastScheduleTime"] = Json.Stamp(scheduled);
                    }
                }
            }

            CleanUpHistory(jobs, Json.Int(spec["successfulJobsHistoryLimit"], 3), Json.Int(spec["failedJobsHistoryLimit"], 1));
            status["active"] = new JsonArray([.. running.Select(j => (JsonNode)new JsonObject
            {
                ["kind"] = "Job",
                ["namespace"] = ns,
                ["name"] = Json.Name(j),
                ["uid"] = Json.Uid(j),
                ["apiVersion"] = "batch/v1",
            })]);
            if (jobs.Where(j => Json.Condition(j["status"] as JsonObject, "Complete") is not null).Select(j => Json.Str(j["status"]?["completionTime"])).Max(StringComparer.Ordinal) is { } lastSuccess)
            {
                status["lastSuccessfulTime"] = lastSuccess;
            }

            if (!JsonNode.DeepEquals(status, cronJob["status"]))
            {
                store.Update(CronJobs, ns, Json.Name(cronJob), new JsonObject { ["status"] = status }, statusOnly: true, Manager);
            }
        }
    }

    private JsonObject? CreateJob(JsonObject cronJob, DateTimeOffset scheduled)
    {
        var ns = Json.Namespace(cronJob)!;
        var template = cronJob["spec"]?["jobTemplate"] as JsonObject ?? [];
        var minutes = (scheduled.ToUnixTimeSeconds() / 60).ToString(CultureInfo.InvariantCulture);
        var labels = template["metadata"]?["labels"]?.DeepClone() as JsonObject ?? [];
        var job = new JsonObject
        {
            ["apiVersion"] = "batch/v1",
            ["kind"] = "Job",
            ["metadata"] = new JsonObject
            {
                ["name"] = $"{Json.Name(cronJob)}-{minutes}",
                ["namespace"] = ns,
                ["labels"] = labels,
                ["annotations"] = new JsonObject { ["batch.kubernetes.io/cronjob-scheduled-timestamp"] = scheduled.UtcDateTime.ToString("O", CultureInfo.InvariantCulture) },
                ["ownerReferences"] = new JsonArray(Json.OwnerReference(cronJob)),
            },
            ["spec"] = template["spec"]?.DeepClone(),
        };
        try
        {
            var created = store.Create(Jobs, ns, job, Manager);
            events.Normal(cronJob, "SuccessfulCreate", $"Created job {Json.Name(created)}", "cronjob-controller");
            return created;
        }
        catch (ApiError)
        {
            return null;
        }
    }

    private void CleanUpHistory(List<JsonObject> jobs, int successfulLimit, int failedLimit)
    {
        var succeeded = jobs.Where(j => Json.Condition(j["status"] as JsonObject, "Complete") is not null).OrderBy(j => Json.Str(j["metadata"]?["creationTimestamp"]), StringComparer.Ordinal).ThenBy(Json.Name, StringComparer.Ordinal).ToList();
        var failed = jobs.Where(j => Json.Condition(j["status"] as JsonObject, "Failed") is not null).OrderBy(j => Json.Str(j["metadata"]?["creationTimestamp"]), StringComparer.Ordinal).ThenBy(Json.Name, StringComparer.Ordinal).ToList();
        foreach (var job in succeeded.Take(Math.Max(0, succeeded.Count - successfulLimit)).Concat(failed.Take(Math.Max(0, failed.Count - failedLimit))))
        {
            store.Delete(Jobs, Json.Namespace(job), Json.Name(job), "Background");
        }
    }

    private static bool Finished(JsonObject job) =>
        Json.Condition(job["status"] as JsonObject, "Complete") is not null || Json.Condition(job["status"] as JsonObject, "Failed") is not null;
}
