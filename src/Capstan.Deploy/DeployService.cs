using System.Text.Json.Nodes;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Kubernetes;
using Capstan.Core.Planning;
using Capstan.Core.Rendering;
using Capstan.Core.State;
using Capstan.Kubernetes;
using Capstan.State;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Capstan.Deploy;

/// <summary>What to deploy and how.</summary>
public sealed record DeployRequest(
    RenderSelection Selection,
    bool IncludeNeeds,
    bool DryRun,
    int Concurrency,
    ExecutorOptions Executor)
{
    /// <summary>Check the selection's needs before planning (off for diff, which changes nothing).</summary>
    public bool Preflight { get; init; } = true;

    /// <summary>
    /// Refuse (<see cref="ReleaseHeldException"/>) a plan that would apply a held revision again, unless its release is
    /// in <see cref="ReleasingHolds"/>. Off, a held revision is only a note.
    /// </summary>
    public bool EnforceHolds { get; init; }

    /// <summary>The releases (<c>dc/namespace/release</c>) whose holds this deploy lifts, knowingly.</summary>
    public IReadOnlySet<string> ReleasingHolds { get; init; } = new HashSet<string>(StringComparer.Ordinal);
}

/// <summary>A plan ready to run, with what was read to make it.</summary>
public sealed record PreparedDeploy(Plan Plan, IReadOnlyList<string> Notes)
{
    /// <summary>The holds the plan would apply again (lifted by <see cref="DeployRequest.ReleasingHolds"/>, else refused or noted).</summary>
    public IReadOnlyList<ReleaseHold> Held { get; init; } = [];
}

/// <summary>
/// The deploy pipeline: render the selection (widened by needs when asked), check that everything it needs is
/// deployed and healthy (preflight, before anything is applied), read the clusters, plan, and run the plan under the
/// farm's deploy lock with a journal in the state store.
/// </summary>
public sealed class DeployService(FarmModel model, FarmRenderer renderer, IClusters clusters, IStateStore store, TimeProvider time, ILogger? logger = null)
{
    private readonly ILogger _log = logger ?? NullLogger.Instance;

    private string JournalKey => DeployProgress.JournalKey(model.Project);

    /// <summary>Where deploys, gates and holds are announced (capstan.yaml's <c>notify:</c>).</summary>
    public Announcer Announcer { get; init; } = Announcer.For(model, time);

    /// <summary>Where the record of every finished plan is kept: <c>PREFIX/&lt;started&gt;-&lt;plan id&gt;</c>.</summary>
    public string PlanRecordsKey => DeployProgress.RecordsPrefix(model.Project);

    /// <summary>
    /// Removes a deploy lock whose holder was a deploy of this host that died (see
    /// <see cref="DeployLock.ReleaseAbandonedAsync"/>); for the paths that find nothing to do and so never take the lock.
    /// </summary>
    public Task<LockHolder?> ReleaseAbandonedLockAsync(CancellationToken cancellationToken) =>
        DeployLock.ReleaseAbandonedAsync(store, model.Project, cancellationToken);

