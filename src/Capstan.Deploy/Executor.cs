using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Capstan.Core.Planning;
using Capstan.Core.Rendering;
using Capstan.Kubernetes;

namespace Capstan.Deploy;

/// <summary>How the executor runs a plan.</summary>
public sealed record ExecutorOptions
{
    /// <summary>Who deploys (recorded).</summary>
    public string Actor { get; init; } = "unknown";

    /// <summary>Why (recorded).</summary>
    public string Reason { get; init; } = string.Empty;

    /// <summary>Leave a failed deploy as it is instead of rolling back.</summary>
    public bool NoRollback { get; init; }

    /// <summary>Take fields from other field managers instead of failing on a conflict.</summary>
    public bool ForceConflicts { get; init; }

    /// <summary>How often readiness is checked.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// How long a Deployment may go without progress (no more updated or available replicas) before the executor gives
    /// up on it, as its progressDeadlineSeconds does on the server: a long rollout that keeps progressing is never cut.
    /// </summary>
    public TimeSpan NoProgressTimeout { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>An optional cap on the whole wait of one release, progress or not; null for none.</summary>
    public TimeSpan? OverallTimeout { get; init; }

    /// <summary>The lease of the deploy lock (kept alive every third of it; losing it stops the deploy).</summary>
    public TimeSpan LockTtl { get; init; } = DeployLock.DefaultTtl;

    /// <summary>How long the API may stay unreachable while a rollout is waited for: the wait pauses, then resumes.</summary>
    public TimeSpan ApiOutageTolerance { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// The token of an operator lock this deploy runs under (a switchover holds the deploy lock for its whole runbook and
    /// deploys inside it); null takes the lock as usual.
    /// </summary>
    public string? LockToken { get; init; }
}

/// <summary>
/// Runs a plan: releases start when their needs and earlier stages are done (at most the plan's concurrency per
/// cluster), objects are applied with server-side apply, objects no longer rendered are pruned, the new revision is
/// waited for (a Deployment's newest ReplicaSet fully available; a failure at its progress deadline names the pod-level
/// reason), and a record is written. On a failure no further release starts; the failed releases are rolled back, then
/// the releases this plan already deployed, newest first.
/// </summary>
public sealed class Executor(ClusterSet clusters, IDeployObserver observer, ExecutorOptions options, TimeProvider time)
{
    private readonly ConcurrentDictionary<ReleaseId, ReleaseOutcome> _outcomes = new();
    private readonly ConcurrentQueue<ReleaseAction> _completed = new();
    private readonly ConcurrentQueue<(ReleaseId Id, string Detail)> _failures = new();

    /// <summary>Called after every change of a release's state (the journal listens).</summary>
    public Func<ReleaseId, ReleaseState, Task>? StateChanged { get; init; }

    /// <summary>Runs the plan to the end (or to its rollback).</summary>
    public async Task<DeployResult> RunAsync(Plan plan, CancellationToken cancellationToken)
    {
        var watch = Stopwatch.StartNew();
        foreach (var (dc, ns) in plan.Namespaces)
        {
            Report(null, null, $"{dc}: creating namespace {ns}");
            await clusters[dc].ApplyAsync(new JsonObject { ["apiVersion"] = "v1", ["kind"] = "Namespace", ["metadata"] = new JsonObject { ["name"] = ns, ["labels"] = new JsonObject { ["app.kubernetes.io/managed-by"] = "capstan" } } }, false, false, cancellationToken);
        }

        var scheduler = new PlanScheduler(plan);
        var running = new Dictionary<Task<bool>, ReleaseAction>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        while (true)
        {
            foreach (var action in scheduler.StartNext())
            {
                running[Task.Run(() => RunReleaseAsync(plan, action, stop.Token), CancellationToken.None)] = action;
            }

            if (running.Count == 0)
            {
                break;
            }

            var finished = await Task.WhenAny(running.Keys);
            var done = running[finished];
            running.Remove(finished);
            bool ok;
            try
            {
                ok = await finished;
            }
            catch (Exception) when (running.Count > 0)
            {
                // A release stopped the deploy (or it was cancelled): the others stop too before it is reported.
                await stop.CancelAsync();
                try
                {
                    await Task.WhenAll(running.Keys);
                }
                catch (Exception) when (stop.IsCancellationRequested)
                {
                    // Their cancellation is expected; the first exception is the one that matters.
                }

                throw;
            }

            scheduler.Complete(done, ok);
            if (ok)
            {
                _completed.Enqueue(done);
            }
        }

        var failed = _outcomes.Values.Where(o => o.State == ReleaseState.Failed).Select(o => o.Id).ToHashSet();
        foreach (var action in plan.Actions.Where(a => !_outcomes.ContainsKey(a.Id)))
        {
            _outcomes[action.Id] = new ReleaseOutcome(action.Id, ReleaseState.NotStarted, action.PreviousRevision, "an earlier release failed");
            Report(action.Id, ReleaseState.NotStarted, "not started");
        }

        if (failed.Count > 0 && !options.NoRollback)
        {
            var toRollBack = plan.Actions.Where(a => failed.Contains(a.Id))
                .Concat(_completed.Reverse().Where(a => a.Change != ReleaseChange.NoOp))
                .ToList();
            foreach (var action in toRollBack)
            {
                await RollBackAsync(plan, action, cancellationToken);
            }
        }

        var outcomes = plan.Actions.Select(a => _outcomes[a.Id]).ToList();
        return new DeployResult(plan.Id, failed.Count == 0, outcomes, watch.Elapsed, Cause());
    }

    private async Task<bool> RunReleaseAsync(Plan plan, ReleaseAction action, CancellationToken cancellationToken)
    {
        var client = clusters[action.Id.Datacenter];
        if (action.Change == ReleaseChange.NoOp)
        {
            _outcomes[action.Id] = new ReleaseOutcome(action.Id, ReleaseState.Unchanged, action.PreviousRevision, "unchanged");
            Report(action.Id, ReleaseState.Unchanged, "unchanged");
            return true;
        }

        try
        {
            await SetStateAsync(action.Id, ReleaseState.Applying, $"applying {action.Apply.Count} of {action.Desired.Count} objects" + (action.Prune.Count > 0 ? $", pruning {action.Prune.Count}" : string.Empty));
            foreach (var change in action.Apply)
            {
                await client.ApplyAsync(change.Desired, options.ForceConflicts, dryRun: false, cancellationToken);
            }

            foreach (var prune in action.Prune)
            {
                await client.DeleteAsync(new ObjectRef(prune.ApiVersion, prune.Kind, prune.Namespace, prune.Name), Propagation.Background, cancellationToken);
            }

            await SetStateAsync(action.Id, ReleaseState.Waiting, "waiting for the new revision");
            var problem = await WaitReadyAsync(client, action, cancellationToken);
            if (problem is not null)
            {
                throw new DeployFailedException(problem);
            }

            var revision = (action.PreviousRevision ?? 0) + 1;
            await WriteRecordAsync(client, action, revision, plan.Id, "deployed", options.Reason, cancellationToken);
            _outcomes[action.Id] = new ReleaseOutcome(action.Id, ReleaseState.Done, revision, action.Change == ReleaseChange.Install ? "installed" : "upgraded");
            await SetStateAsync(action.Id, ReleaseState.Done, $"done (revision {revision})");
            return true;
        }
        catch (Exception ex) when (ex is DeployFailedException or KubeApiException or KubeUnavailableException)
        {
            var detail = ex is KubeConflictException conflict
                ? $"{conflict.Message} (changed outside Capstan; --force-conflicts takes the fields back)"
                : ex.Message;
            _failures.Enqueue((action.Id, detail));
            _outcomes[action.Id] = new ReleaseOutcome(action.Id, ReleaseState.Failed, action.PreviousRevision, detail);
            await SetStateAsync(action.Id, ReleaseState.Failed, "failed: " + detail);
            return false;
        }
    }

    private async Task<string?> WaitReadyAsync(IClusterClient client, ReleaseAction action, CancellationToken cancellationToken)
    {
        var deployments = action.Desired.Where(o => o["kind"]!.GetValue<string>() == "Deployment").ToList();
        foreach (var deployment in deployments)
        {
            var ns = deployment["metadata"]!["namespace"]!.GetValue<string>();
            var name = deployment["metadata"]!["name"]!.GetValue<string>();
            var started = time.GetUtcNow();
            var lastProgress = started;
            (int Updated, int Available)? seen = null;
            DateTimeOffset? unreachableSince = null;
            var last = string.Empty;
            while (true)
            {
                RolloutStatus status;
                try
                {
                    status = await client.GetRolloutStatusAsync(ns, name, cancellationToken);
                }
                catch (KubeUnavailableException ex)
                {
                    // The API is away (the client's own retries are spent): pause, up to the tolerance, then resume.
                    var now = time.GetUtcNow();
                    unreachableSince ??= now;
                    if (now - unreachableSince > options.ApiOutageTolerance)
                    {
                        // Not the release's fault, and nothing can be rolled back without the API: stop the deploy here;
                        // the next run finds the journal and continues from what the clusters hold.
                        throw new DeployStoppedException(
                            $"{action.Id}: the cluster's API was unreachable for {(now - unreachableSince.Value).TotalSeconds:0} s while Deployment {name} rolled out " +
                            $"(tolerance {options.ApiOutageTolerance.TotalSeconds:0} s): {ex.Message}. Nothing was rolled back; run the deploy again when the cluster answers: it continues from what the clusters hold");
                    }

                    Report(action.Id, ReleaseState.Waiting, $"the cluster's API is unreachable ({ex.Message}); waiting up to {options.ApiOutageTolerance.TotalSeconds:0} s for it");
                    await Task.Delay(options.PollInterval, time, cancellationToken);
                    continue;
                }

                if (unreachableSince is not null)
                {
                    Report(action.Id, ReleaseState.Waiting, $"the cluster's API answers again after {(time.GetUtcNow() - unreachableSince.Value).TotalSeconds:0} s; resuming");
                    unreachableSince = null;
                    lastProgress = time.GetUtcNow();
                }

                if (status.Done)
                {
                    break;
                }

                if (status.Failed)
                {
                    return $"Deployment {name}: " + (status.Message.Contains("is paused", StringComparison.Ordinal) ? status.Message
                        : "progress deadline exceeded" + (status.PodProblem is null ? string.Empty : $": {status.PodProblem}"));
                }

                var now2 = time.GetUtcNow();
                // Progress is more updated or more available replicas than seen so far; a count that drops and
                // recovers (a crash-looping pod) is not progress.
                if (seen is null || status.Updated > seen.Value.Updated || status.Available > seen.Value.Available)
                {
                    seen = (Math.Max(status.Updated, seen?.Updated ?? 0), Math.Max(status.Available, seen?.Available ?? 0));
                    lastProgress = now2;
                }

                if (now2 - lastProgress > options.NoProgressTimeout)
                {
                    return $"Deployment {name}: no progress for {options.NoProgressTimeout.TotalSeconds:0} s ({status.Available}/{status.Desired} ready)" + (status.PodProblem is null ? string.Empty : $": {status.PodProblem}");
                }

                if (options.OverallTimeout is { } overall && now2 - started > overall)
                {
                    return $"Deployment {name}: not ready after {overall.TotalSeconds:0} s ({status.Available}/{status.Desired} ready)" + (status.PodProblem is null ? string.Empty : $": {status.PodProblem}");
                }

                var progress = $"waiting {status.Available}/{status.Desired} ready" + (status.PodProblem is null ? string.Empty : $" ({status.PodProblem})");
                if (progress != last)
                {
                    Report(action.Id, ReleaseState.Waiting, progress);
                    last = progress;
                }

                await Task.Delay(options.PollInterval, time, cancellationToken);
            }
        }

        return null;
    }

    private async Task RollBackAsync(Plan plan, ReleaseAction action, CancellationToken cancellationToken)
    {
        var client = clusters[action.Id.Datacenter];
        try
        {
            var records = await ReleaseRecords.ListAsync(client, action.Id.Datacenter, action.Id.Namespace, cancellationToken);
            var history = records.GetValueOrDefault(action.Id) ?? [];
            var previous = action.PreviousRevision is { } rev ? history.FirstOrDefault(r => r.Revision == rev) : null;
            var current = action.Desired;
            if (previous is null)
            {
                // A first install that failed: remove what this plan created; objects that existed before it stay.
                var created = action.Apply.Where(c => c.Action == ObjectAction.Create).Select(c => LiveRelease.Key(c.Kind, c.Name)).ToHashSet(StringComparer.Ordinal);
                foreach (var obj in current.AsEnumerable().Reverse().Where(o => created.Contains(LiveRelease.Key(o["kind"]!.GetValue<string>(), o["metadata"]!["name"]!.GetValue<string>()))))
                {
                    // Only what is live as this release's (an apply that failed on someone else's object left it theirs).
                    var live = await client.GetAsync(ObjectRef.Of(obj), cancellationToken);
                    if (live?["metadata"]?["labels"]?[ObjectLabels.ReleaseLabel]?.GetValue<string>() == action.Id.Release)
                    {
                        await client.DeleteAsync(ObjectRef.Of(obj), Propagation.Background, cancellationToken);
                    }
                }

                foreach (var record in history.Where(r => r.PlanId == plan.Id))
                {
                    await client.DeleteAsync(new ObjectRef("v1", "Secret", action.Id.Namespace, ReleaseRecords.Name(action.Id.Release, record.Revision)), Propagation.Background, cancellationToken);
                }

                var kept = current.Count - created.Count;
                var what = kept == 0 ? "removed (it was a first install)" : $"removed the {created.Count} objects it created (it was a first install); kept {kept} that existed before";
                _outcomes[action.Id] = new ReleaseOutcome(action.Id, ReleaseState.RolledBack, null, Because(action.Id, what));
                await SetStateAsync(action.Id, ReleaseState.RolledBack, "rolled back: " + what);
                return;
            }

            foreach (var obj in previous.Manifest)
            {
                await client.ApplyAsync(obj, force: true, dryRun: false, cancellationToken);
            }

            var keep = previous.Manifest.Select(o => LiveRelease.Key(o["kind"]!.GetValue<string>(), o["metadata"]!["name"]!.GetValue<string>())).ToHashSet(StringComparer.Ordinal);
            foreach (var obj in current.Where(o => !keep.Contains(LiveRelease.Key(o["kind"]!.GetValue<string>(), o["metadata"]!["name"]!.GetValue<string>()))))
            {
                await client.DeleteAsync(ObjectRef.Of(obj), Propagation.Background, cancellationToken);
            }

            var newest = history.Count == 0 ? previous.Revision : history.Max(r => r.Revision);
            var revision = newest + 1;
            var rolledBack = previous with { Revision = revision, Status = "deployed", PlanId = plan.Id, Actor = options.Actor, At = time.GetUtcNow(), Reason = $"rollback to revision {previous.Revision} after plan {plan.Id} failed: {Cause()}" };
            await client.ApplyAsync(ReleaseRecords.ToSecret(rolledBack), force: true, dryRun: false, cancellationToken);
            await SupersedeAsync(client, history.Where(r => r.Status == "deployed" && r.Revision != revision), cancellationToken);
            _outcomes[action.Id] = new ReleaseOutcome(action.Id, ReleaseState.RolledBack, revision, Because(action.Id, $"back to revision {previous.Revision} (as revision {revision})"));
            await SetStateAsync(action.Id, ReleaseState.RolledBack, $"rolled back to revision {previous.Revision}");
        }
        catch (Exception ex) when (ex is KubeApiException or KubeUnavailableException)
        {
            Report(action.Id, ReleaseState.Failed, $"rollback failed: {ex.Message}");
        }
    }

    /// <summary>The first failure of the plan: the release and why, as the summary, the history and the plan record say it.</summary>
    private string? Cause() => _failures.TryPeek(out var first) ? $"{first.Id}: {first.Detail}" : null;

    /// <summary>What a rollback did, led by why: the release's own failure, or the release whose failure caused it.</summary>
    private string Because(ReleaseId id, string what)
    {
        var own = _failures.FirstOrDefault(f => f.Id == id);
        return own.Detail is not null ? $"{own.Detail}; rolled back: {what}" : $"rolled back: {what}, because {Cause()}";
    }

    private async Task WriteRecordAsync(IClusterClient client, ReleaseAction action, int revision, string planId, string status, string reason, CancellationToken cancellationToken)
    {
        var record = new ReleaseRecord(action.Id, revision, status, action.ManifestHash, action.Desired, ReleaseRecords.Images(action.Desired), options.Actor, time.GetUtcNow(), reason, planId);
        await client.ApplyAsync(ReleaseRecords.ToSecret(record), force: true, dryRun: false, cancellationToken);
        var records = await ReleaseRecords.ListAsync(client, action.Id.Datacenter, action.Id.Namespace, cancellationToken);
        await SupersedeAsync(client, (records.GetValueOrDefault(action.Id) ?? []).Where(r => r.Status == "deployed" && r.Revision != revision), cancellationToken);
    }

    private static async Task SupersedeAsync(IClusterClient client, IEnumerable<ReleaseRecord> records, CancellationToken cancellationToken)
    {
        foreach (var old in records)
        {
            await client.ApplyAsync(ReleaseRecords.ToSecret(old with { Status = "superseded" }), force: true, dryRun: false, cancellationToken);
        }
    }

    private async Task SetStateAsync(ReleaseId id, ReleaseState state, string message)
    {
        Report(id, state, message);
        if (StateChanged is not null)
        {
            await StateChanged(id, state);
        }
    }

    private void Report(ReleaseId? id, ReleaseState? state, string message) => observer.OnEvent(new DeployEvent(time.GetUtcNow(), id, state, message));
}

/// <summary>The deploy stopped part-way for a reason that is not a release's failure (the cluster's API went away).</summary>
public sealed class DeployStoppedException(string message) : Exception(message);

/// <summary>A release did not become ready.</summary>
public sealed class DeployFailedException(string message) : Exception(message);
