using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;
using Capstan.Core.Planning;
using Capstan.Core.Rendering;
using Capstan.Deploy;
using Capstan.Deploy.Gates;
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
            var json = parse.GetValue(output) == "json";
            if (parse.GetValue(concurrency) is < 1 or > 500)
            {
                throw new UserInputException("--concurrency must be between 1 and 500");
            }

            var (subsetName, testEnvironment) = CommonOptions.Scope(parse.GetValue(subset), parse.GetValue(environment), () => RepoSession.Open(env, parse.GetValue(repo)).Model, error);
            var selection = new RenderSelection(parse.GetValue(dc), bootstrap ? null : parse.GetValue(ns), bootstrap ? null : parse.GetValue(release), subsetName);
            Dictionary<string, string>? overrides = null;
            if (parse.GetValue(buildImage))
            {
                // A dry run plans with the image it built, as the real run would, without writing the images file.
                var change = await ImageForDeploy.BuildAsync(RepoSession.Open(env, parse.GetValue(repo)), env, error, writeValues: !parse.GetValue(dryRun), TimeProvider.System, ct);
                if (change is not null && parse.GetValue(dryRun))
                {
                    overrides = new Dictionary<string, string>(StringComparer.Ordinal) { [change.File] = change.Text };
                }
            }

            if (parse.GetValue(noPrePull) && (parse.GetValue(prePull) || parse.GetValue(prePullEgress) is not null))
            {
                throw new UserInputException($"--no-pre-pull contradicts {(parse.GetValue(prePull) ? "--pre-pull" : "--pre-pull-egress")}: give one");
            }

            var egressOverride = parse.GetValue(prePullEgress) is { } egressText ? LocalCommand.Rate(egressText, "--pre-pull-egress") : (long?)null;

            await using var session = await DeploySession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(state), parse.GetValue(stateFile), selection, ct, overrides: overrides, testEnvironment: testEnvironment);
            var actorName = session.Repo.Actor(parse.GetValue(actor));
            var prePullSettings = session.Repo.Model.PrePull with { MaxEgress = egressOverride ?? session.Repo.Model.PrePull.MaxEgress };
            var warm = !parse.GetValue(noPrePull) && (parse.GetValue(prePull) || egressOverride is not null || prePullSettings.Enabled);
            var executorOptions = new ExecutorOptions
            {
                Actor = actorName,
                Reason = parse.GetValue(reason) is { } why && !string.IsNullOrWhiteSpace(why)
                    ? why
                    : bootstrap ? $"bootstrap of {parse.GetValue(dc)} ({CommonOptions.NoReasonGiven})" : CommonOptions.NoReasonGiven,
                NoRollback = parse.GetValue(noRollback),
                ForceConflicts = parse.GetValue(forceConflicts),
                PrePull = warm ? prePullSettings : null,
                Gates = session.Repo.Model.Gates.Gates.Count > 0 ? GateClients.For(session.Repo.Model) : null,
            };
            if (parse.GetValue(skipGates))
            {
                if (string.IsNullOrWhiteSpace(parse.GetValue(reason)))
                {
                    throw new UserInputException("--skip-gates needs --reason: deploying past the gates is recorded and announced with why");
                }

                executorOptions = executorOptions with { SkipGatesReason = parse.GetValue(reason) };
            }

            var lifting = (parse.GetValue(releaseHold) ?? []).ToHashSet(StringComparer.Ordinal);
            if (lifting.Count > 0)
            {
                if (string.IsNullOrWhiteSpace(parse.GetValue(reason)))
                {
                    throw new UserInputException("--release-hold needs --reason: lifting a hold is recorded with why");
                }

                if (lifting.FirstOrDefault(r => ReleaseId.Parse(r) is null) is { } bad)
                {
                    throw new UserInputException($"--release-hold '{bad}' is not DC/NAMESPACE/RELEASE");
                }

                executorOptions = executorOptions with { Reason = $"{executorOptions.Reason} (lifts the hold of {string.Join(", ", lifting.Order(StringComparer.Ordinal))})" };
            }

            var request = new DeployRequest(selection, parse.GetValue(includeNeeds) || bootstrap, parse.GetValue(dryRun), parse.GetValue(concurrency), executorOptions)
            {
                EnforceHolds = true,
                ReleasingHolds = lifting,
            };
            var service = session.Service();
            PreparedDeploy prepared;
            try
            {
                prepared = await service.PrepareAsync(request, session.State, ct);
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

            foreach (var note in prepared.Notes)
            {
                error.WriteLine($"capstan: note: {note}");
            }

            var plan = prepared.Plan;
            CheckStateDidNotVanish(session, plan);
            var writer = console.Profile.Out.Writer;
            // A dry run also says what the new images cost the registry and the nodes.
            var pullCost = parse.GetValue(dryRun) ? await DeployPullCost.ForAsync(session, plan, prePullSettings, env, ct) : null;
            if (json)
            {
                var planJson = PlanView.Json(plan);
                if (pullCost is not null)
                {
                    planJson["pullCost"] = DeployPullCost.Json(pullCost);
                }

                writer.WriteLine(planJson.ToJsonString());
            }
            else
            {
                writer.Write(PlanView.Table(plan));
                foreach (var line in executorOptions.Gates?.Describe(plan, executorOptions.SkipGatesReason) ?? [])
                {
                    writer.WriteLine(line);
                }

                if (pullCost is { Count: > 0 })
                {
                    writer.Write(DeployPullCost.Table(pullCost));
                }
            }

            if (plan.IsNoOp)
            {
                if (!parse.GetValue(dryRun) && await session.Service().ReleaseAbandonedLockAsync(ct) is { } abandoned)
                {
                    error.WriteLine($"capstan: note: removed the deploy lock of {FreeText.Printable(abandoned.ToString())}: its process is gone");
                }

                error.WriteLine("capstan: nothing to do: every release matches its last deploy");
                return ExitCodes.Success;
            }

            if (parse.GetValue(dryRun))
            {
                error.WriteLine("capstan: dry run: nothing was applied");
                return ExitCodes.Success;
            }

            if (!parse.GetValue(yes))
            {
                if (!env.Interactive)
                {
                    throw new UserInputException("stdin is not a terminal, so nobody can confirm: pass --yes to deploy");
                }

                writer.Write($"Deploy {plan.Actions.Count(a => a.Change != ReleaseChange.NoOp)} releases as planned above? [y/N] ");
                writer.Flush();
                var answer = (await env.Input.ReadLineAsync(ct))?.Trim();
                if (answer is not ("y" or "Y" or "yes"))
                {
                    error.WriteLine("capstan: not confirmed; nothing was applied");
                    return ExitCodes.UserError;
                }
            }

            // A fresh farm's first real deploy writes the state-seed it planned with.
            await session.Repo.WriteUnwrittenSeedAsync(parse.GetValue(state), ct);
            DeployResult result;
            try
            {
                if (!json && env.Interactive)
                {
                    // A live view on a terminal; plain lines everywhere else.
                    var view = new LiveDeployView(plan);
                    DeployResult? live = null;
                    await console.Live(view.Render()).AutoClear(false).StartAsync(async ctx =>
                    {
                        view.Changed = () => ctx.UpdateTarget(view.Render());
                        live = await service.RunAsync(plan, executorOptions, view, ct);
                        ctx.UpdateTarget(view.Render());
                    });
                    result = live!;
                }
                else
                {
                    IDeployObserver observer = json ? new JsonEventObserver(writer) : new LineObserver(writer);
                    result = await service.RunAsync(plan, executorOptions, observer, ct);
                }
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
                error.WriteLine($"capstan: interrupted: plan {plan.Id} stopped part-way; run the same command again to resume it " +
                                "(the next deploy continues from what the clusters hold; 'capstan status' shows where each release is)");
                return ExitCodes.Interrupted;
            }

            // A hold lifted by a deploy that applied its release is gone; one whose release did not deploy stays.
            foreach (var hold in prepared.Held.Where(h => lifting.Contains(h.Release.ToString())
                && result.Releases.Any(r => r.Id == h.Release && r.State == ReleaseState.Done)))
            {
                await new HoldStore(session.Store, session.Repo.Model.Project).ReleaseAsync(hold.Release, ct);
                error.WriteLine($"capstan: the hold of {hold.Release} is lifted ({FreeText.Printable(executorOptions.Reason)})");
            }

            if (json)
            {
                writer.WriteLine(PlanView.Json(result).ToJsonString());
            }
            else
            {
                writer.Write(PlanView.Summary(result));
            }

            writer.Flush();
            return ExitCodes.Of(result);
        });
        return command;
    }

    /// <summary>
    /// An empty state store with cron releases Capstan deployed means the state existed and vanished (the store was wiped
    /// or replaced): planning from the seed would undo whatever the state said, such as a switchover. Refuse.
    /// </summary>
    private static void CheckStateDidNotVanish(DeploySession session, Plan plan)
    {
        if (session.Repo.StateFromUnwrittenSeed is null)
        {
            return;
        }

        var deployed = plan.Actions.FirstOrDefault(a => a.PreviousRevision is not null && session.Repo.Model.FindGroup(a.Id.Namespace)?.Traits.Periodic == true);
        if (deployed is not null)
        {
            throw new Capstan.State.StateStoreException(
                $"the state store {session.Store.Address} is empty, but {deployed.Id} runs revision {deployed.PreviousRevision} that Capstan deployed with a state: " +
                $"the dynamic state existed and vanished, so it is not re-seeded from {session.Repo.StateFromUnwrittenSeed}. {RepoSession.VanishedAdvice}");
        }
    }
}

