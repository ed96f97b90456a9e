using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Kubernetes;
using Capstan.Core.State;
using Capstan.Kubernetes;
using Capstan.Kubernetes.Watching;
using Capstan.State;

namespace Capstan.Deploy;

/// <summary>
/// The datacenter switchover runbook of seed 000 as ordered, idempotent, individually verified steps: lock deploys,
/// stop maintenance everywhere (state, cron groups, running Jobs), read-only in every datacenter, switch the primary,
/// read-write, restart the job runners of the old primary, start maintenance (CronJobs appear in the new primary only),
/// unlock. Progress is journaled in the state store after every step, so an interrupted run resumes at the step it
/// stopped in. A live test runs the same steps from the primary to itself: nothing moves, and the job runners are not
/// restarted.
/// </summary>
public sealed class Switchover(
    FarmModel model, DynamicStateService state, IStateStore store, DeployService deploy, IClusters clusters, IDeployObserver observer, TimeProvider time)
{
    /// <summary>
    /// The runbook: each step in one place, with its name, its title, what it would do now (for <c>--dry-run</c>, from
    /// the facts read before), and how it runs and verifies itself.
    /// </summary>
    private static readonly RunbookStep[] Runbook =
    [
        new("lock-deploys", "Lock deploys", (_, _) => "take the operator deploy lock (now free)", (s, r, ct) => s.LockAsync(r, ct)),
        new("stop-maintenance", "Stop maintenance in every datacenter",
            (r, f) => $"maintenance_enabled {Lower(f.Current.MaintenanceEnabled)} → false; delete CronJobs ({string.Join(", ", f.CronJobs)}); delete {f.Jobs} running maintenance Jobs and wait for them",
            (s, r, ct) => s.StopMaintenanceAsync(r, ct)),
        new("set-read-only", "Set MediaWiki read-only in every datacenter", (r, f) => $"read_only of {f.Datacenters} → '{ReadOnlyReason(r)}'", (s, r, ct) => s.SetReadOnlyAsync(r, ct)),
        new("switch-primary", "Switch the primary datacenter",
            (r, _) => r.LiveTest ? $"primary_dc stays {r.From} (live test)" : $"primary_dc {r.From} → {r.To}", (s, r, ct) => s.SwitchPrimaryAsync(r, ct)),
        new("set-read-write", "Set MediaWiki read-write", (_, f) => $"read_only of {f.Datacenters} → off", (s, r, ct) => s.SetReadWriteAsync(r, ct)),
        new("restart-jobrunners", "Restart the job runners of the old primary",
            (r, f) => r.LiveTest
                ? "skipped in a live test"
                : f.Restarts.Count == 0 ? $"no job runner Deployment in {r.From}" : $"rolling restart of {string.Join(", ", f.Restarts.Select(d => $"{d.Namespace}/{d.Name}"))} in {r.From}",
            (s, r, ct) => s.RestartJobRunnersAsync(r, ct)),
        new("start-maintenance", "Start maintenance (CronJobs in the new primary only)",
            (r, f) => f.Current.MaintenanceEnabled ? $"maintenance_enabled → true; CronJobs created in {r.To} only" : "maintenance was disabled before the switchover: left disabled",
            (s, r, ct) => s.StartMaintenanceAsync(r, ct)),
        new("unlock-deploys", "Unlock deploys", (_, _) => "release the deploy lock", (s, _, ct) => s.UnlockAsync(ct)),
    ];

    /// <summary>The step names and titles, in order.</summary>
    public static readonly IReadOnlyList<(string Name, string Title)> Steps = [.. Runbook.Select(s => (s.Name, s.Title))];

    private const string RestartAnnotation = "kubectl.kubernetes.io/restartedAt";

    private SwitchoverJournal _journal = null!;

    /// <summary>The state store key of a farm's switchover journal.</summary>
    public static string JournalKey(string project) => $"{project}/switchover";

    /// <summary>The journal of the last switchover, or null.</summary>
    public static async Task<SwitchoverJournal?> ReadJournalAsync(IStateStore store, string project, CancellationToken cancellationToken) =>
        await store.GetAsync(JournalKey(project), cancellationToken) is { } v ? SwitchoverJournal.Parse(v.Value) : null;

    /// <summary>Checks a new switchover against the current state; throws <see cref="UserInputException"/> when it cannot start.</summary>
    public async Task<DynamicState> CheckStartAsync(SwitchoverRequest request, CancellationToken cancellationToken)
    {
        foreach (var dc in new[] { request.From, request.To })
        {
            if (!model.DatacenterNames.Contains(dc))
            {
                throw new UserInputException($"unknown datacenter '{dc}' (known: {string.Join(", ", model.DatacenterNames)})");
            }
        }

        if (request.LiveTest != (request.From == request.To))
        {
            throw new UserInputException(request.LiveTest
                ? "a live test runs from the primary datacenter to itself: give only --from, or the same datacenter to --to"
                : $"--from and --to are both {request.From}; to exercise the runbook without moving anything use --live-test");
        }

        if (await ReadJournalAsync(store, model.Project, cancellationToken) is { Complete: false } open)
        {
            throw new UserInputException(
                $"switchover {open.Id} ({open.From} → {open.To}, started {open.Started.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z by {open.Actor}) did not finish; " +
                "run 'capstan switchover --resume' to finish it");
        }

        var current = await state.ReadRequiredAsync(cancellationToken);
        if (current.PrimaryDc != request.From)
        {
            throw new UserInputException($"the primary datacenter is {current.PrimaryDc}, not {request.From}");
        }

        if (current.IsReadOnly(request.To))
        {
            throw new UserInputException($"{request.To} is read-only ({current.ReadOnly[request.To]}); a switchover sets read-write only where it set read-only itself. Clear it first with 'capstan state set'");
        }

        if (await DeployLock.HolderAsync(store, model.Project, cancellationToken) is { } holder)
        {
            throw new DeployLockedException(holder);
        }

        return current;
    }

    /// <summary>What each step would change now, without changing anything.</summary>
    public async Task<IReadOnlyList<(string Name, string Title, string WouldDo)>> DescribeAsync(SwitchoverRequest request, CancellationToken cancellationToken)
    {
        var current = await CheckStartAsync(request, cancellationToken);
        var cronJobs = new List<string>();
        var jobs = 0;
        foreach (var dc in clusters.Datacenters.Order(StringComparer.Ordinal))
        {
            var count = 0;
            foreach (var group in model.Groups.Where(g => g.Traits.Periodic))
            {
                count += (await clusters[dc].ListAsync("batch/v1", "CronJob", model.LiveNamespace(group), null, cancellationToken)).Items.Count;
            }

            cronJobs.Add($"{count} in {dc}");
            jobs += await RunningJobsAsync(dc, cancellationToken);
        }

        var restarts = request.LiveTest ? [] : await JobRunnerDeploymentsAsync(request.From, cancellationToken);
        var facts = new RunbookFacts(current, cronJobs, jobs, [.. restarts.Select(r => (r.Namespace ?? string.Empty, r.Name))], string.Join(", ", model.DatacenterNames));
        return [.. Runbook.Select(step => (step.Name, step.Title, step.Describe(request, facts)))];
    }

    /// <summary>Starts a new switchover and runs it to the end (or to <see cref="SwitchoverRequest.Until"/>).</summary>
    public async Task<SwitchoverJournal> RunAsync(SwitchoverRequest request, CancellationToken cancellationToken)
    {
        var current = await CheckStartAsync(request, cancellationToken);
        _journal = new SwitchoverJournal(
            NewId(), request.From, request.To, request.LiveTest, request.Actor, request.Reason, time.GetUtcNow(), current.MaintenanceEnabled,
            [.. Steps.Select(s => new SwitchoverStep(s.Name, s.Title, StepStatus.Pending, null, null, string.Empty))]);
        await SaveAsync(cancellationToken);
        return await ContinueAsync(request, cancellationToken);
    }

    /// <summary>Resumes the unfinished switchover at the step it stopped in.</summary>
    public async Task<SwitchoverJournal> ResumeAsync(SwitchoverRequest? request, string actor, CancellationToken cancellationToken)
    {
        var journal = await ReadJournalAsync(store, model.Project, cancellationToken);
        if (journal is null or { Complete: true })
        {
            throw new UserInputException("there is no unfinished switchover to resume");
        }

        if (request is not null && (request.From != journal.From || request.To != journal.To))
        {
            throw new UserInputException($"the unfinished switchover {journal.Id} goes {journal.From} → {journal.To}, not {request.From} → {request.To}");
        }

        _journal = journal;
        observer.OnEvent(new DeployEvent(time.GetUtcNow(), null, null,
            $"resuming switchover {journal.Id} ({journal.From} → {journal.To}) at {journal.Steps.First(s => s.Status is not (StepStatus.Done or StepStatus.Skipped)).Name}"));
        var resumed = new SwitchoverRequest(journal.From, journal.To, journal.LiveTest, actor, journal.Reason)
        {
            JobTimeout = request?.JobTimeout ?? TimeSpan.FromMinutes(5),
            RolloutTimeout = request?.RolloutTimeout ?? TimeSpan.FromMinutes(10),
            Until = request?.Until,
        };
        return await ContinueAsync(resumed, cancellationToken);
    }

    private async Task<SwitchoverJournal> ContinueAsync(SwitchoverRequest request, CancellationToken cancellationToken)
    {
        foreach (var (name, title) in Steps)
        {
            var step = _journal.Steps.Single(s => s.Name == name);
            if (step.Status is StepStatus.Done or StepStatus.Skipped)
            {
                continue;
            }

            var started = time.GetUtcNow();
            await UpdateStepAsync(step with { Status = StepStatus.Running, Started = started, Finished = null, Detail = string.Empty }, cancellationToken);
            observer.OnEvent(new DeployEvent(started, null, null, $"{name}: {title.ToLowerInvariant()} …"));
            StepStatus status;
            string detail;
            try
            {
                (status, detail) = await RunStepAsync(name, request, cancellationToken);
            }
            catch (Exception ex) when (ex is SwitchoverFailedException or StateStoreException or StateRefusedException or KubeApiException or KubeUnavailableException or DeployLockedException or PreflightException)
            {
                var message = ex is SwitchoverFailedException failed ? failed.Message[(failed.Message.IndexOf(": ", StringComparison.Ordinal) + 2)..] : ex.Message;
                await UpdateStepAsync(step with { Status = StepStatus.Failed, Started = started, Finished = time.GetUtcNow(), Detail = message }, CancellationToken.None);
                observer.OnEvent(new DeployEvent(time.GetUtcNow(), null, null, $"{name}: FAILED: {message}"));
                await AnnounceStepAsync(request, name, "failed", message, CancellationToken.None);
                throw new SwitchoverFailedException(name, message);
            }

            var finished = time.GetUtcNow();
            await UpdateStepAsync(step with { Status = status, Started = started, Finished = finished, Detail = detail }, cancellationToken);
            observer.OnEvent(new DeployEvent(finished, null, null,
                $"{name}: {(status == StepStatus.Skipped ? "skipped" : "done")} in {(finished - started).TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture)}s: {detail}"));
            await AnnounceStepAsync(request, name, status == StepStatus.Skipped ? "skipped" : "done", detail, cancellationToken);
            if (request.Until == name)
            {
                break;
            }
        }

        return _journal;
    }

    private Task AnnounceStepAsync(SwitchoverRequest request, string step, string outcome, string detail, CancellationToken cancellationToken) =>
        deploy.AnnounceAsync(
            new Announcement(
                "switchover.step",
                request.Actor,
                $"Switchover {_journal.From} → {_journal.To}{(_journal.LiveTest ? " (live test)" : string.Empty)}: {step} {outcome}: {detail}",
                time.GetUtcNow(),
                new System.Text.Json.Nodes.JsonObject
                {
                    ["switchover"] = _journal.Id,
                    ["from"] = _journal.From,
                    ["to"] = _journal.To,
                    ["step"] = step,
                    ["outcome"] = outcome,
                    ["detail"] = detail,
                    ["reason"] = request.Reason,
                }),
            observer,
            cancellationToken);

    private Task<(StepStatus, string)> RunStepAsync(string name, SwitchoverRequest request, CancellationToken cancellationToken) =>
        Runbook.Single(step => step.Name == name).Run(this, request, cancellationToken);

    private async Task<(StepStatus, string)> LockAsync(SwitchoverRequest request, CancellationToken cancellationToken)
    {
        if (await DeployLock.HolderAsync(store, model.Project, cancellationToken) is not { } holder || holder.Token != _journal.Id)
        {
            await DeployLock.LockAsync(store, model.Project, request.Actor, $"switchover {_journal.From} → {_journal.To} ({_journal.Id})", cancellationToken, _journal.Id);
        }

        return (await DeployLock.HolderAsync(store, model.Project, cancellationToken))?.Token == _journal.Id
            ? (StepStatus.Done, "deploys are locked")
            : throw new SwitchoverFailedException("lock-deploys", "the deploy lock is not held by this switchover after taking it");
    }

    private async Task<(StepStatus, string)> StopMaintenanceAsync(SwitchoverRequest request, CancellationToken cancellationToken)
    {
        await state.ChangeAsync(new StateChange.SetMaintenance(false), request.Actor, $"switchover {_journal.From} → {_journal.To}: stop maintenance", false, cancellationToken);
        var current = await state.ReadRequiredAsync(cancellationToken);
        var outcomes = await GateAsync(current, request, "stop maintenance", cancellationToken);
        var problems = new List<string>();
        if (current.MaintenanceEnabled)
        {
            problems.Add("the state still has maintenance enabled");
        }

        foreach (var o in outcomes)
        {
            if (o.ActiveCronJobs > 0)
            {
                problems.Add($"{o.ActiveCronJobs} CronJobs remain active in {o.Datacenter}");
            }

            if (o.StillRunning.Count > 0)
            {
                problems.Add($"maintenance Jobs still running in {o.Datacenter}: {string.Join(", ", o.StillRunning)}");
            }
        }

        return problems.Count > 0
            ? throw new SwitchoverFailedException("stop-maintenance", string.Join("; ", problems))
            : (StepStatus.Done, $"maintenance disabled; no CronJob and no running maintenance Job in {string.Join(", ", outcomes.Select(o => o.Datacenter))} ({outcomes.Sum(o => o.JobsDeleted)} Jobs stopped)");
    }

    private async Task<(StepStatus, string)> SetReadOnlyAsync(SwitchoverRequest request, CancellationToken cancellationToken)
    {
        var current = await state.ReadRequiredAsync(cancellationToken);
        if (current.MaintenanceEnabled)
        {
            throw new SwitchoverFailedException("set-read-only", "precondition: maintenance must be disabled first");
        }

        if (_journal.ReadOnlySince is null)
        {
            _journal = _journal with { ReadOnlySince = time.GetUtcNow() };
            await SaveAsync(cancellationToken);
        }

        foreach (var dc in model.DatacenterNames)
        {
            if (!current.IsReadOnly(dc))
            {
                await state.ChangeAsync(new StateChange.SetReadOnly(dc, ReadOnlyReason(request)), request.Actor, $"switchover {_journal.From} → {_journal.To}: read-only", false, cancellationToken);
            }
        }

        current = await state.ReadRequiredAsync(cancellationToken);
        var writable = model.DatacenterNames.Where(dc => !current.IsReadOnly(dc)).ToList();
        return writable.Count > 0
            ? throw new SwitchoverFailedException("set-read-only", $"still read-write: {string.Join(", ", writable)}")
            : (StepStatus.Done, $"read-only in {string.Join(", ", model.DatacenterNames)}");
    }

    private async Task<(StepStatus, string)> SwitchPrimaryAsync(SwitchoverRequest request, CancellationToken cancellationToken)
    {
        var current = await state.ReadRequiredAsync(cancellationToken);
        var writable = model.DatacenterNames.Where(dc => !current.IsReadOnly(dc)).ToList();
        if (writable.Count > 0 || current.MaintenanceEnabled)
        {
            throw new SwitchoverFailedException("switch-primary", $"precondition: every datacenter read-only and maintenance disabled (read-write: {string.Join(", ", writable.DefaultIfEmpty("none"))}; maintenance {(current.MaintenanceEnabled ? "enabled" : "disabled")})");
        }

        if (current.PrimaryDc != _journal.From && current.PrimaryDc != _journal.To)
        {
            throw new SwitchoverFailedException("switch-primary", $"precondition: the primary is {current.PrimaryDc}, neither {_journal.From} nor {_journal.To}");
        }

        await state.ChangeAsync(new StateChange.SetPrimaryDc(_journal.To), request.Actor, $"switchover {_journal.From} → {_journal.To}", false, cancellationToken);
        current = await state.ReadRequiredAsync(cancellationToken);
        return current.PrimaryDc == _journal.To
            ? (StepStatus.Done, _journal.LiveTest ? $"primary stays {_journal.To} (live test)" : $"primary is now {_journal.To}")
            : throw new SwitchoverFailedException("switch-primary", $"the primary is {current.PrimaryDc} after writing {_journal.To}");
    }

    private async Task<(StepStatus, string)> SetReadWriteAsync(SwitchoverRequest request, CancellationToken cancellationToken)
    {
        var current = await state.ReadRequiredAsync(cancellationToken);
        if (current.PrimaryDc != _journal.To)
        {
            throw new SwitchoverFailedException("set-read-write", $"precondition: the primary must be {_journal.To} (it is {current.PrimaryDc})");
        }

        // The new primary first: it takes the writes.
        foreach (var dc in model.DatacenterNames.OrderBy(dc => dc == _journal.To ? 0 : 1))
        {
            if (current.IsReadOnly(dc))
            {
                await state.ChangeAsync(new StateChange.SetReadOnly(dc, null), request.Actor, $"switchover {_journal.From} → {_journal.To}: read-write", false, cancellationToken);
            }
        }

        current = await state.ReadRequiredAsync(cancellationToken);
        var readOnly = model.DatacenterNames.Where(current.IsReadOnly).ToList();
        if (readOnly.Count > 0)
        {
            throw new SwitchoverFailedException("set-read-write", $"still read-only: {string.Join(", ", readOnly)}");
        }

        _journal = _journal with { ReadOnlyUntil = time.GetUtcNow() };
        await SaveAsync(cancellationToken);
        return (StepStatus.Done, $"read-write in {string.Join(", ", model.DatacenterNames)}; read-only for {_journal.ReadOnlyWindow!.Value.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture)}s");
    }

    private async Task<(StepStatus, string)> RestartJobRunnersAsync(SwitchoverRequest request, CancellationToken cancellationToken)
    {
        if (_journal.LiveTest)
        {
            return (StepStatus.Skipped, "live test: the job runners of the primary keep running");
        }

        if (!clusters.Datacenters.Contains(_journal.From))
        {
            throw new SwitchoverFailedException("restart-jobrunners", $"no connection to {_journal.From}");
        }

        var client = clusters[_journal.From];
        var deployments = await JobRunnerDeploymentsAsync(_journal.From, cancellationToken);
        if (deployments.Count == 0)
        {
            return (StepStatus.Done, $"no job runner Deployment in {_journal.From}");
        }

        // The same stamp on a resume: re-patching it changes nothing, so a restart is never done twice.
        if (_journal.RestartedAt is null)
        {
            _journal = _journal with { RestartedAt = time.GetUtcNow().UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture) };
            await SaveAsync(cancellationToken);
        }

        var generations = new List<(ObjectRef Deployment, long Generation)>();
        foreach (var d in deployments)
        {
            var patched = await client.PatchAsync(d, new JsonObject
            {
                ["spec"] = new JsonObject { ["template"] = new JsonObject { ["metadata"] = new JsonObject { ["annotations"] = new JsonObject { [RestartAnnotation] = _journal.RestartedAt } } } },
            }, "capstan-switchover", cancellationToken);
            generations.Add((d, patched.Kube.Generation));
        }

        await using var watcher = new RolloutWatcher(client, time);
        var deadline = time.GetUtcNow() + request.RolloutTimeout;
        foreach (var (d, generation) in generations)
        {
            // One limit for all the restarts together, as the step promises.
            var limits = new WaitLimits { OverallTimeout = deadline - time.GetUtcNow() };
            string? problem;
            try
            {
                problem = await watcher.WaitForRolloutAsync(d.Namespace!, d.Name, generation, limits, message => observer.OnEvent(new DeployEvent(time.GetUtcNow(), null, null, $"{d.Namespace}/{d.Name} in {_journal.From}: {message}")), cancellationToken);
            }
            catch (ApiOutageException ex)
            {
                problem = ex.Message;
            }

            if (problem is not null)
            {
                throw new SwitchoverFailedException("restart-jobrunners", $"{d.Namespace}/{d.Name} in {_journal.From}: {problem}");
            }
        }

        return (StepStatus.Done, $"restarted {string.Join(", ", deployments.Select(d => $"{d.Namespace}/{d.Name}"))} in {_journal.From}");
    }

    private async Task<(StepStatus, string)> StartMaintenanceAsync(SwitchoverRequest request, CancellationToken cancellationToken)
    {
        if (!_journal.MaintenanceWasEnabled)
        {
            return (StepStatus.Skipped, "maintenance was disabled before the switchover: left disabled");
        }

        var current = await state.ReadRequiredAsync(cancellationToken);
        if (current.PrimaryDc != _journal.To || current.IsReadOnly(_journal.To))
        {
            throw new SwitchoverFailedException("start-maintenance", $"precondition: {_journal.To} must be the read-write primary");
        }

        await state.ChangeAsync(new StateChange.SetMaintenance(true), request.Actor, $"switchover {_journal.From} → {_journal.To}: start maintenance", false, cancellationToken);
        current = await state.ReadRequiredAsync(cancellationToken);
        var outcomes = await GateAsync(current, request, "start maintenance", cancellationToken);
        var elsewhere = outcomes.Where(o => o.Datacenter != _journal.To && o.CronJobs > 0).Select(o => $"{o.CronJobs} in {o.Datacenter}").ToList();
        if (!current.MaintenanceEnabled || elsewhere.Count > 0 || outcomes.Any(o => !o.Succeeded))
        {
            throw new SwitchoverFailedException("start-maintenance", $"maintenance {(current.MaintenanceEnabled ? "enabled" : "still disabled")}; CronJobs outside {_journal.To}: {string.Join(", ", elsewhere.DefaultIfEmpty("none"))}; apply {(outcomes.All(o => o.Succeeded) ? "succeeded" : "failed")}");
        }

        var here = outcomes.FirstOrDefault(o => o.Datacenter == _journal.To)?.CronJobs ?? 0;
        return (StepStatus.Done, $"maintenance enabled; {here} CronJobs in {_journal.To}, none elsewhere");
    }

    private async Task<(StepStatus, string)> UnlockAsync(CancellationToken cancellationToken)
    {
        if ((await DeployLock.HolderAsync(store, model.Project, cancellationToken))?.Token == _journal.Id)
        {
            await DeployLock.UnlockAsync(store, model.Project, cancellationToken);
        }

        return (await DeployLock.HolderAsync(store, model.Project, cancellationToken))?.Token == _journal.Id
            ? throw new SwitchoverFailedException("unlock-deploys", "the deploy lock is still held")
            : (StepStatus.Done, "deploys are unlocked");
    }

    private async Task<IReadOnlyList<GateOutcome>> GateAsync(DynamicState current, SwitchoverRequest request, string what, CancellationToken cancellationToken)
    {
        var applier = new MaintenanceGateApplier(model, deploy, clusters, observer);
        var options = new ExecutorOptions
        {
            Actor = request.Actor,
            Reason = $"switchover {_journal.From} → {_journal.To}: {what}",
            LockToken = _journal.Id,
        };
        return await applier.ApplyAsync(current, options, request.JobTimeout, cancellationToken);
    }

    private async Task<List<ObjectRef>> JobRunnerDeploymentsAsync(string dc, CancellationToken cancellationToken)
    {
        if (!clusters.Datacenters.Contains(dc))
        {
            return [];
        }

        var result = new List<ObjectRef>();
        foreach (var group in model.Groups.Where(g => g.Traits.Serving == ServingKind.Async))
        {
            result.AddRange((await clusters[dc].ListAsync("apps/v1", "Deployment", model.LiveNamespace(group), "app.kubernetes.io/managed-by=capstan,app.kubernetes.io/name=mediawiki", cancellationToken)).Items.Select(ObjectRef.Of));
        }

        return [.. result.OrderBy(r => r.Namespace, StringComparer.Ordinal).ThenBy(r => r.Name, StringComparer.Ordinal)];
    }

    private async Task<int> RunningJobsAsync(string dc, CancellationToken cancellationToken)
    {
        var count = 0;
        foreach (var group in model.Groups.Where(g => g.Traits.Serving == ServingKind.Cli))
        {
            count += (await clusters[dc].ListAsync("batch/v1", "Job", model.LiveNamespace(group), null, cancellationToken)).Items
                .Count(MaintenanceGateApplier.Running);
        }

        return count;
    }

    private async Task UpdateStepAsync(SwitchoverStep step, CancellationToken cancellationToken)
    {
        _journal = _journal with { Steps = [.. _journal.Steps.Select(s => s.Name == step.Name ? step : s)] };
        await SaveAsync(cancellationToken);
    }

    private async Task SaveAsync(CancellationToken cancellationToken) =>
        await store.CommitAsync(new StoreTxn([], [new StoreOp.Put(JournalKey(model.Project), _journal.ToJson().ToJsonString())]), cancellationToken);

    private static string ReadOnlyReason(SwitchoverRequest request) => $"switchover {request.From} → {request.To}";

    private static string Lower(bool value) => value ? "true" : "false";

    private static string NewId() => "so-" + Guid.NewGuid().ToString("N")[..8];
}

/// <summary>What the dry run of a switchover read before describing its steps.</summary>
internal sealed record RunbookFacts(DynamicState Current, IReadOnlyList<string> CronJobs, int Jobs, IReadOnlyList<(string Namespace, string Name)> Restarts, string Datacenters);

/// <summary>One step of the switchover runbook: its name and title, what it would do, and how it runs (and verifies itself).</summary>
internal sealed record RunbookStep(
    string Name,
    string Title,
    Func<SwitchoverRequest, RunbookFacts, string> Describe,
    Func<Switchover, SwitchoverRequest, CancellationToken, Task<(StepStatus, string)>> Run);
