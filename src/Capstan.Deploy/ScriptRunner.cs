using System.Text.Json.Nodes;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Kubernetes;
using Capstan.Core.Rendering;
using Capstan.Core.State;
using Capstan.Kubernetes;
using Capstan.Kubernetes.Watching;

namespace Capstan.Deploy;

/// <summary>A maintenance script to run once.</summary>
public sealed record ScriptRequest(string Script, string? Wiki, IReadOnlyList<string> Arguments, string? Datacenter, string? Image, string User);

/// <summary>The dynamic state does not allow the run now (read-only, maintenance disabled, not the primary).</summary>
public sealed class ScriptNotAllowedException(string message) : CapstanException(RefusalKind.NotAllowed, message);

/// <summary>A started run.</summary>
public sealed record ScriptStarted(string Datacenter, string Namespace, string Release, string Job, IReadOnlyList<string> Argv);

/// <summary>How a followed run ended.</summary>
public sealed record ScriptOutcome(bool Succeeded, int ExitCode, string Detail);

/// <summary>
/// Runs one-off MediaWiki maintenance scripts as Jobs of the script group (mw-script): a release of its own with a
/// random eight-character name, never retried, labelled with the script and the user. Before anything is created the
/// dynamic state must allow it — the primary datacenter (elsewhere only with an explicit image), read-write, maintenance
/// enabled — and it is checked again once the Job exists, so a switchover that started meanwhile wins.
/// </summary>
public sealed class ScriptRunner(FarmModel model, FarmRenderer renderer, IClusters clusters)
{
    /// <summary>Why the state does not allow a run in <paramref name="dc"/> now, or null when it does.</summary>
    public static string? Refusal(DynamicState state, string dc, bool imageGiven)
    {
        if (dc != state.PrimaryDc && !imageGiven)
        {
            return $"{dc} is not the primary datacenter ({state.PrimaryDc} is): scripts run in the primary, or pass --image to run one elsewhere on purpose";
        }

        if (state.IsReadOnly(dc))
        {
            return $"{dc} is read-only ({state.ReadOnly[dc]}): maintenance scripts cannot run now";
        }

        return state.MaintenanceEnabled
            ? null
            : "maintenance is disabled" + (state.MaintenanceReason is { } r ? $" ({r})" : string.Empty) + ": maintenance scripts cannot run now";
    }

    /// <summary>The script group: the cli group without CronJobs.</summary>
    public ServerGroup ScriptGroup() =>
        model.Groups.FirstOrDefault(g => g.Traits.Serving == ServingKind.Cli && !g.Traits.Periodic)
        ?? throw new UserInputException("the repo has no script group (a group named like mw-script, without CronJobs)");

    /// <summary>
    /// Checks <paramref name="state"/>, renders and creates the run's objects, then reads the state again with
    /// <paramref name="readState"/>; throws <see cref="ScriptNotAllowedException"/> when the state forbids the run.
    /// </summary>
    public async Task<ScriptStarted> StartAsync(ScriptRequest request, DynamicState state, Func<CancellationToken, Task<DynamicState>> readState, CancellationToken cancellationToken)
    {
        var dc = request.Datacenter ?? state.PrimaryDc;
        if (!model.DatacenterNames.Contains(dc))
        {
            throw new UserInputException($"unknown datacenter '{dc}' (known: {string.Join(", ", model.DatacenterNames)})");
        }

        if (Refusal(state, dc, request.Image is not null) is { } refusal)
        {
            throw new ScriptNotAllowedException(refusal);
        }

        var group = ScriptGroup();
        var client = clusters[dc];
        await PreflightAsync(client, dc, group, cancellationToken);

        var run = new ScriptRun(ScriptRun.NewReleaseName(), request.Script, request.Wiki, request.Arguments, request.User);
        var rendered = renderer.RenderScriptRun(dc, group, run, state, request.Image);
        var job = rendered.Objects.OfType<Job>().Single();
        var support = rendered.Objects.Where(o => o is not Job).ToList();
        foreach (var obj in support)
        {
            await client.ApplyAsync(KubeSerializer.ToNode(obj), false, false, cancellationToken);
        }

        var created = await client.ApplyAsync(KubeSerializer.ToNode(job), false, false, cancellationToken);

        // The run's ConfigMaps and Secrets belong to its Job: they go when the Job goes (its TTL, or a delete).
        var owner = new JsonObject
        {
            ["apiVersion"] = "batch/v1",
            ["kind"] = "Job",
            ["name"] = job.Metadata.Name,
            ["uid"] = created["metadata"]!["uid"]!.GetValue<string>(),
        };
        foreach (var obj in support)
        {
            await client.PatchAsync(
                new ObjectRef(obj.ApiVersion, obj.Kind, obj.Metadata.Namespace, obj.Metadata.Name),
                new JsonObject { ["metadata"] = new JsonObject { ["ownerReferences"] = new JsonArray(owner.DeepClone()) } },
                "capstan-mwscript",
                cancellationToken);
        }

        // The state may have changed while the run was being created (a switchover stopping maintenance): check again.
        var now = await readState(cancellationToken);
        if (Refusal(now, dc, request.Image is not null) is { } late)
        {
            await client.DeleteAsync(new ObjectRef("batch/v1", "Job", group.Namespace, job.Metadata.Name), Propagation.Foreground, CancellationToken.None);
            throw new ScriptNotAllowedException(late + " (it changed while the run was starting; the run was cancelled)");
        }

        return new ScriptStarted(dc, group.Namespace, run.Release, job.Metadata.Name, run.Argv);
    }

