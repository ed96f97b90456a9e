using System.CommandLine;
using System.Text.Json.Nodes;
using Capstan.Images;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan image prep</c>: pull an image and unpack it into a staging directory.</summary>
internal sealed class ImagePrepCommand(IAnsiConsole console, TextWriter error, CliEnvironment env)
{
    public Command Build()
    {
        var repo = CommonOptions.Repo();
        var image = new Argument<string>("IMAGE") { Description = "oci-layout://PATH[:TAG] or HOST/NAME[:TAG|@DIGEST]" };
        var into = new Option<string>("--into") { Description = "The staging directory to unpack into (created when missing)", Required = true, HelpName = "DIR" };
        var flavour = new Option<string?>("--flavour") { Description = "Which flavour of a multi-flavour image (default: the first)", HelpName = "NAME" };
        var cache = new Option<string?>("--cache") { Description = "The local layout pulled images are kept in (default: the repo's .capstan/images)", HelpName = "DIR" };
        var force = new Option<bool>("--force") { Description = "Overwrite files in the directory that no earlier prep wrote (refused by default, listing them)" };
        var output = CommonOptions.Output("text", "json");
        var command = new Command("prep", "Pull an image and unpack it into a staging directory (only what changed is written)") { repo, image, into, flavour, cache, force, output };
        command.SetAction(async (parse, ct) =>
        {
            var reference = ImageReference.Parse(parse.GetValue(image)!, env.Resolve("."));
            OciLayout layout;
            string local;
            if (reference.IsLayout)
            {
                layout = new OciLayout(reference.LayoutPath!);
                local = reference.Reference;
            }
            else
            {
                var cacheDir = parse.GetValue(cache) is { } c ? env.Resolve(c) : Path.Combine(env.Resolve(parse.GetValue(repo) ?? env.Get("CAPSTAN_REPO") ?? "."), ".capstan", "images");
                layout = new OciLayout(cacheDir);
                var copy = await ImageCommand.CopyAsync(env, error, reference, ImageReference.Parse("oci-layout://" + cacheDir, "/") with { Tag = null, Digest = null }, parse.GetValue(output) == "json", ct);
                local = copy.Digest;
            }

            var result = await new ImagePrep(layout).PrepAsync(local, env.Resolve(parse.GetValue(into)!), parse.GetValue(flavour), ct, overwriteForeign: parse.GetValue(force));
            var writer = console.Profile.Out.Writer;
            if (parse.GetValue(output) == "json")
            {
                writer.WriteLine(new JsonObject
                {
                    ["image"] = result.Digest,
                    ["entries"] = result.Entries,
                    ["written"] = result.Written,
                    ["unchanged"] = result.Unchanged,
                    ["removed"] = result.Removed,
                    ["bytesWritten"] = result.BytesWritten,
                }.ToJsonString());
            }
            else
            {
                writer.WriteLine($"prepped {result.Digest} into {env.Resolve(parse.GetValue(into)!)}: {result.Entries} entries; {result.Written} written ({ImageCommand.Size(result.BytesWritten)}), {result.Unchanged} unchanged, {result.Removed} removed");
            }

            return ExitCodes.Success;
        });
        return command;
    }
}
