using Capstan.Core.Config;
using Capstan.Core.Planning;

namespace Capstan.Deploy.Gates;

/// <summary>
/// The farm's gates as the executor meets them: which gate follows a stage, which of the plan's releases it judges
/// (the MediaWiki releases the stage upgraded: a first install has nothing running to protect and nothing to go back
/// to), and each release's baseline (a canary's main release).
/// </summary>
public sealed class StageGates(FarmModel model, GateRunner runner)
{
    /// <summary>The gate after a stage, or null.</summary>
    public GateSpec? After(Stage stage) => model.Gates.After(stage);

    /// <summary>
    /// The releases of the plan that the gate after <paramref name="stage"/> judges: the stage's MediaWiki releases the
    /// plan upgrades, and the canaries it leaves as they are that already run the image their main release moves to (a
    /// canary deployed on its own first, or by a deploy that was interrupted in its soak, is judged before production
    /// follows it).
    /// </summary>
    public IReadOnlyList<GateTarget> Targets(Plan plan, Stage stage) =>
        [.. plan.Actions.Where(a => a.Stage == stage && a.Kind == ReleaseKind.MediaWiki && (a.Change == ReleaseChange.Upgrade || AheadOfItsMain(plan, a)))
            .Select(a => new GateTarget(a.Id, BaselineOf(a.Id)))];

    private bool AheadOfItsMain(Plan plan, ReleaseAction canary) =>
        canary.Change == ReleaseChange.NoOp
        && BaselineOf(canary.Id) is { } main
        && plan.Actions.FirstOrDefault(a => a.Id == canary.Id with { Release = main }) is { Change: ReleaseChange.Upgrade } mainAction
        && DeployService.AppImage(mainAction.Desired) is { } image
        && image == DeployService.AppImage(canary.Desired)
        && image != DeployService.AppImage(mainAction.Apply.Where(c => c.Live is not null).Select(c => c.Live!));

    /// <summary>What the plan's gates will do, one line each (for the plan shown before a deploy).</summary>
    public IEnumerable<string> Describe(Plan plan, string? skipReason)
    {
        foreach (var stage in plan.Actions.Select(a => a.Stage).Distinct().Order())
        {
            if (After(stage) is not { } gate || !plan.Actions.Any(a => a.Stage > stage && a.Change != ReleaseChange.NoOp))
            {
                continue;
            }

            var targets = Targets(plan, stage);
            yield return targets.Count == 0
                ? $"gate after {gate.StageWord}: not opened (no release of the stage is upgraded, and no canary runs what its main release moves to)"
                : skipReason is not null
                    ? $"gate after {gate.StageWord}: SKIPPED ({skipReason})"
                    : $"gate after {gate.StageWord}: {Durations.Human(gate.Soak)} soak, {gate.Checks.Count} check(s) on {targets.Count} upgraded release(s), sampled every {Durations.Human(gate.Interval)}";
        }
    }

    /// <summary>Asks each gate's queries once, before anything is applied (see <see cref="GateRunner.PreflightAsync"/>).</summary>
    public async Task PreflightAsync(Plan plan, CancellationToken cancellationToken)
    {
        foreach (var stage in plan.Actions.Select(a => a.Stage).Distinct())
        {
            if (After(stage) is { } gate && Targets(plan, stage) is { Count: > 0 } targets)
            {
                await runner.PreflightAsync(gate, targets, cancellationToken);
            }
        }
    }

    /// <summary>Runs a gate on its targets.</summary>
    public Task<GateVerdict> RunAsync(GateSpec gate, IReadOnlyList<GateTarget> targets, Action<GateProgress> progress, CancellationToken cancellationToken) =>
        runner.RunAsync(gate, targets, progress, cancellationToken);

    private string? BaselineOf(ReleaseId id)
    {
        var group = model.Groups.FirstOrDefault(g => model.LiveNamespace(g) == id.Namespace);
        return group?.Releases.FirstOrDefault(r => r.Name == id.Release)?.Canary?.Of;
    }
}
