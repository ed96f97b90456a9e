using System.CommandLine;
using System.Globalization;
using Capstan.Core.Diagnostics;
using Capstan.Core.Rendering;
using Capstan.Deploy;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan switchover</c>: move the primary datacenter with the runbook of ordered, verified steps.</summary>
internal sealed class SwitchoverCommand(IAnsiConsole console, TextWriter error, CliEnvironment env)
{
    /// <summary>The option that brings a printed command back into the same test environment.</summary>
    private static string Inside(string? environment) => environment is null ? string.Empty : $" --environment {environment}";

    public Command Build()
    {
        var repo = CommonOptions.Repo();
        var environment = CommonOptions.TestEnvironment();
        var state = CommonOptions.State();
        var from = new Option<string?>("--from") { Description = "The current primary datacenter", HelpName = "DC" };
        var to = new Option<string?>("--to") { Description = "The new primary datacenter", HelpName = "DC" };
        var liveTest = new Option<bool>("--live-test") { Description = "Run every step from the current primary to itself: exercises the runbook without moving anything" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Print the steps and what each would change; change nothing" };
        var resume = new Option<bool>("--resume") { Description = "Finish an interrupted switchover from the step it stopped in" };
        var until = new Option<string?>("--until") { Description = "Stop after this step (resume later with --resume)", HelpName = "STEP" };
        until.AcceptOnlyFromAmong([.. Switchover.Steps.Select(s => s.Name)]);
        var yes = new Option<bool>("--yes", "-y") { Description = "Do not ask for confirmation (required when stdin is not a terminal)" };
        var reason = CommonOptions.Reason();
        var actor = CommonOptions.Actor();
        var jobTimeout = new Option<int>("--job-timeout") { Description = "Seconds to wait for running maintenance Jobs to stop", DefaultValueFactory = _ => 300, HelpName = "S" };
        var output = CommonOptions.Output("text", "json");
        var command = new Command("switchover", "Switch the primary datacenter: lock deploys, stop maintenance, read-only, switch, read-write, restart job runners, start maintenance, unlock")
        {
            repo, environment, state, from, to, liveTest, dryRun, resume, until, yes, reason, actor, jobTimeout, output,
        };
        command.SetAction(async (parse, ct) =>
        {
            var json = parse.GetValue(output) == "json";
            var writer = console.Profile.Out.Writer;
            await using var session = await DeploySession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(state), null, new RenderSelection(), ct, testEnvironment: parse.GetValue(environment));
            var stateService = new Capstan.State.DynamicStateService(session.Store, session.Repo.Model.Project, [.. session.Repo.Model.DatacenterNames], TimeProvider.System);
            await session.Repo.ReadStateAsync(null, parse.GetValue(state), ct, initialise: true);
            var actorName = session.Repo.Actor(parse.GetValue(actor));
            IDeployObserver observer = json ? new JsonEventObserver(writer) : new LineObserver(writer);
            var runbook = new Switchover(session.Repo.Model, stateService, session.Store, session.Service(), session.Clusters, observer, TimeProvider.System);
            var timeout = TimeSpan.FromSeconds(parse.GetValue(jobTimeout));

            SwitchoverJournal journal;
            try
            {
                if (parse.GetValue(resume))
                {
                    var given = parse.GetValue(from) is { } f ? new SwitchoverRequest(f, parse.GetValue(to) ?? f, false, actorName, string.Empty) : null;
                    journal = await runbook.ResumeAsync(given is null ? null : given with { JobTimeout = timeout, Until = parse.GetValue(until) }, actorName, ct);
                }
                else
                {
                    var current = await stateService.ReadRequiredAsync(ct);
                    var source = parse.GetValue(from) ?? (parse.GetValue(liveTest) ? current.PrimaryDc : throw new UserInputException("--from is required (the current primary datacenter)"));
                    var target = parse.GetValue(to) ?? (parse.GetValue(liveTest) ? source : throw new UserInputException("--to is required (the new primary datacenter)"));
                    var request = new SwitchoverRequest(source, target, parse.GetValue(liveTest), actorName, parse.GetValue(reason) ?? string.Empty)
                    {
                        JobTimeout = timeout,
                        Until = parse.GetValue(until),
                    };
                    if (parse.GetValue(dryRun))
                    {
                        var steps = await runbook.DescribeAsync(request, ct);
                        writer.WriteLine($"switchover {source} → {target}{(request.LiveTest ? " (live test)" : string.Empty)} would:");
                        var n = 1;
                        foreach (var (name, _, wouldDo) in steps)
                        {
                            writer.WriteLine($"  {n++}. {name,-20} {wouldDo}");
                        }

                        error.WriteLine("capstan: dry run: nothing was changed");
                        return ExitCodes.Success;
                    }

                    if (string.IsNullOrWhiteSpace(request.Reason))
                    {
                        throw new UserInputException("--reason is required: it is recorded in the state's history");
                    }

                    await runbook.CheckStartAsync(request, ct);
                    if (!parse.GetValue(yes))
                    {
                        if (!env.Interactive)
                        {
                            throw new UserInputException("stdin is not a terminal, so nobody can confirm: pass --yes to switch over");
                        }

                        writer.Write($"Switch the primary datacenter {source} → {target}{(request.LiveTest ? " (live test)" : string.Empty)}? MediaWiki is read-only during the switch. [y/N] ");
                        writer.Flush();
                        if ((await env.Input.ReadLineAsync(ct))?.Trim() is not ("y" or "Y" or "yes"))
                        {
                            error.WriteLine("capstan: not confirmed; nothing was changed");
                            return ExitCodes.UserError;
                        }
                    }

                    journal = await runbook.RunAsync(request, ct);
                }
            }
            catch (SwitchoverFailedException ex)
            {
                error.WriteLine($"capstan: error: {FreeText.Printable(ex.Message)}");
                error.WriteLine($"capstan: deploys stay locked; fix the cause and run 'capstan switchover --resume{Inside(parse.GetValue(environment))}' to continue from this step");
                if (await Switchover.ReadJournalAsync(session.Store, session.Repo.Model.Project, CancellationToken.None) is { } failed)
                {
                    Print(writer, failed, json);
                }

                return ExitCodes.Failure;
            }

            Print(writer, journal, json);
            if (!journal.Complete)
            {
                error.WriteLine($"capstan: stopped after {parse.GetValue(until)}; run 'capstan switchover --resume{Inside(parse.GetValue(environment))}' to continue");
            }

            return ExitCodes.Success;
        });
        return command;
    }

