using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Kubernetes;
using Capstan.Core.Planning;
using Capstan.Core.Rendering;
using Capstan.Kubernetes;
using Capstan.Kubernetes.Watching;

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

    /// <summary>
    /// How rollouts are waited for: the time a Deployment may go without progress (as its progressDeadlineSeconds on
    /// the server, so a long rollout that keeps progressing is never cut), an optional overall cap, and how long the API
    /// may stay unreachable (the wait pauses, then resumes).
    /// </summary>
    public WaitLimits Wait { get; init; } = new();

    /// <summary>The lease of the deploy lock (kept alive every third of it; losing it stops the deploy).</summary>
    public TimeSpan LockTtl { get; init; } = DeployLock.DefaultTtl;

    /// <summary>
    /// The token of an operator lock this deploy runs under (a switchover holds the deploy lock for its whole runbook and
    /// deploys inside it); null takes the lock as usual.
    /// </summary>
    public string? LockToken { get; init; }

    /// <summary>Announce the deploy's start and end (capstan.yaml's <c>notify:</c>); off where the caller announces its own work.</summary>
    public bool Announce { get; init; } = true;

    /// <summary>The gates between stages; null runs stage after stage on readiness alone.</summary>
    public Gates.StageGates? Gates { get; init; }

    /// <summary>Why the gates are skipped (<c>deploy --skip-gates --reason</c>, recorded); null runs them.</summary>
    public string? SkipGatesReason { get; init; }

    /// <summary>
    /// The stage after which (and after its gate) the deploy pauses for <see cref="Pause"/>, when a later stage changes
    /// something; a plan without releases of that stage pauses after the first stage past it.
    /// </summary>
    public Stage? PauseAfter { get; init; }

    /// <summary>
    /// The pause (a backport's check of the test servers): null goes on; a reason stops the plan there, and what it
    /// changed is rolled back and held, as after a failed gate.
    /// </summary>
    public Func<CancellationToken, Task<string?>>? Pause { get; init; }

    /// <summary>Phases the caller ran before the deploy (building and pushing its image), recorded first in the result.</summary>
    public IReadOnlyList<PhaseTiming> PhasesBefore { get; init; } = [];

    /// <summary>Warm the nodes with the plan's new images before the rollout starts (under the lock, before anything is applied); null not to.</summary>
    public Capstan.Core.Config.PrePullSettings? PrePull { get; init; }
}

/// <summary>
/// Runs a plan: releases start when their needs and earlier stages are done (at most the plan's concurrency per
/// cluster), objects are applied with server-side apply, objects no longer rendered are pruned, the new revision is
/// waited for on shared watches (a Deployment's newest ReplicaSet fully available; a failure names the pod-level reason),
/// and a record is written. On a failure no further release starts; the failed releases are rolled back, then the
/// releases this plan already deployed, newest first, each rollback waited for in turn.
/// </summary>
public sealed class Executor(IClusters clusters, IDeployObserver observer, ExecutorOptions options, TimeProvider time)
{
    private readonly ConcurrentDictionary<string, RolloutWatcher> _watchers = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<ReleaseId, ReleaseOutcome> _outcomes = new();
    private readonly ConcurrentQueue<ReleaseAction> _completed = new();
    private readonly ConcurrentQueue<(ReleaseId Id, string Detail)> _failures = new();
    private readonly List<Gates.GateVerdict> _verdicts = [];
    private readonly List<PhaseTiming> _phases = [];
    private readonly Stopwatch _clock = new();

    /// <summary>When each release reached each state, in seconds since the plan started (the deploy's timeline).</summary>
    private readonly ConcurrentDictionary<ReleaseId, ConcurrentDictionary<ReleaseState, double>> _times = new();

    /// <summary>Called after every change of a release's state, with when it reached each state so far (the journal listens).</summary>
    public Func<ReleaseId, ReleaseState, IReadOnlyDictionary<ReleaseState, double>, Task>? StateChanged { get; init; }

    /// <summary>Called with the phases timed so far each time one ends (the journal listens, so a dashboard shows them while the deploy runs).</summary>
    public Func<IReadOnlyList<PhaseTiming>, Task>? PhasesChanged { get; init; }

    /// <summary>
    /// Completes when someone cancels the deploy (<see cref="DeployCancel"/>): no release starts after that, the ones
    /// running finish, and nothing is rolled back (running the deploy again continues). Null: not cancellable.
    /// </summary>
    public Task<CancelRequest>? CancelRequested { get; init; }