    /// <summary>Renders, preflights and plans. Throws <see cref="PreflightException"/> when a need is missing.</summary>
    public async Task<PreparedDeploy> PrepareAsync(DeployRequest request, DynamicState? state, CancellationToken cancellationToken)
    {
        renderer.CheckSelection(request.Selection);
        var selected = renderer.Select(request.Selection).ToList();
        if (selected.Count == 0)
        {
            throw new UserInputException("the selection matches no release");
        }

        var closure = NeedsClosure(selected);
        var missing = closure.Where(n => !selected.Contains(n)).ToList();
        var work = request.IncludeNeeds ? [.. selected, .. missing] : selected;
        var trace = System.Diagnostics.Stopwatch.StartNew();
        var rendered = renderer.Render(work, state, withNamespaces: true);
        var releases = new List<RenderedRelease>(rendered.Releases.Count);
        foreach (var release in rendered.Releases)
        {
            releases.AddRange(await ObjectScopes.ResolveAsync(clusters[release.Datacenter], [release], cancellationToken));
        }

        Trace($"render {work.Count} releases: {trace.ElapsedMilliseconds} ms");
        var live = new Dictionary<ReleaseId, LiveRelease>();
        var judged = new Dictionary<ReleaseId, JudgedRelease>();
        var namespaces = new Dictionary<string, IReadOnlySet<string>>(StringComparer.Ordinal);
        var notes = new List<string>();
        // The datacenters are read at once: their clusters are independent.
        var read = await Task.WhenAll(work.Select(w => w.Dc).Distinct().Select(async dc =>
        {
            var liveDc = await LiveReader.ReadAsync(clusters[dc], dc, releases.Where(r => r.Datacenter == dc), cancellationToken);
            var verdicts = await ServerJudge.JudgeAsync(clusters[dc], releases.Where(r => r.Datacenter == dc), liveDc.Releases, cancellationToken);
            return (liveDc, verdicts);
        }));
        foreach (var (liveDc, verdicts) in read)
        {
            foreach (var (id, release) in liveDc.Releases)
            {
                live[id] = release;
            }

            foreach (var (id, verdict) in verdicts)
            {
                judged[id] = verdict;
            }

            namespaces[liveDc.Datacenter] = liveDc.Namespaces;
        }

        Trace($"read live state and dry runs ({judged.Values.Sum(v => v.Asked)} objects): {trace.ElapsedMilliseconds} ms");
        if (request.Preflight && !request.IncludeNeeds && missing.Count > 0)
        {
            await PreflightAsync(selected, missing, live, cancellationToken);
        }

        if (await store.GetAsync(JournalKey, cancellationToken) is { } journal)
        {
            var node = JsonNode.Parse(journal.Value)!;
            notes.Add($"the previous deploy {node["planId"]} by {node["actor"]} (started {node["started"]}) was interrupted; this deploy continues from what the clusters hold now");
        }

        var plan = Planner.Build(model, releases, live, namespaces, request.Concurrency, planId: Planner.NewPlanId(time), judged: judged);
        Trace($"plan: {trace.ElapsedMilliseconds} ms");
        if (request.Preflight && plan.Namespaces.Count > 0)
        {
            await NamespacesPreflightAsync(plan, cancellationToken);
        }

        notes.AddRange(CanaryWarnings(plan));
        var held = await HeldAsync(plan, cancellationToken);
        var refused = held.Where(h => !request.ReleasingHolds.Contains(h.Hold.Release.ToString())).ToList();
        if (request.EnforceHolds && !request.DryRun && refused.Count > 0)
        {
            throw new ReleaseHeldException(string.Join("; ", refused.Select(h => h.Why)) +
                $"; nothing was applied. Revert the repo, or deploy with {string.Join(" ", refused.Select(h => $"--release-hold {h.Hold.Release}"))} --reason …");
        }

        notes.AddRange(held.Select(h => h.Why + (request.ReleasingHolds.Contains(h.Hold.Release.ToString()) ? " (this deploy lifts the hold)" : string.Empty)));
        return new PreparedDeploy(plan, notes) { Held = [.. held.Select(h => h.Hold)] };
    }

    /// <summary>
    /// The plan's releases that would apply a held revision again (its manifest, or its MediaWiki image), each with why:
    /// the hold, and the repo file and line that still names the image.
    /// </summary>
    private async Task<List<(ReleaseHold Hold, string Why)>> HeldAsync(Plan plan, CancellationToken cancellationToken)
    {
        var holds = await new HoldStore(store, model.Project).ListAsync(cancellationToken);
        var result = new List<(ReleaseHold, string)>();
        foreach (var action in plan.Actions.Where(a => a.Change != Core.Planning.ReleaseChange.NoOp))
        {
            if (holds.FirstOrDefault(h => h.Release == action.Id) is not { } hold
                || (hold.ManifestHash != action.ManifestHash && (hold.Image is null || AppImage(action.Desired) != hold.Image)))
            {
                continue;
            }

            var group = model.Groups.FirstOrDefault(g => model.LiveNamespace(g) == action.Id.Namespace);
            var spec = group?.Releases.FirstOrDefault(r => r.Name == action.Id.Release);
            var at = group is null || spec is null ? null
                : ((renderer.ResolveTree(action.Id.Datacenter, group, spec, withSecrets: false)["images"] as Core.Yaml.ValueMap)?["mediawiki"])?.Location;
            result.Add((hold, $"{hold}; this deploy would apply it again{(at is null ? string.Empty : $": the repo still names it at {at}")}"));
        }

        return result;
    }

