using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;
using Capstan.Core.Planning;
using Capstan.Core.Rendering;
using Capstan.Deploy;
using Capstan.Deploy.Actions;
using Capstan.Deploy.Gates;
using Capstan.Deploy.Json;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan deploy</c> and <c>capstan bootstrap</c>: plan and run a deploy.</summary>
internal sealed class DeployCommand(IAnsiConsole console, TextWriter error, CliEnvironment env)
{
    public Command Build() => Make("deploy", "Render, plan and deploy the farm or a selection of it, in dependency and stage order, with rollback on failure", bootstrap: false);

    public Command BuildBootstrap() => Make("bootstrap", "Bring up every release of a datacenter's cluster, empty or not: namespaces, support releases, then MediaWiki", bootstrap: true);

    private Command Make(string name, string description, bool bootstrap)
    {
        var repo = CommonOptions.Repo();
        var dc = bootstrap ? new Option<string?>("--dc") { Description = "The datacenter to bring up", Required = true, HelpName = "DC" } : CommonOptions.Datacenter();
        var ns = CommonOptions.Namespace();
        var release = CommonOptions.Release();
        var environment = CommonOptions.Environment();
        var subset = CommonOptions.Subset();
        var state = CommonOptions.State();
        var stateFile = CommonOptions.StateFile();
        var reason = CommonOptions.Reason($"Why: recorded with each release's new revision and the plan (default: \"{CommonOptions.NoReasonGiven}\")");
        var actor = CommonOptions.Actor();
        var output = CommonOptions.Output("text", "json");
        var yes = new Option<bool>("--yes", "-y") { Description = "Deploy without asking (required when stdin is not a terminal)" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Compute and print the plan; change nothing" };
        var noRollback = new Option<bool>("--no-rollback") { Description = "On failure leave everything as it is, for debugging" };
        var includeNeeds = new Option<bool>("--include-needs") { Description = "Also deploy the releases the selection needs" };
        var forceConflicts = new Option<bool>("--force-conflicts") { Description = "Take back fields that someone changed outside Capstan" };
        var concurrency = new Option<int>("--concurrency") { Description = "Releases deployed at once per cluster", DefaultValueFactory = _ => Planner.DefaultConcurrency, HelpName = "N" };
        var buildImage = new Option<bool>("--build-image") { Description = "First build the MediaWiki image from image.sources, put it in the registry and write its reference to the images values file" };
        var prePull = new Option<bool>("--pre-pull") { Description = "Warm the nodes with the new images before the rollout starts (always, when capstan.yaml's pre-pull.enabled is true)" };
        var noPrePull = new Option<bool>("--no-pre-pull") { Description = "Do not warm the nodes, whatever capstan.yaml says" };
        var prePullEgress = new Option<string?>("--pre-pull-egress") { Description = "The registry egress the pre-pull may use (implies --pre-pull); as many nodes pull at once as fit at pre-pull.node-bandwidth each (default: pre-pull.max-egress, else 10Gbit/s)", HelpName = "RATE" };
        var releaseHold = new Option<string[]>("--release-hold") { Description = "Lift the hold a rollback put on this release (DC/NAMESPACE/RELEASE; repeatable; needs --reason): its held revision may be applied again", HelpName = "RELEASE" };
        var skipGates = new Option<bool>("--skip-gates") { Description = "Go from stage to stage without the gates of capstan.yaml (needs --reason; recorded in the plan record and announced)" };
        var command = new Command(name, description) { repo, dc, subset, environment, state, stateFile, reason, actor, output, yes, dryRun, noRollback, forceConflicts, concurrency, buildImage, prePull, noPrePull, prePullEgress, releaseHold, skipGates };
        if (!bootstrap)
        {
            command.Add(ns);
            command.Add(release);
            command.Add(includeNeeds);
        }

        command.SetAction(async (parse, ct) =>
        {
            var (subsetName, testEnvironment) = CommonOptions.Scope(parse.GetValue(subset), parse.GetValue(environment), () => RepoSession.Open(env, parse.GetValue(repo)).Model, error);
            var intent = new DeployIntent(new RenderSelection(parse.GetValue(dc), bootstrap ? null : parse.GetValue(ns), bootstrap ? null : parse.GetValue(release), subsetName), string.Empty)
            {
                Bootstrap = bootstrap,
                IncludeNeeds = parse.GetValue(includeNeeds),
                DryRun = parse.GetValue(dryRun),
                Concurrency = parse.GetValue(concurrency),
                Reason = parse.GetValue(reason),
                NoRollback = parse.GetValue(noRollback),
                ForceConflicts = parse.GetValue(forceConflicts),
                PrePull = parse.GetValue(prePull),
                NoPrePull = parse.GetValue(noPrePull),
                PrePullEgress = parse.GetValue(prePullEgress) is { } egress ? LocalCommand.Rate(egress, "--pre-pull-egress") : null,
                LiftHolds = (parse.GetValue(releaseHold) ?? []).Distinct(StringComparer.Ordinal).ToList(),
                SkipGates = parse.GetValue(skipGates),
            };
            intent.Check();
            return await RunAsync(intent, parse.GetValue(repo), parse.GetValue(state), parse.GetValue(stateFile), parse.GetValue(actor), testEnvironment,
                parse.GetValue(buildImage), json: parse.GetValue(output) == "json", confirmed: parse.GetValue(yes), ct);
        });
        return command;
    }

    /// <summary>Plans the intent, shows the plan, asks, runs it with progress, and says how it ended.</summary>
    internal async Task<int> RunAsync(
        DeployIntent intent, string? repo, string? state, string? stateFile, string? actor, string? testEnvironment, bool buildImage, bool json, bool confirmed, CancellationToken ct,
        (Core.Config.Stage After, Func<CancellationToken, Task<string?>> Ask)? pause = null)
    {
        Dictionary<string, string>? overrides = null;
        IReadOnlyList<PhaseTiming> built = [];
        if (buildImage)
        {
            // A dry run plans with the image it built, as the real run would, without writing the images file.
            var repoSession = RepoSession.Open(env, repo);
            var publisher = repoSession.Images();
            if (await publisher.BuildForDeployAsync(writeValues: !intent.DryRun, ct) is { } change && intent.DryRun)
            {
                overrides = new Dictionary<string, string>(StringComparer.Ordinal) { [change.File] = change.Text };
            }

            built = publisher.Phases;
        }

        var opening = TimeProvider.System.GetTimestamp();
        await using var session = await DeploySession.OpenAsync(env, repo, state, stateFile, intent.Selection, ct, overrides: overrides, testEnvironment: testEnvironment);
        built = [.. built, new PhaseTiming("open", TimeProvider.System.GetElapsedTime(opening))];
        var action = session.Deploy(state);
        DeployProposal proposal;
        try
        {
            var planning = TimeProvider.System.GetTimestamp();
            proposal = await action.PrepareAsync(intent with { Actor = session.Repo.Actor(actor) }, ct);
            proposal = proposal with
            {
                Executor = proposal.Executor with { PhasesBefore = [.. built, new PhaseTiming("plan", TimeProvider.System.GetElapsedTime(planning))], PauseAfter = pause?.After, Pause = pause?.Ask },
            };
        }
        catch (PreflightException ex)
        {
            foreach (var problem in ex.Problems)
            {
                error.WriteLine($"capstan: preflight: {problem}");
            }

            error.WriteLine("capstan: nothing was applied");
            return ExitCodes.UserError;
        }

        foreach (var note in proposal.Notes)
        {
            error.WriteLine($"capstan: note: {note}");
        }

        var writer = console.Profile.Out.Writer;
        ShowPlan(writer, proposal, json);
        if (proposal.Plan.IsNoOp)
        {
            if (proposal.AbandonedLockRemoved is { } abandoned)
            {
                error.WriteLine($"capstan: note: removed the deploy lock of {FreeText.Printable(abandoned.ToString())}: its process is gone");
            }

            error.WriteLine("capstan: nothing to do: every release matches its last deploy");
            return ExitCodes.Success;
        }

        if (intent.DryRun)
        {
            error.WriteLine("capstan: dry run: nothing was applied");
            return ExitCodes.Success;
        }

        if (!confirmed && !await ConfirmAsync(writer, proposal, ct))
        {
            error.WriteLine("capstan: not confirmed; nothing was applied");
            return ExitCodes.UserError;
        }

        DeployOutcome outcome;
        try
        {
            outcome = await RunWithProgressAsync(action, proposal, writer, json, ct);
        }
        catch (DeployLockedException ex)
        {
            error.WriteLine($"capstan: error: {FreeText.Printable(ex.Message)}");
            return ExitCodes.Locked;
        }
        catch (GatePreflightException ex)
        {
            error.WriteLine($"capstan: error: {ex.Message}");
            error.WriteLine("capstan: nothing was applied; fix the check or Prometheus, or deploy with --skip-gates --reason …");
            return ExitCodes.UserError;
        }
        catch (PrePullException ex)
        {
            error.WriteLine($"capstan: {(ex.Interrupted ? "interrupted" : "error")}: {ex.Message}");
            return ex.Interrupted ? ExitCodes.Interrupted : ExitCodes.Failure;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            error.WriteLine($"capstan: interrupted: plan {proposal.Plan.Id} stopped part-way; run the same command again to resume it " +
                            "(the next deploy continues from what the clusters hold; 'capstan status' shows where each release is)");
            return ExitCodes.Interrupted;
        }

        foreach (var lifted in outcome.HoldsLifted)
        {
            error.WriteLine($"capstan: the hold of {lifted} is lifted ({FreeText.Printable(proposal.Executor.Reason)})");
        }

        writer.Write(json ? PlanJson.Of(outcome.Result).ToJsonString() + "\n" : PlanView.Summary(outcome.Result));
        writer.Flush();
        return ExitCodes.Of(outcome.Result);
    }

    /// <summary>The plan as a table (with the gates and a dry run's pull cost) or as JSON.</summary>
    private static void ShowPlan(TextWriter writer, DeployProposal proposal, bool json)
    {
        if (json)
        {
            var planJson = PlanJson.Of(proposal.Plan);
            if (proposal.PullCost is { } cost)
            {
                planJson["pullCost"] = PlanJson.PullCost(cost);
            }

            writer.WriteLine(planJson.ToJsonString());
            return;
        }

        writer.Write(PlanView.Table(proposal.Plan));
        foreach (var line in proposal.GateLines)
        {
            writer.WriteLine(line);
        }

        if (proposal.PullCost is { Count: > 0 } rows)
        {
            writer.Write(DeployPullCostView.Table(rows));
        }
    }

    /// <summary>Asks on the terminal; without one nobody can confirm, which is an error that says to pass --yes.</summary>
    private async Task<bool> ConfirmAsync(TextWriter writer, DeployProposal proposal, CancellationToken ct)
    {
        if (!env.Interactive)
        {
            throw new UserInputException("stdin is not a terminal, so nobody can confirm: pass --yes to deploy");
        }

        writer.Write($"Deploy {proposal.Changing} releases as planned above? [y/N] ");
        writer.Flush();
        var answer = (await env.Input.ReadLineAsync(ct))?.Trim();
        return answer is "y" or "Y" or "yes";
    }

    /// <summary>Runs the plan: a live view on a terminal, plain lines (or JSON lines) everywhere else.</summary>
    private async Task<DeployOutcome> RunWithProgressAsync(DeployAction action, DeployProposal proposal, TextWriter writer, bool json, CancellationToken ct)
    {
        if (json || !env.Interactive)
        {
            IDeployObserver observer = json ? new JsonEventObserver(writer) : new LineObserver(writer);
            return await action.RunAsync(proposal, observer, ct);
        }

        var view = new LiveDeployView(proposal.Plan);
        DeployOutcome? outcome = null;
        await console.Live(view.Render()).AutoClear(false).StartAsync(async ctx =>
        {
            view.Changed = () => ctx.UpdateTarget(view.Render());
            outcome = await action.RunAsync(proposal, view, ct);
            ctx.UpdateTarget(view.Render());
        });
        return outcome!;
    }
}

/// <summary>Plain progress lines: one per event, timestamped.</summary>
internal sealed class LineObserver(TextWriter writer) : IDeployObserver
{
    private readonly Lock _lock = new();

