using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Planning;
using Capstan.Core.Rendering;
using Capstan.Core.State;
using Capstan.Deploy.Gates;
using Capstan.Kubernetes;
using Capstan.State;
using Microsoft.Extensions.Logging;

namespace Capstan.Deploy.Actions;

/// <summary>
/// What someone asks of a deploy, as a front end (the CLI's flags, a dashboard form, a backport) binds it. Nothing is
/// read or checked yet: <see cref="DeployAction"/> does that.
/// </summary>
public sealed record DeployIntent(RenderSelection Selection, string Actor)
{
    /// <summary>The reason a deploy without one records.</summary>
    public const string NoReasonGiven = "no reason given";

    /// <summary>A bootstrap of the selection's datacenter: every release, with its needs.</summary>
    public bool Bootstrap { get; init; }

    /// <summary>Also deploy the releases the selection needs.</summary>
    public bool IncludeNeeds { get; init; }

    /// <summary>Plan (and cost the pulls); apply nothing.</summary>
    public bool DryRun { get; init; }

    /// <summary>Releases deployed at once per cluster (1–500).</summary>
    public int Concurrency { get; init; } = Planner.DefaultConcurrency;

    /// <summary>Why, as the person said it; null or blank for none.</summary>
    public string? Reason { get; init; }

    /// <summary>On failure leave everything as it is.</summary>
    public bool NoRollback { get; init; }

    /// <summary>Take back fields someone changed outside Capstan.</summary>
    public bool ForceConflicts { get; init; }

    /// <summary>Warm the nodes whatever capstan.yaml says.</summary>
    public bool PrePull { get; init; }

    /// <summary>Do not warm the nodes whatever capstan.yaml says.</summary>
    public bool NoPrePull { get; init; }

    /// <summary>The registry egress a pre-pull may use, in bytes per second (implies <see cref="PrePull"/>).</summary>
    public long? PrePullEgress { get; init; }

    /// <summary>The releases (<c>dc/namespace/release</c>) whose holds this deploy lifts; needs a reason.</summary>
    public IReadOnlyCollection<string> LiftHolds { get; init; } = [];

    /// <summary>Go from stage to stage without the gates; needs a reason.</summary>
    public bool SkipGates { get; init; }

    private bool HasReason => !string.IsNullOrWhiteSpace(Reason);

    /// <summary>Refuses an intent that contradicts itself or lacks what it needs, before anything is read.</summary>
    /// <summary>
    /// The checked intent of a deploy that ships a change the command made to the repo (a train move, a backport): the
    /// whole farm, recorded with the change's description and then <paramref name="why"/>; skipping the gates needs a why.
    /// </summary>
    public static DeployIntent ForRepoChange(string description, string? why, bool dryRun, bool skipGates)
    {
        var intent = new DeployIntent(new RenderSelection(), string.Empty)
        {
            Reason = string.IsNullOrWhiteSpace(why) ? description : $"{description}: {why}",
            DryRun = dryRun,
            SkipGates = skipGates,
        };
        if (skipGates && string.IsNullOrWhiteSpace(why))
        {
            throw new UserInputException("--skip-gates needs --reason: deploying past the gates is recorded and announced with why");
        }

        intent.Check();
        return intent;
    }

    public void Check()
    {
        if (Concurrency is < 1 or > 500)
        {
            throw new UserInputException("--concurrency must be between 1 and 500");
        }

        if (NoPrePull && (PrePull || PrePullEgress is not null))
        {
            throw new UserInputException($"--no-pre-pull contradicts {(PrePull ? "--pre-pull" : "--pre-pull-egress")}: give one");
        }

        if (SkipGates && !HasReason)
        {
            throw new UserInputException("--skip-gates needs --reason: deploying past the gates is recorded and announced with why");
        }

        if (LiftHolds.Count > 0 && !HasReason)
        {
            throw new UserInputException("--release-hold needs --reason: lifting a hold is recorded with why");
        }

        if (LiftHolds.FirstOrDefault(r => ReleaseId.Parse(r) is null) is { } bad)
        {
            throw new UserInputException($"--release-hold '{bad}' is not DC/NAMESPACE/RELEASE");
        }
    }

