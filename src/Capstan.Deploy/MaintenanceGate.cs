using System.Text.Json.Nodes;
using Capstan.Core.Config;
using Capstan.Core.Rendering;
using Capstan.Core.State;
using Capstan.Kubernetes;

namespace Capstan.Deploy;

/// <summary>What applying the maintenance gate did in one datacenter.</summary>
public sealed record GateOutcome(string Datacenter, int CronJobs, int JobsDeleted, IReadOnlyList<string> StillRunning, bool Succeeded);

/// <summary>
/// Makes the clusters follow the maintenance gate of the dynamic state: the periodic groups are deployed in every
/// datacenter (the gate renders CronJobs only in a read-write primary with maintenance enabled, so elsewhere the
/// deploy deletes them), and, when maintenance is off, every running maintenance Job (periodic and one-off script
/// groups) is deleted and waited for. Safe to run again after an interruption.
/// </summary>
public sealed class MaintenanceGateApplier(FarmModel model, DeployService deploy, ClusterSet clusters, IDeployObserver observer)
{
    /// <summary>Applies the gate in every datacenter connected.</summary>
    public async Task<IReadOnlyList<GateOutcome>> ApplyAsync(DynamicState state, ExecutorOptions options, TimeSpan jobTimeout, CancellationToken cancellationToken)
    {
        var outcomes = new List<GateOutcome>();
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
            var cronJobs = 0;
            foreach (var group in periodic)
            {
                cronJobs += (await client.ListAsync("batch/v1", "CronJob", group.Namespace, "app.kubernetes.io/managed-by=capstan", cancellationToken)).Items.Count;
            }

            var deleted = 0;
            var still = new List<string>();
            if (!state.MaintenanceEnabled)
            {
                // Every pass deletes what still runs (a Job started by a CronJob just before it was deleted included)
                // and waits for Jobs already being deleted, until nothing runs or the timeout passes.
                var deadline = DateTimeOffset.UtcNow + jobTimeout;
                while (true)
                {
                    still.Clear();
                    foreach (var group in scriptGroups)
                    {
                        var jobs = (await client.ListAsync("batch/v1", "Job", group.Namespace, null, cancellationToken)).Items;
                        foreach (var job in jobs.Where(Running))
                        {
                            still.Add($"{group.Namespace}/{job["metadata"]!["name"]!.GetValue<string>()}");
                            if (job["metadata"]?["deletionTimestamp"] is null && await client.DeleteAsync(ObjectRef.Of(job), Propagation.Foreground, cancellationToken))
                            {
                                deleted++;
                            }
                        }

                        // A Job deleted in the background (with its CronJob) leaves pods that still run until they are gone.
                        var jobNames = jobs.Select(j => j["metadata"]!["name"]!.GetValue<string>()).ToHashSet(StringComparer.Ordinal);
                        foreach (var pod in (await client.ListAsync("v1", "Pod", group.Namespace, "job-name", cancellationToken)).Items
                            .Where(p => p["status"]?["phase"]?.GetValue<string>() is not ("Succeeded" or "Failed")))
                        {
                            var job = pod["metadata"]?["labels"]?["job-name"]?.GetValue<string>() ?? string.Empty;
                            if (jobNames.Contains(job))
                            {
                                continue;
                            }

                            still.Add($"{group.Namespace}/pod/{pod["metadata"]!["name"]!.GetValue<string>()}");
                            if (pod["metadata"]?["deletionTimestamp"] is null)
                            {
                                await client.DeleteAsync(ObjectRef.Of(pod), Propagation.Background, cancellationToken);
                            }
                        }
                    }

                    if (still.Count == 0 || DateTimeOffset.UtcNow > deadline)
                    {
                        break;
                    }

                    await Task.Delay(TimeSpan.FromMilliseconds(50), cancellationToken);
                }
            }

            observer.OnEvent(new DeployEvent(DateTimeOffset.UtcNow, null, null,
                $"{dc}: {cronJobs} CronJobs; {deleted} running Jobs deleted" + (still.Count > 0 ? $"; still present: {string.Join(", ", still)}" : string.Empty)));
            outcomes.Add(new GateOutcome(dc, cronJobs, deleted, [.. still], ok && still.Count == 0));
        }

        return outcomes;
    }

    /// <summary>True while a Job has neither completed nor failed.</summary>
    internal static bool Running(JsonObject job) =>
        !(job["status"]?["conditions"] as JsonArray ?? []).Any(c => c?["status"]?.GetValue<string>() == "True" && c["type"]?.GetValue<string>() is "Complete" or "Failed");
}