    /// <summary>
    /// Waits, on watches of the run's namespace, for the run's Job to end, passing log lines of the script's container
    /// (where the cluster has them) and status changes to <paramref name="output"/>.
    /// </summary>
    public async Task<ScriptOutcome> FollowAsync(ScriptStarted started, Action<string> output, TimeProvider time, CancellationToken cancellationToken)
    {
        var client = clusters[started.Datacenter];
        var container = $"mediawiki-{started.Release}-app";
        await using var watcher = new RolloutWatcher(client, time);
        string? lastPhase = null;
        var lastSeen = string.Empty;
        DateTimeOffset? finishedAt = null;
        var logsTried = false;
        while (true)
        {
            // Wake when the Job goes or ends, or its newest pod changes phase.
            var (job, pod) = await watcher.WaitAsync(
                started.Namespace,
                [("batch/v1", "Job"), ("v1", "Pod")],
                view =>
                {
                    var job = view.Get("batch/v1", "Job", started.Job);
                    var pod = view.Objects("v1", "Pod")
                        .Where(p => p["metadata"]?["labels"]?["job-name"]?.GetValue<string>() == started.Job)
                        .OrderByDescending(p => p["metadata"]?["creationTimestamp"]?.GetValue<string>(), StringComparer.Ordinal).FirstOrDefault();
                    var seen = $"{job is null}|{pod?["metadata"]?["name"]}|{pod?["status"]?["phase"]}|{Finished(job)}";
                    // The Job's end and its pod's end come on different watches: report the end once both are seen,
                    // or a few seconds after the Job's (a pod on a lost node may never say).
                    var podEnded = pod is not null && (pod["status"]?["phase"]?.GetValue<string>() is "Succeeded" or "Failed" || pod["metadata"]?["deletionTimestamp"] is not null);
                    if (Finished(job) is null)
                    {
                        finishedAt = null;
                    }
                    else
                    {
                        finishedAt ??= time.GetUtcNow();
                    }

                    var podBehind = finishedAt is { } at && !podEnded && time.GetUtcNow() - at < PodGrace;
                    if (podBehind || (seen == lastSeen && finishedAt is null))
                    {
                        return null;
                    }

                    lastSeen = seen;
                    return new Tuple<JsonObject?, JsonObject?>(job, pod);
                },
                new WaitLimits(),
                output,
                cancellationToken);
            if (job is null)
            {
                throw new ScriptNotAllowedException($"the Job {started.Namespace}/{started.Job} was deleted before it finished (maintenance stopped?)");
            }

            var phase = pod?["status"]?["phase"]?.GetValue<string>();
            if (pod is not null && phase != lastPhase)
            {
                output($"pod {pod.Kube.Name}: {phase ?? "Pending"}");
                lastPhase = phase;
            }

            if (pod is not null && !logsTried && phase is "Running" or "Succeeded" or "Failed")
            {
                logsTried = true;
                try
                {
                    await foreach (var line in client.ReadLogAsync(started.Namespace, pod.Kube.Name, container, follow: true, cancellationToken))
                    {
                        output(line);
                    }
                }
                catch (KubeApiException ex)
                {
                    output($"(no log: {ex.Message}; following the Job's status instead)");
                }
            }

            if (Finished(job) == "Complete")
            {
                return new ScriptOutcome(true, 0, "the script finished");
            }

            if (Finished(job) == "Failed")
            {
                var failed = (job["status"]?["conditions"] as JsonArray ?? []).First(c => c?["type"]?.GetValue<string>() == "Failed" && c["status"]?.GetValue<string>() == "True")!;
                var code = ExitCodeOf(pod, container);
                return new ScriptOutcome(false, code is null or 0 ? 1 : code.Value, $"the script failed: {failed["reason"]?.GetValue<string>()}{(code is null ? string.Empty : $" (exit code {code})")}");
            }
        }
    }

    /// <summary>How long the end of a Job's pod is waited for once the Job has ended.</summary>
    private static readonly TimeSpan PodGrace = TimeSpan.FromSeconds(5);

    /// <summary>The condition that ended a Job (Complete or Failed), or null while it runs.</summary>
    private static string? Finished(JsonObject? job) =>
        (job?["status"]?["conditions"] as JsonArray ?? [])
            .Where(c => c?["status"]?.GetValue<string>() == "True" && c["type"]?.GetValue<string>() is "Complete" or "Failed")
            .Select(c => c!["type"]!.GetValue<string>())
            .FirstOrDefault();

    private async Task PreflightAsync(IClusterClient client, string dc, ServerGroup group, CancellationToken cancellationToken)
    {
        var records = await ReleaseRecords.ListAsync(client, dc, group.Namespace, cancellationToken, deployedOnly: true);
        var missing = group.Releases.Where(r => r.RunsIn(dc) && !records.Keys.Any(k => k.Namespace == group.Namespace && k.Release == r.Name)).ToList();
        if (missing.Count > 0)
        {
            throw new PreflightException([.. missing.Select(r =>
                $"a script run in {dc} needs {group.Namespace}/{r.Name}, which is not deployed; create it with 'capstan deploy --repo {model.RepoRoot} --dc {dc} --namespace {group.Namespace}'")]);
        }
    }

    private static int? ExitCodeOf(JsonObject? pod, string container) =>
        (pod?["status"]?["containerStatuses"] as JsonArray ?? [])
            .Where(c => c?["name"]?.GetValue<string>() == container)
            .Select(c => c?["state"]?["terminated"]?["exitCode"]?.GetValue<int>())
            .FirstOrDefault();
}
