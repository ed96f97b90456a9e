using System.CommandLine;
using System.Text.Json.Nodes;
using Capstan.Core.Rendering;
using Capstan.Core.State;
using Capstan.Deploy;
using Capstan.State;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan maintenance enable | disable</c>: the maintenance_enabled switch of the dynamic state.</summary>
internal sealed class MaintenanceCommand(IAnsiConsole console, CliEnvironment env)
{
    public Command Build() => new("maintenance", "Enable or disable periodic maintenance (the gate that decides where CronJobs exist)")
    {
        Switch("enable", true, "Enable maintenance: CronJobs render in the primary datacenter when it is read-write"),
        Switch("disable", false, "Disable maintenance: the cron group renders no CronJobs anywhere (a test environment keeps them, suspended)"),
        Reconcile(),
    };

    private Command Reconcile()
    {
        var repo = CommonOptions.Repo();
        var environment = CommonOptions.TestEnvironment();
        var state = CommonOptions.State();
        var watch = new Option<bool>("--watch") { Description = "Keep running: re-apply the gate within seconds of every change of the state" };
        var timeout = new Option<int>("--job-timeout") { Description = "Seconds to wait for running maintenance Jobs to stop", DefaultValueFactory = _ => 300, HelpName = "S" };
        var command = new Command("reconcile", "Make the clusters follow the maintenance gate of the current state (once, or on every change with --watch)") { repo, environment, state, watch, timeout };
        command.SetAction(async (parse, ct) =>
        {
            await using var session = await DeploySession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(state), null, new RenderSelection(), ct, initialiseState: true, testEnvironment: parse.GetValue(environment));
            var writer = console.Profile.Out.Writer;
            var applier = new MaintenanceGateApplier(session.Repo.Model, session.Service(), session.Clusters, new LineObserver(writer));
            var options = new ExecutorOptions { Actor = session.Repo.Actor(null), Reason = "maintenance reconcile" };
            var current = await session.Repo.ReadStateAsync(null, parse.GetValue(state), ct, initialise: true);
            var outcomes = await applier.ApplyAsync(current, options, TimeSpan.FromSeconds(parse.GetValue(timeout)), ct);
            if (!parse.GetValue(watch))
            {
                return outcomes.All(o => o.Succeeded) ? ExitCodes.Success : ExitCodes.Failure;
            }

            var (store, service) = session.Repo.OpenState(parse.GetValue(state));
            await using (store)
            {
                try
                {
                    await foreach (var (doc, _) in service.WatchAsync(ct))
                    {
                        if (StateRules.Summary(doc.State) == StateRules.Summary(current))
                        {
                            continue;
                        }

                        writer.WriteLine($"state changed ({string.Join(", ", StateRules.Differences(current, doc.State))}); applying the gate");
                        current = doc.State;
                        await applier.ApplyAsync(current, options, TimeSpan.FromSeconds(parse.GetValue(timeout)), ct);
                    }
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                }
            }

            return ExitCodes.Success;
        });
        return command;
    }

    private Command Switch(string name, bool enabled, string description)
    {
        var repo = CommonOptions.Repo();
        var environment = CommonOptions.TestEnvironment();
        var state = CommonOptions.State();
        var reason = CommonOptions.Reason();
        var actor = CommonOptions.Actor();
        var force = new Option<bool>("--force") { Description = "Write even when the result is a nonsense state" };
        var stateOnly = new Option<bool>("--state-only") { Description = "Only write the state; do not apply the cron groups or stop running Jobs" };
        var timeout = new Option<int>("--job-timeout") { Description = "Seconds to wait for running maintenance Jobs to stop", DefaultValueFactory = _ => 300, HelpName = "S" };
        var output = CommonOptions.Output("text", "json");
        var command = new Command(name, description) { repo, environment, state, reason, actor, force, stateOnly, timeout, output };
        command.SetAction(async (parse, ct) =>
        {
            var json = parse.GetValue(output) == "json";
            var writer = console.Profile.Out.Writer;
            var session = await RepoSession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(environment), parse.GetValue(state), ct);
            var actorName = session.Actor(parse.GetValue(actor));
            var (write, address) = await StateWriter.WriteAsync(
                session, parse.GetValue(state), actorName, parse.GetValue(reason),
                new StateChange.SetMaintenance(enabled), parse.GetValue(force), ct);
            if (!json)
            {
                writer.WriteLine(StateWriter.Describe(write, actorName, address));
            }

            IReadOnlyList<GateOutcome> outcomes = [];
            if (!parse.GetValue(stateOnly))
            {
                // Make the clusters follow: deploy the cron groups in every datacenter and, when disabling, stop running Jobs.
                await using var deploySession = await DeploySession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(state), null, new RenderSelection(), ct, testEnvironment: parse.GetValue(environment));
                var current = await deploySession.Repo.ReadStateAsync(null, parse.GetValue(state), ct);
                var applier = new MaintenanceGateApplier(deploySession.Repo.Model, deploySession.Service(), deploySession.Clusters, json ? new JsonEventObserver(writer) : new LineObserver(writer));
                var options = new ExecutorOptions { Actor = actorName, Reason = $"maintenance {name}: {parse.GetValue(reason)}" };
                outcomes = await applier.ApplyAsync(current, options, TimeSpan.FromSeconds(parse.GetValue(timeout)), ct);
            }

            if (json)
            {
                writer.WriteLine(GateJson(write, outcomes).ToJsonString());
            }

            return outcomes.All(o => o.Succeeded) ? ExitCodes.Success : ExitCodes.Failure;
        });
        return command;
    }

    /// <summary>The result of a maintenance switch as one JSON object.</summary>
    internal static JsonObject GateJson(StateWrite write, IReadOnlyList<GateOutcome> outcomes) => new()
    {
        ["event"] = "result",
        ["change"] = write.Description,
        ["written"] = write.Written,
        ["sequence"] = write.Document.Sequence,
        ["maintenance_enabled"] = write.Document.State.MaintenanceEnabled,
        ["succeeded"] = outcomes.All(o => o.Succeeded),
        ["datacenters"] = new JsonArray([.. outcomes.Select(o => (JsonNode)new JsonObject
        {
            ["datacenter"] = o.Datacenter,
            ["cronJobs"] = o.CronJobs,
            ["activeCronJobs"] = o.ActiveCronJobs,
            ["jobsDeleted"] = o.JobsDeleted,
            ["stillRunning"] = new JsonArray([.. o.StillRunning.Select(r => (JsonNode)r)]),
            ["succeeded"] = o.Succeeded,
        })]),
    };
}