    /// <summary>The MediaWiki image of a release's objects (its <c>*-app</c> container), or null.</summary>
    internal static string? AppImage(IEnumerable<JsonObject> objects) => objects
        .Where(o => o["kind"]?.GetValue<string>() is "Deployment" or "CronJob")
        .SelectMany(o => (o["spec"]?["template"]?["spec"] ?? o["spec"]?["jobTemplate"]?["spec"]?["template"]?["spec"])?["containers"] as JsonArray ?? [])
        .FirstOrDefault(c => c?["name"]?.GetValue<string>().EndsWith("-app", StringComparison.Ordinal) == true)?["image"]?.GetValue<string>();

    /// <summary>
    /// A canary that stays on another image while its main release moves to a new one tests nothing: the plan says so,
    /// naming both images.
    /// </summary>
    private IEnumerable<string> CanaryWarnings(Plan plan)
    {
        foreach (var canary in plan.Actions)
        {
            var group = model.Groups.FirstOrDefault(g => model.LiveNamespace(g) == canary.Id.Namespace);
            if (group?.Releases.FirstOrDefault(r => r.Name == canary.Id.Release)?.Canary is not { } spec
                || plan.Actions.FirstOrDefault(a => a.Id == canary.Id with { Release = spec.Of }) is not { Change: not Core.Planning.ReleaseChange.NoOp } main)
            {
                continue;
            }

            var (was, now, canaryImage) = (AppImage(main.Apply.Where(c => c.Live is not null).Select(c => c.Live!)), AppImage(main.Desired), AppImage(canary.Desired));
            // Only when main moves from one image to another: a first install has no canary stage to speak of.
            if (was is not null && now is not null && canaryImage is not null && was != now && canaryImage != now)
            {
                yield return $"{canary.Id} runs {canaryImage} while {main.Id} goes to {now}: the canary stage tests nothing (the canary's own images file pins it)";
            }
        }
    }

    /// <summary>The live objects of a datacenter for a selection, keyed by release (for diff).</summary>
    public async Task<IReadOnlyDictionary<ReleaseId, LiveRelease>> LiveAsync(string dc, IEnumerable<RenderedRelease> releases, CancellationToken cancellationToken) =>
        (await LiveReader.ReadAsync(clusters[dc], dc, releases, cancellationToken)).Releases;

