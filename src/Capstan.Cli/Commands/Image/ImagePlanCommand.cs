using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Images;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan image plan</c>: the layering plan, and what each layer would hold.</summary>
internal sealed class ImagePlanCommand(IAnsiConsole console, CliEnvironment env)
{
    public Command Build()
    {
        var repo = CommonOptions.Repo();
        var sources = new Option<string[]>("--source") { Description = "A code tree as VERSION=DIR (repeatable; default: image.sources in capstan.yaml)", HelpName = "VERSION=DIR" };
        var config = new Option<string?>("--config") { Description = "The config tree (default: image.config)", HelpName = "DIR" };
        var output = CommonOptions.Output("text", "json");
        var command = new Command("plan", "Print the layering plan: the rules and, for the given trees, what each layer would hold") { repo, sources, config, output };
        command.SetAction((parse, ct) =>
        {
            var session = RepoSession.Open(env, parse.GetValue(repo));
            var spec = session.Model.Image;
            var writer = console.Profile.Out.Writer;
            var input = ImageCommand.Input(env, session, parse.GetValue(sources) ?? [], parse.GetValue(config), 0, requireSources: false);
            var planned = input.Sources.Count > 0 || input.ConfigDirectory is not null ? LayerPlanner.Plan(input) : [];
            if (parse.GetValue(output) == "json")
            {
                writer.WriteLine(new JsonObject
                {
                    ["root"] = spec.Root,
                    ["rules"] = new JsonArray([.. spec.Layers.Select(l => (JsonNode)new JsonObject { ["name"] = l.Name, ["paths"] = new JsonArray([.. l.Paths.Select(p => (JsonNode?)p)]) })]),
                    ["layers"] = new JsonArray([.. planned.Select(l => (JsonNode)new JsonObject { ["name"] = l.Name, ["files"] = l.Files, ["shared"] = l.Shared, ["bytes"] = l.ContentBytes })]),
                }.ToJsonString());
                return Task.FromResult(ExitCodes.Success);
            }

            writer.WriteLine($"image root: /{spec.Root}; per version, in this order (a path goes to the first rule that matches; '*' takes the rest), then the config tree:");
            foreach (var rule in spec.Layers)
            {
                writer.WriteLine($"  {rule.Name,-16} {string.Join(" ", rule.Paths)}");
            }

            if (planned.Count > 0)
            {
                writer.WriteLine();
                var table = new PlainTable("LAYER", "FILES", "SHARED", "SIZE");
                foreach (var layer in planned)
                {
                    table.Add(layer.Name, layer.Files.ToString(CultureInfo.InvariantCulture), layer.Shared.ToString(CultureInfo.InvariantCulture), ImageCommand.Size(layer.ContentBytes));
                }

                writer.Write(table.ToString());
            }

            return Task.FromResult(ExitCodes.Success);
        });
        return command;
    }
}
