using System.CommandLine;
using Capstan.Images;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan image inspect</c>: an image's manifest (or index), layers and labels.</summary>
internal sealed class ImageInspectCommand(IAnsiConsole console, CliEnvironment env)
{
    public Command Build()
    {
        var repo = CommonOptions.Repo();
        var image = new Argument<string>("IMAGE") { Description = "oci-layout://PATH[:TAG] or HOST/NAME[:TAG]" };
        var output = CommonOptions.Output("text", "json");
        var command = new Command("inspect", "Show an image's manifest (or index), layers and labels") { repo, image, output };
        command.SetAction(async (parse, ct) =>
        {
            var reference = ImageReference.Parse(parse.GetValue(image)!, env.Resolve("."));
            await using var store = ImageStores.Open(reference, env.Get);
            var inspected = await ImageInspector.InspectAsync(store.Store, reference.Reference, ct);
            var writer = console.Profile.Out.Writer;
            if (parse.GetValue(output) == "json")
            {
                writer.WriteLine(inspected.ToJsonString());
                return ExitCodes.Success;
            }

            writer.WriteLine($"{reference}  {inspected["digest"]}  {inspected["mediaType"]}");
            foreach (var manifest in inspected["manifests"]!.AsArray())
            {
                writer.WriteLine($"manifest {manifest!["digest"]}{(manifest["flavour"] is { } f ? $" (flavour {f})" : string.Empty)}");
                foreach (var label in manifest["labels"]!.AsObject())
                {
                    writer.WriteLine($"  label {label.Key}={label.Value}");
                }

                foreach (var layer in manifest["layers"]!.AsArray())
                {
                    writer.WriteLine($"  layer {layer!["digest"]!.GetValue<string>()[..19]}  {ImageCommand.Size(layer["size"]!.GetValue<long>()),10}  {layer["name"]}");
                }
            }

            return ExitCodes.Success;
        });
        return command;
    }
}