    /// <summary>The reason recorded: the one given, else one that says none was given (and what a bootstrap was of).</summary>
    public string RecordedReason()
    {
        var reason = HasReason ? Reason! : Bootstrap ? $"bootstrap of {Selection.Datacenter} ({NoReasonGiven})" : NoReasonGiven;
        return LiftHolds.Count > 0 ? $"{reason} (lifts the hold of {string.Join(", ", LiftHolds.Order(StringComparer.Ordinal))})" : reason;
    }
}

/// <summary>What a deploy runs on: the farm, its clusters and state store, and the dynamic state read for it.</summary>
public sealed record DeployContext(FarmModel Model, FarmRenderer Renderer, IClusters Clusters, IStateStore Store, DynamicState? State, TimeProvider Time)
{
    /// <summary>
    /// The state-seed file <see cref="State"/> was read from without being written to the store (a fresh farm), or null.
    /// The first real deploy writes it with <see cref="WriteSeedAsync"/>.
    /// </summary>
    public string? UnwrittenSeed { get; init; }

    /// <summary>Writes the unwritten seed to the store.</summary>
    public Func<CancellationToken, Task> WriteSeedAsync { get; init; } = _ => Task.CompletedTask;

    /// <summary>Where registry credentials are looked up (see <c>RegistryCredentials.Find</c>).</summary>
    public Func<string, string?> Environment { get; init; } = System.Environment.GetEnvironmentVariable;

    /// <summary>The stage gates; null for none.</summary>
    public StageGates? Gates { get; init; }

    /// <summary>Where the deploy logs (its trace of where a plan's time goes); null for nowhere.</summary>
    public ILogger? Logger { get; init; }
}

/// <summary>A planned deploy, for the front end to show and confirm before <see cref="DeployAction.RunAsync"/>.</summary>
public sealed record DeployProposal(DeployIntent Intent, Plan Plan, ExecutorOptions Executor, IReadOnlyList<string> Notes, IReadOnlyList<ReleaseHold> Held)
{
    /// <summary>What the new images cost to pull (a dry run's), else null.</summary>
    public IReadOnlyList<DeployPullCost>? PullCost { get; init; }

    /// <summary>The deploy lock a no-op plan found abandoned by a gone process and removed, else null.</summary>
    public LockHolder? AbandonedLockRemoved { get; init; }

    /// <summary>What the gates will do between the plan's stages, one line each.</summary>
    public IReadOnlyList<string> GateLines => Executor.Gates?.Describe(Plan, Executor.SkipGatesReason).ToList() ?? [];

    /// <summary>The releases the plan changes.</summary>
    public int Changing => Plan.Actions.Count(a => a.Change != ReleaseChange.NoOp);
}

/// <summary>How a deploy ended, and the holds it lifted.</summary>
public sealed record DeployOutcome(DeployResult Result, IReadOnlyList<ReleaseId> HoldsLifted);

/// <summary>
/// The deploy action every front end calls: from an intent to a plan (the pre-pull policy, the recorded reason, the
/// gates, the vanished-state check, the pull cost of a dry run), and from a confirmed plan to a result (the seed written,
/// the plan run, the holds it lifted released). Front ends bind input, confirm and render; they decide nothing here.
/// </summary>
public sealed class DeployAction(DeployContext context)
{
    private DeployService Service { get; } = new(context.Model, context.Renderer, context.Clusters, context.Store, context.Time, context.Logger);

