using System.CommandLine;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan env sleep</c> scales every Deployment of an environment to zero, keeping the replicas that <c>capstan env wake</c> restores.</summary>
internal sealed class EnvSleepCommand(IAnsiConsole console, CliEnvironment env, EnvCommand shared)
{
    public Command Build(bool sleep)
    {
        var name = new Argument<string>("name") { Description = "The environment" };
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var force = new Option<bool>("--force") { Description = "Act on someone else's environment (recorded with your name)" };
        var actor = CommonOptions.Actor();
        var command = sleep
            ? new Command("sleep", "Scale every Deployment of an environment to zero, keeping the replicas to restore") { name, repo, state, force, actor }
            : new Command("wake", "Scale a sleeping environment's Deployments back, and wait until they are rolled out") { name, repo, state, force, actor };
        command.SetAction(async (parse, ct) =>
        {
            var record = await shared.OpenRecordAsync(parse.GetValue(repo), parse.GetValue(state), parse.GetValue(name)!, ct);
            await using var session = await DeploySession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(state), null, EnvCommand.Selection(record), ct, readState: false);
            var service = session.Environments();
            var who = session.Repo.Actor(parse.GetValue(actor));
            var after = sleep ? await service.SleepAsync(record.Name, who, parse.GetValue(force), ct) : await service.WakeAsync(record.Name, who, parse.GetValue(force), ct);
            console.Profile.Out.Writer.WriteLine(sleep
                ? $"environment {after.Name} is asleep: {after.Sleeping!.Count} Deployments at zero"
                : $"environment {after.Name} is awake: every Deployment rolled out");
            return ExitCodes.Success;
        });
        return command;
    }
}