    /// <summary>Runs the plan to the end (or to its rollback).</summary>
    public async Task<DeployResult> RunAsync(Plan plan, CancellationToken cancellationToken)
    {
        try
        {
            return await RunPlanAsync(plan, cancellationToken);
        }
        finally
        {
            foreach (var watcher in _watchers.Values)
            {
                await watcher.DisposeAsync();
            }
        }
    }

    private async Task<DeployResult> RunPlanAsync(Plan plan, CancellationToken cancellationToken)
    {
        _clock.Start();
        var watch = _clock;
        foreach (var (dc, ns) in plan.Namespaces)
        {
            Report(null, null, $"{dc}: creating namespace {ns}");
            await clusters[dc].ApplyAsync(NamespaceObject(ns), false, false, cancellationToken);
        }

        var scheduler = new PlanScheduler(plan);
        var running = new Dictionary<Task<bool>, ReleaseAction>();
        var gated = new HashSet<Stage>();
        var stageStarted = new Dictionary<Stage, TimeSpan>();
        Gates.GateVerdict? gateFailure = null;
        string? halted = null;
        CancelRequest? cancelled = null;
        var paused = false;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        while (true)
        {
            if (cancelled is null && CancelRequested is { IsCompletedSuccessfully: true } request)
            {
                cancelled = request.Result;
                Report(null, null, $"{cancelled}; the releases already started finish, no other starts");
            }

            foreach (var action in cancelled is null ? scheduler.StartNext() : [])
            {
                stageStarted.TryAdd(action.Stage, watch.Elapsed);
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
                if (running.Count == 0 && !gated.Contains(done.Stage) && StageDone(plan, done.Stage) && CancelRequested is not { IsCompletedSuccessfully: true })
                {
                    gated.Add(done.Stage);
                    var word = done.Stage.ToString().ToLowerInvariant();
                    await PhaseAsync(new PhaseTiming($"stage {word}", watch.Elapsed - stageStarted[done.Stage]) { Start = stageStarted[done.Stage] });
                    var gateStarted = watch.Elapsed;
                    var verdict = await GateAsync(plan, done.Stage, stop.Token);
                    if (verdict is not null)
                    {
                        await PhaseAsync(new PhaseTiming($"gate after {word}", watch.Elapsed - gateStarted) { Start = gateStarted });
                    }

                    if (verdict is { Passed: false })
                    {
                        gateFailure = verdict;
                        break;
                    }

                    // The pause comes after its stage, or after the first stage past it when the plan has none of that stage.
                    if (!paused && done.Stage >= options.PauseAfter && options.Pause is { } ask && plan.Actions.Any(a => a.Stage > done.Stage && a.Change != ReleaseChange.NoOp))
                    {
                        paused = true;
                        var asked = watch.Elapsed;
                        halted = await ask(stop.Token);
                        await PhaseAsync(new PhaseTiming($"pause after {word}", watch.Elapsed - asked) { Start = asked });
                        if (halted is not null)
                        {
                            _failures.Enqueue((plan.Actions.First(a => a.Stage == done.Stage).Id, $"stopped after {word}: {halted}"));
                            break;
                        }
                    }
                }
            }
        }

        var failed = _outcomes.Values.Where(o => o.State == ReleaseState.Failed).Select(o => o.Id).ToHashSet();
        foreach (var action in plan.Actions.Where(a => !_outcomes.ContainsKey(a.Id)))
        {
            if (cancelled is not null && action.Change == ReleaseChange.NoOp)
            {
                // Cancelled before its turn, but it had nothing to do: it matches the repo, and the next deploy leaves it too.
                _outcomes[action.Id] = new ReleaseOutcome(action.Id, ReleaseState.Unchanged, action.PreviousRevision, "unchanged");
                continue;
            }

            _outcomes[action.Id] = new ReleaseOutcome(action.Id, ReleaseState.NotStarted, action.PreviousRevision,
                gateFailure is not null ? $"the gate after {gateFailure.Gate.StageWord} failed" : halted is not null ? $"stopped: {halted}"
                : cancelled is not null && failed.Count == 0 ? $"{cancelled}; run the deploy again to continue" : "an earlier release failed");
            Report(action.Id, ReleaseState.NotStarted, "not started");
        }

        if ((failed.Count > 0 || gateFailure is not null || halted is not null) && !options.NoRollback)
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
        var cause = Cause() ?? (cancelled is null ? null : $"{cancelled}: {outcomes.Count(o => o.State == ReleaseState.NotStarted)} releases not started; run the same deploy again to continue from what the clusters hold");
        return new DeployResult(plan.Id, failed.Count == 0 && gateFailure is null && halted is null && cancelled is null, outcomes, watch.Elapsed, cause)
        {
            Cancelled = cancelled,
            Times = _times.ToDictionary(kv => kv.Key, kv => (IReadOnlyDictionary<ReleaseState, double>)kv.Value.ToDictionary()),
            Gates = [.. _verdicts],
            Halted = halted,
            Phases = [.. _phases],
            GatesSkipped = options.Gates is not null ? options.SkipGatesReason : null,
        };
    }

