using System.CommandLine;
using Capstan.Core.Diagnostics;
using Capstan.Deploy.Actions;
using Capstan.Images;
using Spectre.Console;

namespace Capstan.Cli.Commands;

/// <summary><c>capstan image</c>: its verbs (one class each, beside this file) and what they share.</summary>
internal sealed class ImageCommand(IAnsiConsole console, TextWriter error, CliEnvironment env)
{
    public Command Build() => new("image", "Build, move, inspect and unpack the MediaWiki image (OCI)")
    {
        new ImageBuildCommand(console, error, env).Build(),
        new ImagePlanCommand(console, env).Build(),
        new ImageCopyCommand(console, error, env).Build("push", "Copy an image to a registry (or another layout); blobs the target has are skipped", "SOURCE", "TARGET"),
        new ImageCopyCommand(console, error, env).Build("pull", "Copy an image from a registry into a layout, checking every blob against its digest", "SOURCE", "TARGET"),
        new ImagePrepCommand(console, error, env).Build(),
        new ImageInspectCommand(console, env).Build(),
        new ImageComposeCommand(console, env).Build(),
        new ImagePullCostCommand(console, env).Build(),
    };

    internal static async Task<CopyResult> CopyAsync(CliEnvironment env, TextWriter error, ImageReference from, ImageReference to, bool quiet, CancellationToken ct)
    {
        await using var source = ImageStores.Open(from, env.Get);

        // Within one registry, blobs are mounted from the source repository instead of uploaded.
        await using var target = ImageStores.Open(to, env.Get, mountFrom: !from.IsLayout && from.Registry == to.Registry ? from.Repository : null);

        var copier = new ImageCopier(source.Store, target.Store, quiet || !env.Interactive ? null : new TransferProgress(error));
        return await copier.CopyAsync(from.Reference, to.Tag ?? from.Tag ?? (from.Digest is null ? "latest" : null), ct);
    }

    internal static BuildInput Input(CliEnvironment env, RepoSession session, string[] sourceOptions, string? configOption, long? epochOption, bool requireSources = true) =>
        RepoBuildInput.For(
            session.Model.Image, session.Model.RepoRoot, [.. sourceOptions.Select(s => RepoBuildInput.ParseSource(s, env.Resolve))],
            configOption is null ? null : env.Resolve(configOption), epochOption, env.Get, requireSources);

    internal static string LayoutPath(CliEnvironment env, RepoSession session, string? to)
    {
        if (to is not null)
        {
            var reference = ImageReference.Parse(to, env.Resolve("."));
            return reference.IsLayout ? reference.LayoutPath! : throw new UserInputException("--to must be an oci-layout://PATH (push to a registry with 'capstan image push')");
        }

        return ImagePublisher.LayoutOf(session.Model);
    }

    internal static string Size(long bytes) => Capstan.Core.Values.ByteSize.Format(bytes);

    internal sealed class TransferProgress(TextWriter error) : IProgress<(string What, long Done, long Total)>
    {
        private readonly Lock _lock = new();
        private string? _last;

        public void Report((string What, long Done, long Total) value)
        {
            lock (_lock)
            {
                var percent = value.Total > 0 ? (int)(value.Done * 100 / value.Total) : 100;
                var line = $"{value.What}: {Size(value.Done)} / {Size(value.Total)} ({percent}%)";
                if (line != _last)
                {
                    error.Write("\r" + line.PadRight(72));
                    if (value.Done >= value.Total)
                    {
                        error.WriteLine();
                    }

                    _last = line;
                }
            }
        }
    }

    internal sealed class Progress(TextWriter error, bool quiet) : IProgress<string>
    {
        public void Report(string value)
        {
            if (!quiet)
            {
                error.WriteLine($"capstan: {value}");
            }
        }
    }
}