/// <summary>Plain progress lines: one per event, timestamped.</summary>
internal sealed class LineObserver(TextWriter writer) : IDeployObserver
{
    private readonly Lock _lock = new();

    public void OnEvent(DeployEvent e)
    {
        if (e.Gate is { Sampled: false })
        {
            // The countdown's ticks between samples are for the live view; a log gets a line per round of samples.
            return;
        }

        lock (_lock)
        {
            writer.WriteLine($"{e.At.UtcDateTime.ToString("HH:mm:ss", CultureInfo.InvariantCulture)}  {(e.Release?.ToString() ?? "-"),-36} {e.Message}");
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
        if (e.Gate is { Sampled: false })
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

    public static JsonObject Json(Plan plan) => new()
    {
        ["kind"] = "Plan",
        ["id"] = plan.Id,
        ["concurrencyPerCluster"] = plan.ConcurrencyPerCluster,
        ["namespaces"] = new JsonArray([.. plan.Namespaces.Select(n => (JsonNode)$"{n.Datacenter}/{n.Namespace}")]),
        ["releases"] = new JsonArray([.. plan.Actions.Select(a => (JsonNode)new JsonObject
        {
            ["release"] = a.Id.ToString(),
            ["stage"] = a.Stage.ToString().ToLowerInvariant(),
            ["change"] = a.Change.ToString().ToLowerInvariant(),
            ["needs"] = new JsonArray([.. a.Needs.Select(n => (JsonNode)n.ToString())]),
            ["apply"] = new JsonArray([.. a.Apply.Select(c => (JsonNode)new JsonObject { ["kind"] = c.Kind, ["name"] = c.Name, ["why"] = c.Why })]),
            ["prune"] = new JsonArray([.. a.Prune.Select(p => (JsonNode)new JsonObject { ["kind"] = p.Kind, ["name"] = p.Name })]),
            ["previousRevision"] = a.PreviousRevision,
        })]),
    };

    public static string Summary(DeployResult result)
    {
        var table = new PlainTable("RELEASE", "RESULT", "REVISION", "DETAIL");
        foreach (var r in result.Releases)
        {
            table.Add(r.Id.ToString(), Word(r.State), r.Revision?.ToString(CultureInfo.InvariantCulture) ?? "-", r.Detail);
        }

        return $"\n{table}{(result.Succeeded ? "deployed" : "FAILED")}: plan {result.PlanId} in {result.Duration.TotalSeconds:0.0} s\n" +
               (result.Cause is null ? string.Empty : $"cause: {result.Cause}\n") +
               (result.GateFailure is { } gate ? string.Join("\n", gate.Explain().Skip(1)) + "\nthe releases rolled back are held: 'capstan status' lists them; fix the image or the repo, or lift a hold with 'deploy --release-hold RELEASE --reason …'\n" : string.Empty) +
               (result.GatesSkipped is { } skipped ? $"gates skipped: {skipped}\n" : string.Empty) +
               (result.RollbackFailed
                   ? $"rollback failed for {string.Join(", ", result.Releases.Where(r => r.State == ReleaseState.RollbackFailed).Select(r => r.Id))}: they run neither the new nor the old revision; 'capstan status' shows them, and a deploy or 'capstan rollback' repairs them\n"
                   : string.Empty);
    }

    public static JsonObject Json(DeployResult result) => new()
    {
        ["event"] = "result",
        ["plan"] = result.PlanId,
        ["succeeded"] = result.Succeeded,
        ["rollbackFailed"] = result.RollbackFailed,
        ["seconds"] = Math.Round(result.Duration.TotalSeconds, 3),
        ["cause"] = result.Cause,
        ["gatesSkipped"] = result.GatesSkipped,
        ["gates"] = new JsonArray([.. result.Gates.Select(g => (JsonNode)g.ToJson())]),
        ["releases"] = new JsonArray([.. result.Releases.Select(r => (JsonNode)new JsonObject
        {
            ["release"] = r.Id.ToString(),
            ["result"] = Word(r.State),
            ["revision"] = r.Revision,
            ["detail"] = r.Detail,
        })]),
    };

    private static string Word(ReleaseState state) => state switch
    {
        ReleaseState.Done => "deployed",
        ReleaseState.RolledBack => "rolled back",
        ReleaseState.RollbackFailed => "rollback failed",
        ReleaseState.NotStarted => "not started",
        _ => state.ToString().ToLowerInvariant(),
    };
}