    /// <summary>True when every release of the stage is deployed (or unchanged).</summary>
    private bool StageDone(Plan plan, Stage stage) =>
        plan.Actions.Where(a => a.Stage == stage).All(a => _outcomes.TryGetValue(a.Id, out var o) && o.State is ReleaseState.Done or ReleaseState.Unchanged);

    /// <summary>
    /// Runs the gate after a finished stage, when there is one and the stage upgraded a MediaWiki release; null when no
    /// gate ran. A failure is the plan's cause, on the release whose sample failed.
    /// </summary>
    private async Task<Gates.GateVerdict?> GateAsync(Plan plan, Stage stage, CancellationToken cancellationToken)
    {
        if (options.Gates is not { } gates || gates.After(stage) is not { } gate || !plan.Actions.Any(a => a.Stage > stage))
        {
            return null;
        }

        var targets = gates.Targets(plan, stage);
        var word = gate.StageWord;
        if (targets.Count == 0)
        {
            Report(null, null, $"gate after {word}: nothing to judge (no release of the stage was upgraded; installs open no gate)");
            return null;
        }

        if (options.SkipGatesReason is { } why)
        {
            Report(null, null, $"gate after {word}: skipped ({why})");
            return null;
        }

        Report(null, null, $"gate after {word}: soaking {Durations.Format(gate.Soak)}, {gate.Checks.Count} check(s) on {targets.Count} release(s) every {Durations.Format(gate.Interval)}");
        var verdict = await gates.RunAsync(gate, targets, p => observer.OnEvent(new DeployEvent(time.GetUtcNow(), null, null, GateLine(p)) { Gate = p }), cancellationToken);
        _verdicts.Add(verdict);
        if (!verdict.Passed)
        {
            _failures.Enqueue((verdict.Failure?.Release ?? targets[0].Release, verdict.Summary));
        }

        foreach (var line in verdict.Explain())
        {
            Report(null, null, line);
        }

        return verdict;
    }

    private static string GateLine(Gates.GateProgress progress) =>
        $"gate after {progress.Gate.StageWord}: {Math.Ceiling(progress.Left.TotalSeconds)}s left" +
        string.Concat(progress.Latest.GroupBy(s => s.Check).Select(g => $"; {g.Key} {(g.OrderByDescending(s => s.Value ?? double.MinValue).First() is { } worst ? (worst.Value is { } v ? Gates.GateSample.Format(v) : "n/a") : "n/a")}"));

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
            var generations = new Dictionary<string, long>(StringComparer.Ordinal);
            var definitions = new List<JsonObject>();
            foreach (var change in action.Apply.OrderBy(c => c.Kind == "CustomResourceDefinition" ? 0 : 1))
            {
                if (definitions.Count > 0 && change.Kind != "CustomResourceDefinition")
                {
                    // Definitions go first, and the custom resources they serve only once they are established.
                    if (await WaitReadyAsync(action, definitions, generations, cancellationToken) is { } notServed)
                    {
                        throw new DeployFailedException(notServed);
                    }

                    definitions.Clear();
                }

                if (ReplicasHandover(change) is { } handover)
                {
                    // Autoscaling turned on for a running release: the apply that stops sending replicas would remove
                    // them (the server defaults to 1 until the autoscaler scales up). First a manager of its own applies
                    // the live count, so the field stays, now owned by it and free for the autoscaler.
                    Report(action.Id, ReleaseState.Applying, $"handing Deployment {change.Name}'s replicas ({handover["spec"]!["replicas"]}) over to its autoscaler");
                    await client.ApplyAsync(handover, HandoverManager, cancellationToken);
                }

                var applied = await client.ApplyAsync(change.Desired, options.ForceConflicts, dryRun: false, cancellationToken);
                generations[LiveRelease.Key(change.Kind, change.Name)] = applied.Kube.Generation;
                if (change.Kind == "CustomResourceDefinition")
                {
                    definitions.Add(change.Desired);
                }
            }