    /// <summary>Runs a prepared plan under the deploy lock, keeping a journal until it ends.</summary>
    public async Task<DeployResult> RunAsync(Plan plan, ExecutorOptions options, IDeployObserver observer, CancellationToken cancellationToken)
    {
        if (options.Gates is { } gates && options.SkipGatesReason is null)
        {
            await gates.PreflightAsync(plan, cancellationToken);
        }

        await using var deployLock = await DeployLock.AcquireAsync(store, model.Project, options.Actor, options.Reason, cancellationToken, options.LockToken, options.LockTtl, time);

        // Fencing: once the lock is lost, nothing more is written (the next deploy, which may hold the lock by then,
        // finds the journal and continues from what the clusters hold).
        using var fenced = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deployLock.Lost);
        try
        {
            var before = new List<PhaseTiming>(options.PhasesBefore);
            if (options.PrePull is { } prePull)
            {
                var started = time.GetTimestamp();
                await new PrePuller(clusters, observer, time).RunAsync(plan, prePull, fenced.Token);
                before.Add(new PhaseTiming("pre-pull", time.GetElapsedTime(started)));
            }

            var journal = new DeployJournal(store, JournalKey, plan, options.Actor, time);
            await journal.StartAsync(options.Reason, before, fenced.Token);
            if (options.Announce)
            {
                await AnnounceAsync(DeployAnnouncements.Start(plan, options, time.GetUtcNow()), observer, cancellationToken);
            }

            // A cancel request (from the dashboard or 'capstan cancel', in any process) stops the plan cooperatively.
            using var watching = CancellationTokenSource.CreateLinkedTokenSource(fenced.Token);
            var cancelRequested = DeployCancel.WaitAsync(store, model.Project, plan.Id, watching.Token);
            DeployResult result;
            try
            {
                var executor = new Executor(clusters, observer, options, time)
                {
                    StateChanged = (id, state, times) => journal.UpdateAsync(id, state, times, fenced.Token),
                    PhasesChanged = phases => journal.PhasesAsync([.. before, .. phases], fenced.Token),
                    CancelRequested = cancelRequested,
                };
                result = await executor.RunAsync(plan, fenced.Token);
            }
            finally
            {
                await watching.CancelAsync();
                await cancelRequested.ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }

            result = result with { Phases = [.. before, .. result.Phases] };
            await journal.FinishAsync(PlanRecordsKey, result, options.Reason, fenced.Token);
            await DeployCancel.ClearAsync(store, model.Project, plan.Id, fenced.Token);
            if ((result.GateFailure?.Summary ?? result.Halted) is { } why)
            {
                await HoldRolledBackAsync(plan, result, why, options.Actor, fenced.Token);
            }

            foreach (var announcement in options.Announce ? DeployAnnouncements.Finish(plan, options, result, time.GetUtcNow()) : [])
            {
                await AnnounceAsync(announcement, observer, cancellationToken);
            }

            return result;
        }
        catch (Exception ex) when (ex is OperationCanceledException or PrePullException { Interrupted: true } && deployLock.Lost.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new DeployLockLostException($"{deployLock.LostReason}; the deploy stopped before its next write. Run it again: it continues from what the clusters hold");
        }
    }

    /// <summary>Sends an announcement; what failed to go out is reported as a warning, and never fails the deploy.</summary>
    public async Task AnnounceAsync(Announcement announcement, IDeployObserver observer, CancellationToken cancellationToken)
    {
        foreach (var problem in await Announcer.AnnounceAsync(announcement, cancellationToken))
        {
            observer.OnEvent(new DeployEvent(time.GetUtcNow(), null, null, "warning: " + problem));
        }
    }

    /// <summary>
    /// After a gate failed (or the plan was stopped after a stage), holds every release it rolled back at the manifest the plan wanted: the next deploy that would
    /// apply it again stops and says why, as after <c>capstan rollback</c>.
    /// </summary>
    private async Task HoldRolledBackAsync(Plan plan, DeployResult result, string why, string actor, CancellationToken cancellationToken)
    {
        var holds = new HoldStore(store, model.Project);
        foreach (var outcome in result.Releases.Where(r => r.State == ReleaseState.RolledBack))
        {
            var action = plan.Actions.First(a => a.Id == outcome.Id);
            var image = ReleaseRecords.Images(action.Desired).Where(kv => kv.Key.EndsWith("-app", StringComparison.Ordinal)).Select(kv => kv.Value).FirstOrDefault();
            await holds.PutAsync(new ReleaseHold(action.Id, action.ManifestHash, image, actor, time.GetUtcNow(), why, plan.Id), cancellationToken);
        }
    }

    /// <summary>
    /// The namespaces the plan creates, tried first by a server-side dry run: a deployer who may not create namespaces
    /// learns which namespace is missing, who they are and what they may not do, before anything is applied.
    /// </summary>
    private async Task NamespacesPreflightAsync(Plan plan, CancellationToken cancellationToken)
    {
        var problems = new List<string>();
        foreach (var (dc, ns) in plan.Namespaces)
        {
            try
            {
                await clusters[dc].ApplyAsync(Executor.NamespaceObject(ns), force: false, dryRun: true, cancellationToken);
            }
            catch (KubeForbiddenException ex)
            {
                problems.Add(
                    $"namespace {ns} does not exist in {dc}, and creating it was refused ({ex.Message}); " +
                    $"ask a cluster admin to create it ('kubectl create namespace {ns}' and the deployer's RoleBinding there, as in examples/rbac/deployer.yaml), or deploy as a user who may create namespaces");
            }
        }

        if (problems.Count > 0)
        {
            throw new PreflightException(problems);
        }
    }

    /// <summary>Where the time of a plan goes, for whoever asked for debug logs (<c>CAPSTAN_TRACE=1</c> in the CLI).</summary>
    private void Trace(string message)
    {
        if (_log.IsEnabled(LogLevel.Debug))
        {
            _log.LogDebug("{Message}", message);
        }
    }

    private List<(string Dc, ServerGroup Group, ReleaseSpec Release)> NeedsClosure(List<(string Dc, ServerGroup Group, ReleaseSpec Release)> selected)
    {
        var result = new List<(string, ServerGroup, ReleaseSpec)>(selected);
        var queue = new Queue<(string Dc, ServerGroup Group, ReleaseSpec Release)>(selected);
        while (queue.Count > 0)
        {
            var (dc, _, release) = queue.Dequeue();
            foreach (var need in release.Needs)
            {
                var group = model.FindGroup(need.Namespace)!;
                var spec = model.FindRelease(need)!;
                var item = (dc, group, spec);
                if (spec.RunsIn(dc) && !result.Contains(item))
                {
                    result.Add(item);
                    queue.Enqueue(item);
                }
            }
        }

        return result;
    }

    private async Task PreflightAsync(
        List<(string Dc, ServerGroup Group, ReleaseSpec Release)> selected,
        List<(string Dc, ServerGroup Group, ReleaseSpec Release)> needed,
        Dictionary<ReleaseId, LiveRelease> live,
        CancellationToken cancellationToken)
    {
        var problems = new List<string>();
        foreach (var (dc, group, release) in needed)
        {
            var id = new ReleaseId(dc, model.LiveNamespace(group), release.Name);
            var why = live.GetValueOrDefault(id)?.LastRecord is null
                ? "is not deployed"
                : await UnhealthyAsync(clusters[dc], live[id], cancellationToken);
            if (why is null)
            {
                continue;
            }

            var dependents = selected.Where(s => s.Dc == dc && s.Release.Needs.Any(n => n.Namespace == group.Namespace && n.Release == release.Name))
                .Select(s => $"{s.Group.Namespace}/{s.Release.Name}");
            problems.Add(
                $"{string.Join(", ", dependents.DefaultIfEmpty("the selection"))} in {dc} needs {group.Namespace}/{release.Name}, which {why}; " +
                $"create it first with 'capstan deploy --repo {model.RepoRoot} --dc {dc} --namespace {group.Namespace} --release {release.Name}', or add --include-needs");
        }

        if (problems.Count > 0)
        {
            throw new PreflightException(problems);
        }
    }

    private static async Task<string?> UnhealthyAsync(IClusterClient client, LiveRelease release, CancellationToken cancellationToken)
    {
        foreach (var obj in release.Objects.Values.Where(o => o["kind"]?.GetValue<string>() == "Deployment"))
        {
            var status = await client.GetRolloutStatusAsync(obj.Kube.Namespace!, obj.Kube.Name, cancellationToken);
            if (!status.Done)
            {
                return $"is not healthy ({status.Message}{(status.PodProblem is null ? string.Empty : ": " + status.PodProblem)})";
            }
        }

        return null;
    }
}

