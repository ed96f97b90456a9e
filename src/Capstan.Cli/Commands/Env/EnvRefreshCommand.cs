using System.CommandLine;
using Capstan.Core.Rendering;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan env refresh</c>: re-render followed environments against the repo as it is now and deploy them; report how far pinned ones are behind.</summary>
internal sealed class EnvRefreshCommand(IAnsiConsole console, TextWriter error, CliEnvironment env, EnvCommand shared)
{
    public Command Build()
    {
        var name = new Argument<string?>("name") { Description = "The environment (or --all)", Arity = ArgumentArity.ZeroOrOne };
        var all = new Option<bool>("--all") { Description = "Every environment" };
        var allBehind = new Option<bool>("--all-behind") { Description = "Every followed environment that is behind the repo (the others are left alone)" };
        var force = new Option<bool>("--force") { Description = "Refresh someone else's environment (recorded in its history)" };
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var actor = CommonOptions.Actor();
        var command = new Command("refresh", "Re-render followed environments against the repo as it is now and deploy them; report how far pinned ones are behind") { name, all, allBehind, force, repo, state, actor };
        command.SetAction(async (parse, ct) =>
        {
            if (new[] { parse.GetValue(name) is not null, parse.GetValue(all), parse.GetValue(allBehind) }.Count(b => b) != 1)
            {
                throw new Core.Diagnostics.UserInputException("name one environment, or --all, or --all-behind");
            }

            await using var session = await DeploySession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(state), null, new RenderSelection(), ct, readState: false);
            var service = session.Environments();
            var who = session.Repo.Actor(parse.GetValue(actor));
            var targets = parse.GetValue(name) is { } one
                ? [(await service.Records.GetAsync(one, ct) ?? throw new Core.Diagnostics.UserInputException($"there is no environment '{one}'")).Record]
                : await service.Records.ListAsync(ct);
            if (parse.GetValue(name) is { } single && targets[0].Owner != who && !parse.GetValue(force))
            {
                throw new Core.Diagnostics.UserInputException($"environment '{single}' belongs to {targets[0].Owner}; to refresh it as {who}, add --force (recorded in its history)");
            }

            await shared.RebuildAsync(session, targets, who, parse.GetValue(force) || parse.GetValue(name) is null, ct);
            var report = await service.RefreshAsync(
                parse.GetValue(name), session.Repo.Actor(parse.GetValue(actor)), new EnvCommand.ProgressLines(error), ct, parse.GetValue(force), onlyBehind: parse.GetValue(allBehind));
            foreach (var line in report.Lines)
            {
                console.Profile.Out.Writer.WriteLine(line);
            }

            if (report.Failed > 0)
            {
                error.WriteLine($"capstan: error: {report.Failed} environment{(report.Failed == 1 ? string.Empty : "s")} could not be refreshed");
                return ExitCodes.Failure;
            }

            return ExitCodes.Success;
        });
        return command;
    }
}