            foreach (var prune in action.Prune)
            {
                await client.DeleteAsync(new ObjectRef(prune.ApiVersion, prune.Kind, prune.Namespace, prune.Name), Propagation.Background, cancellationToken);
            }

            await SetStateAsync(action.Id, ReleaseState.Waiting, "waiting for the new revision");
            var problem = await WaitReadyAsync(action, action.Desired, generations, cancellationToken);
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

    /// <summary>A namespace as Capstan creates it.</summary>
    internal static JsonObject NamespaceObject(string ns) =>
        new() { ["apiVersion"] = "v1", ["kind"] = "Namespace", ["metadata"] = new JsonObject { ["name"] = ns, ["labels"] = new JsonObject { ["app.kubernetes.io/managed-by"] = "capstan" } } };

    /// <summary>The field manager that holds a Deployment's replicas between Capstan and its autoscaler.</summary>
    public const string HandoverManager = "capstan-handover-to-hpa";

    /// <summary>
    /// The apply that keeps a Deployment's replicas when Capstan stops setting them (its release became autoscaled):
    /// Capstan applied them last time and the new manifest leaves them out. Null otherwise.
    /// </summary>
    internal static JsonObject? ReplicasHandover(ObjectChange change)
    {
        if (change.Kind != "Deployment" || change.Live is not { } live || change.Desired["spec"]?["replicas"] is not null
            || live["spec"]?["replicas"] is not { } replicas)
        {
            return null;
        }

        var capstanOwns = (live["metadata"]?["managedFields"] as JsonArray ?? []).Any(e =>
            e?["manager"]?.GetValue<string>() == "capstan" && e["operation"]?.GetValue<string>() == "Apply" && e["fieldsV1"]?["f:spec"]?["f:replicas"] is not null);
        return capstanOwns
            ? new JsonObject
            {
                ["apiVersion"] = "apps/v1",
                ["kind"] = "Deployment",
                ["metadata"] = new JsonObject { ["name"] = change.Name, ["namespace"] = live["metadata"]?["namespace"]?.DeepClone() },
                ["spec"] = new JsonObject { ["replicas"] = replicas.DeepClone() },
            }
            : null;
    }

