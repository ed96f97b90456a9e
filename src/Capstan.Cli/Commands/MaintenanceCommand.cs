using System.CommandLine;
using Capstan.Core.State;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan maintenance enable | disable</c>: the maintenance_enabled switch of the dynamic state.</summary>
internal sealed class MaintenanceCommand(IAnsiConsole console, CliEnvironment env)
{
    public Command Build() => new("maintenance", "Enable or disable periodic maintenance (the gate that decides where CronJobs exist)")
    {
        Switch("enable", true, "Enable maintenance: CronJobs render in the primary datacenter when it is read-write"),
        Switch("disable", false, "Disable maintenance: the cron group renders no CronJobs anywhere"),
    };

    private Command Switch(string name, bool enabled, string description)
    {
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var reason = CommonOptions.Reason();
        var actor = CommonOptions.Actor();
        var force = new Option<bool>("--force") { Description = "Write even when the result is a nonsense state" };
        var command = new Command(name, description) { repo, state, reason, actor, force };
        command.SetAction(async (parse, ct) =>
        {
            var session = RepoSession.Open(env, parse.GetValue(repo));
            return await StateWriter.WriteAsync(
                session, console, parse.GetValue(state), session.Actor(parse.GetValue(actor)), parse.GetValue(reason),
                new StateChange.SetMaintenance(enabled), parse.GetValue(force), ct);
        });
        return command;
    }
}
