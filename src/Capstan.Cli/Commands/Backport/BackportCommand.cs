using System.CommandLine;
using Capstan.Core.Config;
using Capstan.Deploy;
using Capstan.Deploy.Actions;
using Capstan.Deploy.Backport;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary>
/// <c>capstan backport COMMIT…</c>: ship commits of the image's trees (code or config) through the stages: the
/// commits on the trees' HEAD, the image rebuilt (only the changed layers), the test servers, a pause for the
/// deployer to check, then the canaries with their gate and production. Anything short of success puts the trees, the
/// images file and the clusters back, and holds what was rolled back.
/// </summary>
internal sealed class BackportCommand(IAnsiConsole console, TextWriter error, CliEnvironment env)
{
    public Command Build()
    {
        var commits = new Argument<string[]>("commit") { Description = "Commits of a code or config tree: hashes, refs or ranges A..B", Arity = ArgumentArity.OneOrMore };
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var revert = new Option<bool>("--revert") { Description = "Ship the revert of the commits (newest first) instead" };
        var reason = CommonOptions.Reason("Why, recorded after the commits' own description");
        var actor = CommonOptions.Actor();
        var output = CommonOptions.Output("text", "json");
        var yes = new Option<bool>("--yes", "-y") { Description = "Deploy, and continue past the test servers, without asking (for automation)" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Check the commits and show the plan; change nothing (the trees are put back)" };
        var skipGates = new Option<bool>("--skip-gates") { Description = "Go from stage to stage without the gates (needs --reason; recorded)" };
        var pauseTimeout = new Option<string?>("--pause-timeout") { Description = "How long to wait for the answer after the test servers (default: no limit)", HelpName = "DURATION" };
        var onTimeout = new Option<string>("--on-timeout") { Description = "What an unanswered pause does: rollback (default) or continue", DefaultValueFactory = _ => "rollback", HelpName = "ACTION" };
        onTimeout.AcceptOnlyFromAmong("rollback", "continue");
        var command = new Command("backport", "Ship commits of the code or config trees: build the image from them, deploy the test servers, pause for a check, then canaries (gated) and production") { commits, repo, state, revert, reason, actor, output, yes, dryRun, skipGates, pauseTimeout, onTimeout };
        command.SetAction(async (parse, ct) =>
        {
            var timeout = parse.GetValue(pauseTimeout) is { } text
                ? Core.Config.Durations.TryParse(text) ?? throw new Core.Diagnostics.UserInputException($"--pause-timeout '{text}' is not a duration (a whole number and s, m, h or d: 90s, 30m, 2h)")
                : (TimeSpan?)null;
            var repoSession = RepoSession.Open(env, parse.GetValue(repo));
            var plan = await Backports.PlanAsync(repoSession.Model, parse.GetValue(commits)!, parse.GetValue(revert), ct);
            foreach (var change in plan.Changes)
            {
                error.WriteLine($"capstan: backport: {(plan.Revert ? "reverting" : "shipping")} {change.Tree.Name} {FreeText(change.Description)}");
            }

            var intent = DeployIntent.ForRepoChange(plan.Describe(), parse.GetValue(reason), parse.GetValue(dryRun), parse.GetValue(skipGates));
            var snapshot = RepoSnapshot.Take(repoSession.Model.RepoRoot, [ImagePublisher.ImagesFile(repoSession.Model)]);
            var confirmed = parse.GetValue(yes);
            var code = ExitCodes.Failure;
            try
            {
                await Backports.ApplyAsync(plan, ct);
                code = await new DeployCommand(console, error, env).RunAsync(intent, parse.GetValue(repo), parse.GetValue(state), null, parse.GetValue(actor), null,
                    buildImage: true, json: parse.GetValue(output) == "json", confirmed: confirmed, ct,
                    pause: confirmed ? null : (Stage.Testservers, token => PauseAsync(timeout, parse.GetValue(onTimeout) == "continue", token)));
            }
            finally
            {
                if (code != ExitCodes.Success || intent.DryRun)
                {
                    snapshot.Restore();
                    await Backports.ResetAsync(plan, CancellationToken.None);
                    error.WriteLine($"capstan: backport: the trees and the images values file are as they were{(intent.DryRun ? " (dry run)" : ": the backport did not go through")}");
                }
            }

            return code;
        });
        return command;
    }

    /// <summary>The pause after the test servers: null continues; a reason stops and rolls back.</summary>
    private async Task<string?> PauseAsync(TimeSpan? timeout, bool continueOnTimeout, CancellationToken cancellationToken)
    {
        if (!env.Interactive)
        {
            return "nobody can confirm the test servers (stdin is not a terminal; pass --yes to continue without asking)";
        }

        var writer = console.Profile.Out.Writer;
        writer.Write("Check your change on the test servers; continue? [y/N] ");
        writer.Flush();
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (timeout is { } limit)
        {
            wait.CancelAfter(limit);
        }

        try
        {
            // A terminal's reader does not heed a token: the line is read on its own thread and waited for with one.
            var answer = (await Task.Run(() => env.Input.ReadLine(), CancellationToken.None).WaitAsync(wait.Token))?.Trim();
            return answer is "y" or "Y" or "yes" ? null : "the deployer did not continue after the test servers";
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            var waited = Core.Config.Durations.Human(timeout!.Value);
            writer.WriteLine();
            writer.WriteLine(continueOnTimeout ? $"no answer within {waited}: continuing (--on-timeout continue)" : $"no answer within {waited}: rolling back");
            writer.Flush();
            return continueOnTimeout ? null : $"no answer after the test servers within {waited}";
        }
    }

    private static string FreeText(string text) => Core.Diagnostics.FreeText.Printable(text);
}
