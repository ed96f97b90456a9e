using System.Text.Json.Nodes;
using Capstan.Core.Config;
using Capstan.Core.Kubernetes;
using Capstan.Core.Rendering;
using Capstan.Core.State;
using Capstan.Kubernetes;
using Capstan.Kubernetes.Watching;

namespace Capstan.Deploy;

/// <summary>What applying the maintenance gate did in one datacenter.</summary>
public sealed record GateOutcome(string Datacenter, int CronJobs, int JobsDeleted, IReadOnlyList<string> StillRunning, bool Succeeded)
{
    /// <summary>The CronJobs that are not suspended: those that can start a Job.</summary>
    public int ActiveCronJobs { get; init; }
}

/// <summary>
/// Makes the clusters follow the maintenance gate of the dynamic state: the periodic groups are deployed in every
/// datacenter (the gate renders CronJobs only in a read-write primary with maintenance enabled, so elsewhere the
/// deploy deletes them), and, when maintenance is off, every running maintenance Job (periodic and one-off script
/// groups) is deleted and waited for. Safe to run again after an interruption.
/// </summary>
public sealed class MaintenanceGateApplier(FarmModel model, DeployService deploy, IClusters clusters, IDeployObserver observer, TimeProvider? time = null)
{
    private readonly TimeProvider _clock = time ?? TimeProvider.System;

    /// <summary>Applies the gate in every datacenter connected.</summary>
    public async Task<IReadOnlyList<GateOutcome>> ApplyAsync(DynamicState state, ExecutorOptions options, TimeSpan jobTimeout, CancellationToken cancellationToken)
    {
        var outcomes = new List<GateOutcome>();
        if (options.LockToken is null)
        {
            // A gate run that finds nothing to apply never takes the lock: a dead deploy's lock would stay until its lease ends.
            await deploy.ReleaseAbandonedLockAsync(cancellationToken);
        }

        var periodic = model.Groups.Where(g => g.Traits.Periodic).ToList();
        var scriptGroups = model.Groups.Where(g => g.Traits.Serving == ServingKind.Cli).ToList();
        foreach (var dc in clusters.Datacenters.Order(StringComparer.Ordinal))
        {
            var ok = true;
            foreach (var group in periodic)
            {
                var prepared = await deploy.PrepareAsync(new DeployRequest(new RenderSelection(dc, group.Namespace), true, false, Core.Planning.Planner.DefaultConcurrency, options), state, cancellationToken);
                if (!prepared.Plan.IsNoOp)
                {
                    ok &= (await deploy.RunAsync(prepared.Plan, options, observer, cancellationToken)).Succeeded;
                }
            }

            var client = clusters[dc];
            var (cronJobs, active) = await MaintenanceReflection.CountCronJobsAsync(model, client, cancellationToken);

            var deleted = 0;
            var still = new List<string>();
            if (!state.MaintenanceEnabled)
            {
                // Deletes what still runs (a Job started by a CronJob just before it was deleted included) and waits, on
                // watches, for Jobs and pods already being deleted, until nothing runs or the timeout passes.
                var deadline = _clock.GetUtcNow() + jobTimeout;
                await using var watcher = new RolloutWatcher(client, _clock);
                foreach (var group in scriptGroups)
                {
                    var requested = new HashSet<string>(StringComparer.Ordinal);
                    while (true)
                    {
                        GatePass pass;
                        try
                        {
                            pass = await watcher.WaitAsync(
                                model.LiveNamespace(group),
                                [("batch/v1", "Job"), ("v1", "Pod")],
                                view => GatePass.Of(view, requested) is var p && (p.ToDelete.Count > 0 || p.Still.Count == 0 || _clock.GetUtcNow() > deadline) ? p : null,
                                new WaitLimits(),
                                null,
                                cancellationToken);
                        }
                        catch (ApiOutageException ex)
                        {
                            still.Add($"{model.LiveNamespace(group)}: {ex.Message}");
                            break;
                        }

                        foreach (var obj in pass.ToDelete)
                        {
                            var isJob = obj["kind"]?.GetValue<string>() == "Job";
                            requested.Add(GatePass.Key(obj));
                            if (await client.DeleteAsync(ObjectRef.Of(obj), isJob ? Propagation.Foreground : Propagation.Background, cancellationToken) && isJob)
                            {
                                deleted++;
                            }
                        }

                        if (pass.Still.Count == 0 || (pass.ToDelete.Count == 0 && _clock.GetUtcNow() > deadline))
                        {
                            still.AddRange(pass.Still);
                            break;
                        }
                    }
                }
            }

            observer.OnEvent(new DeployEvent(_clock.GetUtcNow(), null, null,
                $"{dc}: {cronJobs} CronJobs; {deleted} running Jobs deleted" + (still.Count > 0 ? $"; still present: {string.Join(", ", still)}" : string.Empty)));
            outcomes.Add(new GateOutcome(dc, cronJobs, deleted, [.. still], ok && still.Count == 0) { ActiveCronJobs = active });
        }

        return outcomes;
    }

