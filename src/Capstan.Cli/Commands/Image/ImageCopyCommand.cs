using System.CommandLine;
using System.Text.Json.Nodes;
using Capstan.Images;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan image push</c> and <c>capstan image pull</c>: copy an image between stores.</summary>
internal sealed class ImageCopyCommand(IAnsiConsole console, TextWriter error, CliEnvironment env)
{
    public Command Build(string name, string description, string from, string to)
    {
        var repo = CommonOptions.Repo();
        var source = new Argument<string>(from) { Description = "oci-layout://PATH[:TAG] or HOST/NAME[:TAG|@DIGEST]" };
        var target = new Argument<string>(to) { Description = "oci-layout://PATH[:TAG] or HOST/NAME[:TAG] (default tag: the source's)" };
        var output = CommonOptions.Output("text", "json");
        var command = new Command(name, description) { repo, source, target, output };
        command.SetAction(async (parse, ct) =>
        {
            var from = ImageReference.Parse(parse.GetValue(source)!, env.Resolve("."));
            var to = ImageReference.Parse(parse.GetValue(target)!, env.Resolve("."));
            var result = await ImageCommand.CopyAsync(env, error, from, to, parse.GetValue(output) == "json", ct);
            if (!to.IsLayout && TryRepo(parse.GetValue(repo)) is { } model)
            {
                // Pushed to a registry: the repo's local clusters can pull it from now on, by tag and by digest.
                var name = $"{to.Registry!.Authority}/{to.Repository}";
                LocalImagesCommand.Publish(model, [$"{name}:{to.Tag ?? from.Tag ?? "latest"}", $"{name}@{result.Digest}"], error);
            }

            var writer = console.Profile.Out.Writer;
            if (parse.GetValue(output) == "json")
            {
                writer.WriteLine(new JsonObject
                {
                    ["source"] = from.ToString(),
                    ["target"] = to.ToString(),
                    ["digest"] = result.Digest,
                    ["blobsCopied"] = result.Blobs,
                    ["blobsSkipped"] = result.BlobsSkipped,
                    ["bytesCopied"] = result.BytesCopied,
                    ["bytesSkipped"] = result.BytesSkipped,
                    ["bytesSent"] = result.BytesSent,
                }.ToJsonString());
            }
            else
            {
                writer.WriteLine($"{to.Store}:{to.Tag ?? from.Tag ?? "latest"} {result.Digest}: {result.Blobs} blobs copied ({ImageCommand.Size(result.BytesCopied)}), {result.BlobsSkipped} already there ({ImageCommand.Size(result.BytesSkipped)})" +
                    (result.BytesSent is { } sent ? $"; {ImageCommand.Size(sent)} sent" : string.Empty));
            }

            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>The repo's model when there is a repo here (a push needs none), else null.</summary>
    private Core.Config.FarmModel? TryRepo(string? repoOption)
    {
        try
        {
            return RepoSession.Open(env, repoOption).Model;
        }
        catch (Exception ex) when (ex is Core.Diagnostics.UserInputException or Core.Diagnostics.RepoValidationException)
        {
            return null;
        }
    }
}
