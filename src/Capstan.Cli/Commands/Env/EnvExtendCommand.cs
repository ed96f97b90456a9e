using System.CommandLine;
using Capstan.Core.Environments;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan env extend</c>: move an environment's expiry later, within its class's cap.</summary>
internal sealed class EnvExtendCommand(IAnsiConsole console, CliEnvironment env, EnvCommand shared)
{
    public Command Build()
    {
        var name = new Argument<string>("name") { Description = "The environment" };
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var by = new Option<string?>("--by") { Description = "How much longer: 7d, 12h (within the class's cap, counted from now)", HelpName = "DURATION", Required = true };
        var force = new Option<bool>("--force") { Description = "Extend someone else's environment (recorded with your name)" };
        var actor = CommonOptions.Actor();
        var command = new Command("extend", "Move an environment's expiry later, within its class's cap") { name, repo, state, by, force, actor };
        command.SetAction(async (parse, ct) =>
        {
            var duration = EnvironmentPolicy.ParseDuration(parse.GetValue(by)!);
            var record = await shared.OpenRecordAsync(parse.GetValue(repo), parse.GetValue(state), parse.GetValue(name)!, ct);
            await using var session = await DeploySession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(state), null, EnvCommand.Selection(record), ct, readState: false);
            var service = session.Environments();
            var extended = await service.ExtendAsync(record.Name, duration, session.Repo.Actor(parse.GetValue(actor)), parse.GetValue(force), ct);
            console.Profile.Out.Writer.WriteLine($"environment {extended.Name} now expires {EnvCommand.When(extended.Expires)}");
            return ExitCodes.Success;
        });
        return command;
    }
}