    public void OnEvent(DeployEvent e)
    {
        if (!e.Logged)
        {
            return;
        }

        lock (_lock)
        {
            writer.WriteLine(e.LogLine());
            writer.Flush();
        }
    }
}

/// <summary>Progress as JSON lines, for machines.</summary>
internal sealed class JsonEventObserver(TextWriter writer) : IDeployObserver
{
    private readonly Lock _lock = new();

    public void OnEvent(DeployEvent e)
    {
        if (!e.Logged)
        {
            return;
        }

        var node = new JsonObject
        {
            ["event"] = "progress",
            ["at"] = e.At.ToString("O", CultureInfo.InvariantCulture),
            ["release"] = e.Release?.ToString(),
            ["state"] = e.State?.ToString().ToLowerInvariant(),
            ["message"] = e.Message,
        };
        lock (_lock)
        {
            writer.WriteLine(node.ToJsonString());
            writer.Flush();
        }
    }
}

/// <summary>How plans and results print.</summary>
internal static class PlanView
{
    public static string Table(Plan plan)
    {
        var table = new PlainTable("DC", "NAMESPACE", "RELEASE", "STAGE", "CHANGE", "APPLY", "PRUNE", "NEEDS");
        foreach (var a in plan.Actions.OrderBy(a => a.Stage).ThenBy(a => a.Id.Datacenter, StringComparer.Ordinal))
        {
            table.Add(a.Id.Datacenter, a.Id.Namespace, a.Id.Release, a.Stage.ToString().ToLowerInvariant(), a.Change.ToString().ToLowerInvariant(),
                a.Apply.Count.ToString(CultureInfo.InvariantCulture), a.Prune.Count.ToString(CultureInfo.InvariantCulture),
                a.Needs.Count == 0 ? "-" : string.Join(",", a.Needs.Select(n => n.Namespace == a.Id.Namespace ? n.Release : $"{n.Namespace}/{n.Release}")));
        }

        var head = $"plan {plan.Id}: {plan.Actions.Count(a => a.Change != ReleaseChange.NoOp)} of {plan.Actions.Count} releases change (a release counts once per datacenter)" +
                   (plan.Namespaces.Count > 0 ? $", {plan.Namespaces.Count} namespaces to create" : string.Empty) + "\n";
        return head + table;
    }

