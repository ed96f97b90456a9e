using System.CommandLine;
using Capstan.Core.Diagnostics;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan env delete</c>: delete an environment: its namespaces (and everything in them), then its record.</summary>
internal sealed class EnvDeleteCommand(IAnsiConsole console, TextWriter error, CliEnvironment env, EnvCommand shared)
{
    public Command Build()
    {
        var name = new Argument<string>("name") { Description = "The environment" };
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var force = new Option<bool>("--force") { Description = "Delete someone else's environment (recorded with your name)" };
        var yes = new Option<bool>("--yes", "-y") { Description = "Delete without asking (required when stdin is not a terminal)" };
        var actor = CommonOptions.Actor();
        var command = new Command("delete", "Delete an environment: its namespaces (and everything in them), then its record") { name, repo, state, force, yes, actor };
        command.SetAction(async (parse, ct) =>
        {
            var record = await shared.OpenRecordAsync(parse.GetValue(repo), parse.GetValue(state), parse.GetValue(name)!, ct);
            if (!parse.GetValue(yes))
            {
                if (!env.Interactive)
                {
                    throw new Core.Diagnostics.UserInputException($"stdin is not a terminal, so nobody can confirm: pass --yes to delete environment {record.Name}");
                }

                console.Profile.Out.Writer.Write($"Delete environment {record.Name} ({FreeText.Printable(record.Owner)}'s) and everything in its namespaces? [y/N] ");
                console.Profile.Out.Writer.Flush();
                if ((await env.Input.ReadLineAsync(ct))?.Trim() is not ("y" or "Y" or "yes"))
                {
                    error.WriteLine("capstan: not confirmed; nothing was deleted");
                    return ExitCodes.UserError;
                }
            }

            await using var session = await DeploySession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(state), null, EnvCommand.Selection(record), ct, readState: false);
            var service = session.Environments();
            await service.DeleteAsync(record.Name, session.Repo.Actor(parse.GetValue(actor)), parse.GetValue(force), ct);
            console.Profile.Out.Writer.WriteLine($"environment {record.Name} is deleted: its namespaces are gone");
            return ExitCodes.Success;
        });
        return command;
    }
}