    /// <summary>
    /// Waits for the Deployments among <paramref name="objects"/> to roll out, at least to the generation each write
    /// produced; null when they did, else the problem. An API outage past the tolerance stops the deploy.
    /// </summary>
    /// <summary>
    /// Waits until every workload of the release is ready at what was applied (<paramref name="generations"/>, by
    /// kind/name): Deployments by their rollout, StatefulSets, DaemonSets, Jobs and the like by their status (see
    /// <see cref="ObjectReadiness"/>); kinds without status are ready once applied. Null when all are, else the problem.
    /// </summary>
    private async Task<string?> WaitReadyAsync(ReleaseAction action, IReadOnlyList<JsonObject> objects, IReadOnlyDictionary<string, long> generations, CancellationToken cancellationToken)
    {
        var watcher = _watchers.GetOrAdd(action.Id.Datacenter, dc => new RolloutWatcher(clusters[dc], time));
        foreach (var obj in objects.Where(o => o.Kube.Kind == "Deployment" || ObjectReadiness.Waits(o.Kube.Kind)))
        {
            var kind = obj.Kube.Kind;
            var name = obj.Kube.Name;
            var ns = obj.Kube.Namespace ?? action.Id.Namespace;
            var generation = generations.GetValueOrDefault(LiveRelease.Key(kind, name));
            void Progress(string message) => Report(action.Id, ReleaseState.Waiting, message);
            try
            {
                var problem = kind == "Deployment"
                    ? await watcher.WaitForRolloutAsync(ns, name, generation, options.Wait, Progress, cancellationToken)
                    : await watcher.WaitForObjectAsync(ns, obj.Kube.ApiVersion, kind, name, generation, options.Wait, Progress, cancellationToken);
                if (problem is not null)
                {
                    return problem;
                }
            }
            catch (ApiOutageException ex)
            {
                // Not the release's fault, and nothing can be rolled back without the API: stop the deploy here; the
                // next run finds the journal and continues from what the clusters hold.
                throw new DeployStoppedException(
                    $"{action.Id}: {ex.Message} (while {kind} {name} rolled out). " +
                    "Nothing was rolled back; run the deploy again when the cluster answers: it continues from what the clusters hold");
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
                foreach (var obj in current.AsEnumerable().Reverse().Where(o => created.Contains(o.Kube.Key)))
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

            var generations = new Dictionary<string, long>(StringComparer.Ordinal);
            foreach (var obj in previous.Manifest)
            {
                var applied = await client.ApplyAsync(obj, force: true, dryRun: false, cancellationToken);
                generations[obj.Kube.Key] = applied.Kube.Generation;
            }

            var keep = previous.Manifest.Select(o => o.Kube.Key).ToHashSet(StringComparer.Ordinal);
            foreach (var obj in current.Where(o => !keep.Contains(o.Kube.Key)))
            {
                await client.DeleteAsync(ObjectRef.Of(obj), Propagation.Background, cancellationToken);
            }

            var newest = history.Count == 0 ? previous.Revision : history.Max(r => r.Revision);
            var revision = newest + 1;
            var rolledBack = previous with { Revision = revision, Status = "deployed", PlanId = plan.Id, Actor = options.Actor, At = time.GetUtcNow(), Reason = $"rollback to revision {previous.Revision} after plan {plan.Id} failed: {Cause()}" };
            await client.ApplyAsync(ReleaseRecords.ToSecret(rolledBack), force: true, dryRun: false, cancellationToken);
            await SupersedeAsync(client, history.Where(r => r.Status == "deployed" && r.Revision != revision), cancellationToken);

            // The rollback is a rollout of its own: wait for it, and say whether the previous revision is running again.
            Report(action.Id, ReleaseState.Waiting, $"rolling back to revision {previous.Revision}: waiting for its rollout");
            var problem = await WaitReadyAsync(action, previous.Manifest, generations, cancellationToken);
            var how = problem is null ? "rolled out" : $"its rollout did not finish: {problem}";
            var state = problem is null ? ReleaseState.RolledBack : ReleaseState.RollbackFailed;
            _outcomes[action.Id] = new ReleaseOutcome(action.Id, state, revision, Because(action.Id, $"back to revision {previous.Revision} (as revision {revision}; {how})"));
            await SetStateAsync(action.Id, state, $"rolled back to revision {previous.Revision} ({how})");
        }
        catch (Exception ex) when (ex is KubeApiException or KubeUnavailableException or DeployStoppedException)
        {
            // The release is neither what this plan wanted nor what it had: its outcome says so, whatever it was before.
            var before = _outcomes.GetValueOrDefault(action.Id);
            _outcomes[action.Id] = new ReleaseOutcome(action.Id, ReleaseState.RollbackFailed, before?.Revision ?? action.PreviousRevision, $"{(before is { State: ReleaseState.Failed } ? before.Detail + "; " : string.Empty)}rollback failed: {ex.Message}");
            Report(action.Id, ReleaseState.RollbackFailed, $"rollback failed: {ex.Message}");
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
        var times = _times.GetOrAdd(id, _ => new());
        times.TryAdd(state, Math.Round(_clock.Elapsed.TotalSeconds, 3));
        Report(id, state, message);
        if (StateChanged is not null)
        {
            await StateChanged(id, state, times.ToDictionary());
        }
    }

    private void Report(ReleaseId? id, ReleaseState? state, string message) => observer.OnEvent(new DeployEvent(time.GetUtcNow(), id, state, message));

    private async Task PhaseAsync(PhaseTiming phase)
    {
        _phases.Add(phase);
        if (PhasesChanged is not null)
        {
            await PhasesChanged([.. _phases]);
        }
    }
}

/// <summary>The deploy stopped part-way for a reason that is not a release's failure (the cluster's API went away).</summary>
public sealed class DeployStoppedException(string message) : CapstanException(RefusalKind.Failure, message);

/// <summary>A release did not become ready.</summary>
public sealed class DeployFailedException(string message) : CapstanException(RefusalKind.Failure, message);
