using System.CommandLine;
using Capstan.Core.Diagnostics;
using Capstan.Images;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan image compose</c>: combine single-version images into the multi-version image by reference.</summary>
internal sealed class ImageComposeCommand(IAnsiConsole console, CliEnvironment env)
{
    public Command Build()
    {
        var parts = new Argument<string[]>("IMAGE") { Description = "Images to combine, in order, all in one layout: oci-layout://PATH:TAG (single-version images, and the config tree's)", Arity = ArgumentArity.OneOrMore };
        var tag = new Option<string>("--tag", "-t") { Description = "The tag of the combined image, in the same layout", Required = true, HelpName = "TAG" };
        var output = CommonOptions.Output("text", "json");
        var command = new Command("compose", "Combine single-version images into the multi-version image by reference: no layer is rebuilt or recompressed") { parts, tag, output };
        command.SetAction(async (parse, ct) =>
        {
            var references = parse.GetValue(parts)!.Select(p => ImageReference.Parse(p, env.Resolve("."))).ToList();
            if (references.Count < 2)
            {
                throw new UserInputException("compose needs at least two images (each version's, and the config tree's if it has its own)");
            }

            if (references.FirstOrDefault(r => !r.IsLayout || r.Digest is not null) is { } notLayout)
            {
                throw new UserInputException($"{notLayout} is not an oci-layout://PATH:TAG: compose works on one layout ('capstan image pull' puts an image into one)");
            }

            if (references.Select(r => r.LayoutPath).Distinct(StringComparer.Ordinal).Count() > 1)
            {
                throw new UserInputException($"the images are in different layouts ({string.Join(", ", references.Select(r => r.LayoutPath).Distinct(StringComparer.Ordinal))}); pull them into one first");
            }

            var layout = new OciLayout(references[0].LayoutPath!);
            ImageReference.Parse($"oci-layout://{layout.Path}:{parse.GetValue(tag)}", env.Resolve("."));
            var result = await new ImageComposer(layout).ComposeAsync([.. references.Select(r => r.Reference)], parse.GetValue(tag)!, ct);
            var writer = console.Profile.Out.Writer;
            if (parse.GetValue(output) == "json")
            {
                writer.WriteLine(new System.Text.Json.Nodes.JsonObject
                {
                    ["reference"] = $"oci-layout://{layout.Path}:{result.Tag}",
                    ["digest"] = result.Manifest.Digest,
                    ["versions"] = new System.Text.Json.Nodes.JsonArray([.. result.Versions.Select(v => (System.Text.Json.Nodes.JsonNode)v)]),
                    ["parts"] = new System.Text.Json.Nodes.JsonArray([.. result.Parts.Select(p => (System.Text.Json.Nodes.JsonNode)p)]),
                    ["layers"] = result.Layers,
                }.ToJsonString());
                return ExitCodes.Success;
            }

            writer.WriteLine($"composed oci-layout://{layout.Path}:{result.Tag} {result.Manifest.Digest}: {string.Join(", ", result.Versions)} in {result.Layers} layers, none rebuilt");
            return ExitCodes.Success;
        });
        return command;
    }
}