    /// <summary>
    /// Checks the intent, renders, preflights and plans. Throws <see cref="PreflightException"/> when a need is missing,
    /// and refuses a plan from a seed when the state evidently existed and vanished.
    /// </summary>
    public async Task<DeployProposal> PrepareAsync(DeployIntent intent, CancellationToken cancellationToken)
    {
        intent.Check();
        var model = context.Model;
        var prePull = model.PrePull with { MaxEgress = intent.PrePullEgress ?? model.PrePull.MaxEgress };
        var warm = !intent.NoPrePull && (intent.PrePull || intent.PrePullEgress is not null || prePull.Enabled);
        var executor = new ExecutorOptions
        {
            Actor = intent.Actor,
            Reason = intent.RecordedReason(),
            NoRollback = intent.NoRollback,
            ForceConflicts = intent.ForceConflicts,
            PrePull = warm ? prePull : null,
            Gates = context.Gates,
            SkipGatesReason = intent.SkipGates ? intent.Reason : null,
        };
        var request = new DeployRequest(intent.Selection, intent.IncludeNeeds || intent.Bootstrap, intent.DryRun, intent.Concurrency, executor)
        {
            EnforceHolds = true,
            ReleasingHolds = intent.LiftHolds.ToHashSet(StringComparer.Ordinal),
        };
        var prepared = await Service.PrepareAsync(request, context.State, cancellationToken);
        CheckStateDidNotVanish(prepared.Plan);
        var proposal = new DeployProposal(intent, prepared.Plan, executor, prepared.Notes, prepared.Held);
        if (intent.DryRun)
        {
            // A dry run also says what the new images cost the registry and the nodes.
            return proposal with { PullCost = await DeployPullCost.ForAsync(model, context.Clusters, prepared.Plan, prePull, context.Environment, cancellationToken) };
        }

        return prepared.Plan.IsNoOp ? proposal with { AbandonedLockRemoved = await Service.ReleaseAbandonedLockAsync(cancellationToken) } : proposal;
    }

    /// <summary>
    /// Runs a confirmed plan under the deploy lock: a fresh farm's seed is written first, and a hold this deploy lifted
    /// is released once its release deployed (one whose release did not deploy stays).
    /// </summary>
    public async Task<DeployOutcome> RunAsync(DeployProposal proposal, IDeployObserver observer, CancellationToken cancellationToken)
    {
        if (proposal.Intent.DryRun)
        {
            throw new InvalidOperationException("a dry run's plan is not run");
        }

        await context.WriteSeedAsync(cancellationToken);
        var result = await Service.RunAsync(proposal.Plan, proposal.Executor, observer, cancellationToken);
        var lifted = new List<ReleaseId>();
        var holds = new HoldStore(context.Store, context.Model.Project);
        foreach (var hold in proposal.Held.Where(h => proposal.Intent.LiftHolds.Contains(h.Release.ToString())
            && result.Releases.Any(r => r.Id == h.Release && r.State == ReleaseState.Done)))
        {
            await holds.ReleaseAsync(hold.Release, cancellationToken);
            lifted.Add(hold.Release);
        }

        return new DeployOutcome(result, lifted);
    }

    /// <summary>
    /// An empty state store with cron releases Capstan deployed means the state existed and vanished (the store was wiped
    /// or replaced): planning from the seed would undo whatever the state said, such as a switchover. Refuse.
    /// </summary>
    private void CheckStateDidNotVanish(Plan plan)
    {
        if (context.UnwrittenSeed is null)
        {
            return;
        }

        var deployed = plan.Actions.FirstOrDefault(a => a.PreviousRevision is not null && context.Model.FindGroup(a.Id.Namespace)?.Traits.Periodic == true);
        if (deployed is not null)
        {
            throw new StateStoreException(
                $"the state store {context.Store.Address} is empty, but {deployed.Id} runs revision {deployed.PreviousRevision} that Capstan deployed with a state: " +
                $"the dynamic state existed and vanished, so it is not re-seeded from {context.UnwrittenSeed}. {StateStoreException.VanishedAdvice}");
        }
    }
}
