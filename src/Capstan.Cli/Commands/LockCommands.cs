using System.CommandLine;
using Capstan.Core.Diagnostics;
using Capstan.Deploy;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan lock | unlock | cancel</c>: stopping deploys.</summary>
internal sealed class LockCommands(IAnsiConsole console, TextWriter error, CliEnvironment env)
{
    public IEnumerable<Command> Build() => [BuildLock(), BuildUnlock(), BuildCancel()];

    private Command BuildLock()
    {
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var reason = CommonOptions.Reason();
        var actor = CommonOptions.Actor();
        var force = new Option<bool>("--force") { Description = "Replace a lock value that cannot be read (one that names a holder is never replaced)" };
        var command = new Command("lock", "Stop every deploy of the farm until 'capstan unlock'") { repo, state, reason, actor, force };
        command.SetAction(async (parse, ct) =>
        {
            var session = RepoSession.Open(env, parse.GetValue(repo));
            var why = parse.GetValue(reason);
            if (string.IsNullOrWhiteSpace(why))
            {
                throw new UserInputException("--reason is required: the lock tells every deployer why");
            }

            var (store, _) = session.OpenState(parse.GetValue(state));
            await using (store)
            {
                try
                {
                    await DeployLock.LockAsync(store, session.Model.Project, session.Actor(parse.GetValue(actor)), why, ct, force: parse.GetValue(force));
                }
                catch (DeployLockedException ex)
                {
                    error.WriteLine($"capstan: error: {FreeText.Printable(ex.Message)}");
                    return ExitCodes.Locked;
                }
            }

            console.Profile.Out.Writer.WriteLine($"deploys of {session.Model.Project} are locked: {why}");
            return ExitCodes.Success;
        });
        return command;
    }

    private Command BuildUnlock()
    {
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var reason = CommonOptions.Reason();
        var force = new Option<bool>("--force") { Description = "Also remove a lock value that cannot be read" };
        var command = new Command("unlock", "Remove the deploy lock, whoever holds it") { repo, state, reason, force };
        command.SetAction(async (parse, ct) =>
        {
            var session = RepoSession.Open(env, parse.GetValue(repo));
            if (string.IsNullOrWhiteSpace(parse.GetValue(reason)))
            {
                throw new UserInputException("--reason is required to remove a lock");
            }

            var (store, _) = session.OpenState(parse.GetValue(state));
            await using (store)
            {
                var removed = await DeployLock.UnlockAsync(store, session.Model.Project, ct, parse.GetValue(force));
                console.Profile.Out.Writer.WriteLine(removed switch
                {
                    null => "deploys were not locked",
                    { Holder: null } => "removed the deploy lock's unreadable value",
                    { Holder: { } holder } => $"removed the lock of {holder}",
                });
            }

            return ExitCodes.Success;
        });
        return command;
    }

    private Command BuildCancel()
    {
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var reason = CommonOptions.Reason();
        var actor = CommonOptions.Actor();
        var command = new Command("cancel", "Stop the running deploy (from any machine) cooperatively: no release starts after this, the ones rolling out finish, nothing is rolled back. Running the same deploy again continues") { repo, state, reason, actor };
        command.SetAction(async (parse, ct) =>
        {
            var session = RepoSession.Open(env, parse.GetValue(repo));
            var (store, _) = session.OpenState(parse.GetValue(state));
            await using (store)
            {
                var request = await DeployCancel.RequestAsync(store, session.Model.Project, session.Actor(parse.GetValue(actor)), parse.GetValue(reason) ?? string.Empty, TimeProvider.System, ct);
                console.Profile.Out.Writer.WriteLine($"asked plan {request.PlanId} to stop: no release starts after this, the ones rolling out finish ('capstan status' shows where each release is)");
            }

            return ExitCodes.Success;
        });
        return command;
    }
}
