using System.CommandLine;
using System.Text.Json.Nodes;
using Capstan.Core.Environments;
using Capstan.Core.Kubernetes;
using Capstan.Core.Rendering;
using Capstan.Deploy;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan env gc</c>: delete expired environments and interrupted creates, sleep idle ones, warn owners before expiry (once per threshold), and refresh followers behind the repo when asked.</summary>
internal sealed class EnvGcCommand(IAnsiConsole console, TextWriter error, CliEnvironment env)
{
    public Command Build()
    {
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var dryRun = new Option<bool>("--dry-run") { Description = "Say what would be deleted and who warned; change nothing" };
        var notifyFile = new Option<string?>("--notify-file") { Description = "Append each warning as a JSON line to this file", HelpName = "PATH" };
        var webhook = new Option<string?>("--webhook") { Description = "POST each warning as JSON to this URL", HelpName = "URL" };
        var warnBefore = new Option<string?>("--warn-before") { Description = "When owners are warned before expiry (default: 3d,1d)", HelpName = "DURATIONS" };
        var refreshFollowers = new Option<bool>("--refresh-followers") { Description = "Also refresh every followed environment that fell behind the repo" };
        var actor = CommonOptions.Actor();
        var output = CommonOptions.Output("text", "json");
        var command = new Command("gc", "Delete expired environments and interrupted creates, sleep idle ones, warn owners before expiry (once per threshold), and refresh followers behind the repo when asked")
        {
            repo, state, dryRun, notifyFile, webhook, warnBefore, refreshFollowers, actor, output,
        };
        command.SetAction(async (parse, ct) =>
        {
            Uri? hook = null;
            if (parse.GetValue(webhook) is { } url && (!Uri.TryCreate(url, UriKind.Absolute, out hook) || hook.Scheme is not ("http" or "https")))
            {
                throw new Core.Diagnostics.UserInputException($"--webhook '{url}' is not an http or https URL");
            }

            var thresholds = parse.GetValue(warnBefore) is { } list
                ? list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(EnvironmentPolicy.ParseDuration).ToList()
                : CollectOptions.DefaultWarnings;
            await using var session = await DeploySession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(state), null, new RenderSelection(), ct, readState: false);
            var service = session.Environments();
            var actions = await new EnvironmentCollector(service, TimeProvider.System).CollectAsync(
                new CollectOptions(thresholds, new NotificationSink(parse.GetValue(notifyFile), hook), parse.GetValue(dryRun)) { RefreshFollowers = parse.GetValue(refreshFollowers) },
                session.Repo.Actor(parse.GetValue(actor)),
                ct);
            var writer = console.Profile.Out.Writer;
            if (parse.GetValue(output) == "json")
            {
                writer.WriteLine(KubeSerializer.ToJson(new JsonArray([.. actions.Select(a => (JsonNode)new JsonObject { ["environment"] = a.Environment, ["owner"] = a.Owner, ["action"] = a.What, ["failed"] = a.Failed, ["dryRun"] = parse.GetValue(dryRun) })])));
            }
            else
            {
                foreach (var a in actions)
                {
                    writer.WriteLine($"{(parse.GetValue(dryRun) ? "would " : string.Empty)}{a.What}: {a.Environment}");
                }

                if (actions.Count == 0)
                {
                    writer.WriteLine("nothing to do");
                }
            }

            if (actions.Count(a => a.Failed) is > 0 and var failed)
            {
                error.WriteLine($"capstan: error: {failed} environment{(failed == 1 ? string.Empty : "s")} could not be handled; the others were");
                return ExitCodes.Failure;
            }

            return ExitCodes.Success;
        });
        return command;
    }
}