    /// <summary>True while a Job has neither completed nor failed.</summary>
    internal static bool Running(JsonObject job) =>
        !(job["status"]?["conditions"] as JsonArray ?? []).Any(c => c?["status"]?.GetValue<string>() == "True" && c["type"]?.GetValue<string>() is "Complete" or "Failed");
}

/// <summary>What still runs in a script namespace, and what of it has yet to be asked to stop.</summary>
internal sealed record GatePass(IReadOnlyList<string> Still, IReadOnlyList<JsonObject> ToDelete)
{
    public static string Key(JsonObject obj) => $"{obj["kind"]?.GetValue<string>()}/{obj["metadata"]?["name"]?.GetValue<string>()}";

    public static GatePass Of(WatchedNamespace view, IReadOnlySet<string> requested)
    {
        var still = new List<string>();
        var toDelete = new List<JsonObject>();
        var jobs = view.Objects("batch/v1", "Job");
        foreach (var job in jobs.Where(MaintenanceGateApplier.Running))
        {
            still.Add($"{view.Namespace}/{job.Kube.Name}");
            if (job["metadata"]?["deletionTimestamp"] is null && !requested.Contains(Key(WithKind(job, "Job"))))
            {
                toDelete.Add(WithKind(job, "Job"));
            }
        }

        // A Job deleted in the background (with its CronJob) leaves pods that still run until they are gone.
        var jobNames = jobs.Select(j => j.Kube.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var pod in view.Objects("v1", "Pod").Where(p =>
            p["metadata"]?["labels"]?["job-name"]?.GetValue<string>() is { } job && !jobNames.Contains(job) && p["status"]?["phase"]?.GetValue<string>() is not ("Succeeded" or "Failed")))
        {
            still.Add($"{view.Namespace}/pod/{pod.Kube.Name}");
            if (pod["metadata"]?["deletionTimestamp"] is null && !requested.Contains(Key(WithKind(pod, "Pod"))))
            {
                toDelete.Add(WithKind(pod, "Pod"));
            }
        }

        return new GatePass(still, toDelete);
    }

    private static JsonObject WithKind(JsonObject obj, string kind) => new()
    {
        ["apiVersion"] = kind == "Job" ? "batch/v1" : "v1",
        ["kind"] = kind,
        ["metadata"] = new JsonObject { ["namespace"] = obj["metadata"]?["namespace"]?.DeepClone(), ["name"] = obj["metadata"]?["name"]?.DeepClone() },
    };
}

/// <summary>
/// Whether the clusters reflect the maintenance gate of a state: active CronJobs only in the datacenter where
/// maintenance may run. A state changed without a deploy that follows (a forced <c>state set</c>) leaves them behind.
/// </summary>
public static class MaintenanceReflection
{
    /// <summary>The periodic groups' CronJobs Capstan deployed in a cluster, and how many of them are not suspended.</summary>
    public static async Task<(int CronJobs, int Active)> CountCronJobsAsync(FarmModel model, IClusterClient client, CancellationToken cancellationToken)
    {
        var (cronJobs, active) = (0, 0);
        foreach (var group in model.Groups.Where(g => g.Traits.Periodic))
        {
            // A suspended CronJob starts nothing (an environment keeps its CronJobs, suspended, while maintenance is off).
            var items = (await client.ListAsync("batch/v1", "CronJob", model.LiveNamespace(group), "app.kubernetes.io/managed-by=capstan", cancellationToken)).Items;
            cronJobs += items.Count;
            active += items.Count(c => c["spec"]?["suspend"]?.GetValue<bool>() != true);
        }

        return (cronJobs, active);
    }

    /// <summary>Where the clusters do not reflect <paramref name="state"/>'s maintenance gate, one line each, with the command that fixes it.</summary>
    public static async Task<IReadOnlyList<string>> MismatchesAsync(FarmModel model, IClusters clusters, DynamicState state, CancellationToken cancellationToken)
    {
        if (!model.Groups.Any(g => g.Traits.Periodic))
        {
            return [];
        }

        var problems = new List<string>();
        foreach (var dc in clusters.Datacenters.Order(StringComparer.Ordinal))
        {
            var (_, active) = await CountCronJobsAsync(model, clusters[dc], cancellationToken);
            var allowed = Core.State.MaintenanceGate.AllowsCronJobs(state, dc);
            if (allowed && active == 0)
            {
                problems.Add($"maintenance should run in {dc}, but no active CronJob is there: 'capstan maintenance reconcile' makes the clusters follow the state");
            }
            else if (!allowed && active > 0)
            {
                problems.Add($"{active} active CronJob{(active == 1 ? string.Empty : "s")} in {dc}, where maintenance should not run ({Core.State.MaintenanceGate.ClosedBecause(state, dc)}): 'capstan maintenance reconcile' makes the clusters follow the state");
            }
        }

        return problems;
    }
}
