using System.CommandLine;
using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;
using Capstan.Core.Environments;
using Capstan.Core.Kubernetes;
using Capstan.Deploy;
using Capstan.State;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan env show</c>: one environment's record, backends, how far it is behind the repo, and history.</summary>
internal sealed class EnvShowCommand(IAnsiConsole console, CliEnvironment env)
{
    public Command Build()
    {
        var name = new Argument<string>("name") { Description = "The environment" };
        var repo = CommonOptions.Repo();
        var state = CommonOptions.State();
        var output = CommonOptions.Output("text", "json");
        var noHealth = new Option<bool>("--no-health") { Description = "Do not ask the clusters whether it is behind the repo (the record only)" };
        var command = new Command("show", "One environment's record, backends, how far it is behind the repo, and history") { name, repo, state, output, noHealth };
        command.SetAction(async (parse, ct) =>
        {
            var session = RepoSession.Open(env, parse.GetValue(repo));
            var (store, _) = session.OpenState(parse.GetValue(state));
            await using var _ = store;
            var environments = new EnvironmentStore(store, session.Model.Project, TimeProvider.System);
            var (record, _) = await environments.GetAsync(parse.GetValue(name)!, ct) ?? throw new Core.Diagnostics.UserInputException($"there is no environment '{parse.GetValue(name)}'");
            var history = await environments.HistoryAsync(record.Name, ct);
            IReadOnlyList<string> behind = [];
            if (!parse.GetValue(noHealth))
            {
                await using var deploySession = await DeploySession.OpenAsync(env, parse.GetValue(repo), parse.GetValue(state), null, EnvCommand.Selection(record), ct, readState: false);
                behind = await deploySession.Environments().BehindAsync(record, ct);
            }

            var writer = console.Profile.Out.Writer;
            if (parse.GetValue(output) == "json")
            {
                var doc = JsonNode.Parse(record.ToJson())!.AsObject();
                doc["behind"] = new JsonArray([.. behind.Select(b => (JsonNode)b)]);
                EnvCommand.WithUrls(doc, EnvironmentScope.Urls(session.Model, record));
                if (EnvironmentScope.Backends(session.Model, record) is { } listed)
                {
                    doc["backends"] = new JsonObject([.. listed.Items.Select(i => KeyValuePair.Create(i.Production.Name, (JsonNode?)i.Source.ToString()))]);
                }

                doc["history"] = new JsonArray([.. history.Select(h => (JsonNode)new JsonObject { ["at"] = EnvCommand.When(h.At), ["actor"] = h.Actor, ["what"] = h.What, ["forced"] = h.Forced })]);
                writer.WriteLine(KubeSerializer.ToJson(doc));
                return ExitCodes.Success;
            }

            writer.WriteLine($"environment {record.Name}: {record.Purpose}, owned by {FreeText.Printable(record.Owner)}");
            writer.WriteLine($"  description: {(record.Description.Length == 0 ? "-" : FreeText.Printable(record.Description))}");
            foreach (var link in record.Links)
            {
                writer.WriteLine($"  link: {FreeText.Printable(link)}");
            }

            writer.WriteLine($"  created by {record.CreatedBy} at {EnvCommand.When(record.CreatedAt)}; expires {EnvCommand.When(record.Expires)}");
            writer.WriteLine($"  base: {(record.Base == EnvironmentBase.Follow ? "follows production" : "pinned (" + record.PinnedRevision + ")")}; image: {record.Image ?? "production's"}");
            writer.WriteLine($"  namespaces: {string.Join(", ", record.Datacenters.SelectMany(dc => EnvironmentScope.Namespaces(session.Model, record).Select(g => $"{dc}/{EnvironmentNames.Namespace(record.Name, g)}")))}");
            foreach (var (group, url) in EnvironmentScope.Urls(session.Model, record))
            {
                writer.WriteLine($"  url ({group}): {url}");
            }

            if (record.Sources.Count > 0)
            {
                writer.WriteLine($"  built from: {string.Join(", ", record.Sources)} (rebuilt by every refresh)");
            }

            if (EnvironmentScope.Backends(session.Model, record) is { } backends)
            {
                writer.WriteLine($"  backends: {string.Join(", ", backends.Items.Select(i => $"{i.Production.Name} {i.Source}"))}");
                foreach (var shared in backends.FromProduction)
                {
                    writer.WriteLine($"  WARNING: production's {shared.Production.Name} is shared read-only: this environment is not isolated from it");
                }
            }

            foreach (var line in behind)
            {
                writer.WriteLine($"  behind: {line}");
            }

            foreach (var h in history)
            {
                writer.WriteLine($"  {EnvCommand.When(h.At)} {h.Actor}: {h.What}{(h.Forced ? " (forced)" : string.Empty)}");
            }

            return ExitCodes.Success;
        });
        return command;
    }
}