    public static string Summary(DeployResult result)
    {
        var table = new PlainTable("RELEASE", "RESULT", "REVISION", "DETAIL");
        foreach (var r in result.Releases)
        {
            table.Add(r.Id.ToString(), PlanJson.Word(r.State), r.Revision?.ToString(CultureInfo.InvariantCulture) ?? "-", r.Detail);
        }

        return $"\n{table}{PlanJson.Verdict(result)}\n" +
               (result.Cause is null ? string.Empty : $"cause: {result.Cause}\n") +
               (result.GateFailure is { } gate ? string.Join("\n", gate.Explain().Skip(1)) + "\nthe releases rolled back are held: 'capstan status' lists them; fix the image or the repo, or lift a hold with 'deploy --release-hold RELEASE --reason …'\n" : string.Empty) +
               (result.Halted is not null && !result.Succeeded ? "the releases rolled back are held: 'capstan status' lists them\n" : string.Empty) +
               (result.GatesSkipped is { } skipped ? $"gates skipped: {skipped}\n" : string.Empty) +
               (result.Phases.Count > 0 ? "phases: " + string.Join(", ", result.Phases.Select(p => $"{p.Name} {p.Duration.TotalSeconds:0.0} s")) + "\n" : string.Empty) +
               (result.RollbackFailed
                   ? $"rollback failed for {string.Join(", ", result.Releases.Where(r => r.State == ReleaseState.RollbackFailed).Select(r => r.Id))}: they run neither the new nor the old revision; 'capstan status' shows them, and a deploy or 'capstan rollback' repairs them\n"
                   : string.Empty);
    }
}