/// <summary>The selection needs releases that are missing or unhealthy; nothing was applied.</summary>
public sealed class PreflightException(IReadOnlyList<string> problems) : CapstanException(RefusalKind.Failure, "preflight failed: " + string.Join("; ", problems))
{
    /// <summary>One line per missing need, with the command that fixes it.</summary>
    public IReadOnlyList<string> Problems { get; } = problems;
}

/// <summary>
/// The journal of the running plan in the state store: a header (plan, who, since when) and one small key per release
/// that has started, with how far it got — small writes, so a farm of thousands of releases does not rewrite one big
/// value on every step. A deploy killed half-way leaves it behind; the next deploy reports it and continues from what
/// the clusters hold.
/// </summary>
internal sealed class DeployJournal(IStateStore store, string key, Plan plan, string actor, TimeProvider time)
{
    /// <summary>Most operations one transaction carries (etcd refuses more than 128 by default).</summary>
    private const int OpsPerTxn = 100;

    private readonly DateTimeOffset _started = time.GetUtcNow();

    private string ReleasesPrefix => key + "-releases/";

    /// <summary>The phases timed so far (<see cref="DeployProgress.PhasesKey"/>).</summary>
    private string PhasesKey => DeployProgress.PhasesKey(key);

    public async Task StartAsync(string reason, IReadOnlyList<PhaseTiming> phasesBefore, CancellationToken cancellationToken)
    {
        await DeleteReleaseKeysAsync(cancellationToken);
        var header = new JsonObject
        {
            ["planId"] = plan.Id,
            ["actor"] = actor,
            ["reason"] = reason,
            ["started"] = _started.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
            ["releases"] = plan.Actions.Count,
            // What the plan changes, so that another process (the dashboard) can show its stages and releases.
            ["plan"] = new JsonArray([.. plan.Actions.Where(a => a.Change != ReleaseChange.NoOp).Select(a => (JsonNode)new JsonObject
            {
                ["release"] = a.Id.ToString(),
                ["stage"] = a.Stage.ToString(),
                ["change"] = a.Change.ToString(),
            })]),
        };
        await store.CommitAsync(new StoreTxn([], [new StoreOp.Put(key, header.ToJsonString()), new StoreOp.Put(PhasesKey, PhaseTiming.ToJson(phasesBefore).ToJsonString())]), cancellationToken);
    }