    private static void Print(TextWriter writer, SwitchoverJournal journal, bool json)
    {
        if (json)
        {
            writer.WriteLine(journal.ToJson().ToJsonString());
            writer.Flush();
            return;
        }

        writer.WriteLine();
        var table = new PlainTable("STEP", "STATUS", "SECONDS", "DETAIL");
        foreach (var step in journal.Steps)
        {
            table.Add(step.Name, step.Status.ToString().ToLowerInvariant(), step.Duration is { } d ? Seconds(d) : "-", step.Detail);
        }

        writer.Write(table.ToString());
        writer.WriteLine(
            $"switchover {journal.Id} {journal.From} → {journal.To}{(journal.LiveTest ? " (live test)" : string.Empty)}: " +
            $"{(journal.Complete ? "complete" : "not complete")}; total {(journal.Total is { } t ? Seconds(t) : "-")}s, " +
            $"read-only {(journal.ReadOnlyWindow is { } w ? Seconds(w) + "s" : journal.ReadOnlySince is null ? "not yet" : "since " + journal.ReadOnlySince.Value.UtcDateTime.ToString("HH:mm:ss", CultureInfo.InvariantCulture) + "Z")}");
        writer.Flush();
    }

    private static string Seconds(TimeSpan t) => t.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture);
}