    /// <summary>Records the phases timed so far.</summary>
    public Task PhasesAsync(IReadOnlyList<PhaseTiming> phases, CancellationToken cancellationToken) =>
        store.CommitAsync(new StoreTxn([], [new StoreOp.Put(PhasesKey, PhaseTiming.ToJson(phases).ToJsonString())]), cancellationToken);

    /// <summary>Records a release's state and when it reached each state so far: <c>{"state": "Waiting", "times": {…}}</c>.</summary>
    public Task UpdateAsync(ReleaseId id, ReleaseState state, IReadOnlyDictionary<ReleaseState, double> times, CancellationToken cancellationToken) =>
        store.CommitAsync(new StoreTxn([], [new StoreOp.Put(ReleasesPrefix + id, new JsonObject { ["state"] = state.ToString(), ["times"] = PhaseTiming.TimesJson(times) }.ToJsonString())]), cancellationToken);

    private async Task DeleteReleaseKeysAsync(CancellationToken cancellationToken)
    {
        var (left, _) = await store.ListAsync(ReleasesPrefix, cancellationToken);
        foreach (var chunk in left.Chunk(OpsPerTxn))
        {
            await store.CommitAsync(new StoreTxn([], [.. chunk.Select(v => (StoreOp)new StoreOp.Delete(v.Key))]), cancellationToken);
        }
    }

    /// <summary>Most plan records kept; older ones are removed when a plan finishes.</summary>
    public const int PlanRecordsKept = 200;

    /// <summary>
    /// Ends the journal and, in the same transaction, writes the plan's record: who, why, when, the result of every
    /// release and the cause of a failure.
    /// </summary>
    public async Task FinishAsync(string recordsPrefix, DeployResult result, string reason, CancellationToken cancellationToken)
    {
        var invariant = System.Globalization.CultureInfo.InvariantCulture;
        var record = new JsonObject
        {
            ["planId"] = plan.Id,
            ["actor"] = actor,
            ["reason"] = reason,
            ["started"] = _started.ToString("O", invariant),
            ["finished"] = time.GetUtcNow().ToString("O", invariant),
            ["succeeded"] = result.Succeeded,
            ["cause"] = result.Cause,
            ["gatesSkipped"] = result.GatesSkipped,
            ["gates"] = new JsonArray([.. result.Gates.Select(g => (JsonNode)g.ToJson())]),
            ["halted"] = result.Halted,
            ["cancelled"] = result.Cancelled is { } cancel ? new JsonObject { ["actor"] = cancel.Actor, ["reason"] = cancel.Reason, ["at"] = cancel.At.ToString("O", invariant) } : null,
            ["phases"] = PhaseTiming.ToJson(result.Phases),
            ["releases"] = new JsonArray([.. result.Releases.Select(r => (JsonNode)new JsonObject
            {
                ["release"] = r.Id.ToString(),
                ["stage"] = plan.Actions.FirstOrDefault(a => a.Id == r.Id)?.Stage.ToString(),
                ["result"] = r.State.ToString(),
                ["revision"] = r.Revision,
                ["detail"] = r.Detail,
                ["times"] = PhaseTiming.TimesJson(result.Times.GetValueOrDefault(r.Id)),
            })]),
        };
        var recordKey = $"{recordsPrefix}{_started.UtcDateTime.ToString("yyyyMMdd'T'HHmmssfff'Z'", invariant)}-{plan.Id}";
        var current = await store.GetAsync(key, cancellationToken);
        var compares = current is null ? new List<StoreCompare>() : [new StoreCompare(key, current.ModRevision)];
        var ops = new List<StoreOp> { new StoreOp.Put(recordKey, record.ToJsonString()), new StoreOp.Delete(PhasesKey) };
        if (current is not null)
        {
            ops.Add(new StoreOp.Delete(key));
        }

        await store.CommitAsync(new StoreTxn(compares, ops), cancellationToken);
        await DeleteReleaseKeysAsync(cancellationToken);

        var (records, _) = await store.ListAsync(recordsPrefix, cancellationToken);
        var excess = records.OrderBy(r => r.Key, StringComparer.Ordinal).Take(Math.Min(OpsPerTxn, Math.Max(0, records.Count - PlanRecordsKept))).ToList();
        if (excess.Count > 0)
        {
            await store.CommitAsync(new StoreTxn([], [.. excess.Select(r => (StoreOp)new StoreOp.Delete(r.Key))]), cancellationToken);
        }
    }
}
