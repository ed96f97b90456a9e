using System.Globalization;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Images;

namespace Capstan.Cli;

/// <summary>
/// <c>deploy --build-image</c>: build the image from the repo's trees, put it in the farm's registry, and write its
/// reference (by digest) to the deploy-written images values file, so the deploy that follows rolls it out.
/// </summary>
internal static class ImageForDeploy
{
    public static async Task<string> BuildAsync(RepoSession session, CliEnvironment env, TextWriter error, bool writeValues, CancellationToken cancellationToken)
    {
        var model = session.Model;
        var input = Commands.ImageCommand.Input(env, session, [], null, null);
        var layout = new OciLayout(Commands.ImageCommand.LayoutPath(env, session, null));
        var tag = DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);
        var result = await new ImageBuilder(layout, new Progress<string>(m => error.WriteLine($"capstan: image: {m}"))).BuildAsync(input, tag, cancellationToken);
        var flavour = result.Flavours[0];
        await result.WriteReportAsync(layout, null, cancellationToken);
        var reused = flavour.Layers.Count(l => l.Reused);
        error.WriteLine($"capstan: image: built {flavour.Manifest.Digest} ({flavour.Layers.Count} layers, {reused} reused) in {result.Duration.TotalSeconds:0.00} s");

        string reference;
        if (model.RegistryLayout is not null)
        {
            reference = $"{ImageBuildSpec.LocalRegistry}/{model.Image.Name}:{flavour.Tag}@{flavour.Manifest.Digest}";
        }
        else
        {
            var target = ImageReference.Parse($"{model.Registry.TrimEnd('/')}/{model.Image.Name}:{flavour.Tag}", model.RepoRoot);
            using var registry = new RegistryClient(target.Registry!, target.Repository!, RegistryCredentials.Find(target.Registry!.Authority, env.Get));
            await new ImageCopier(layout, registry).CopyAsync(flavour.Tag, flavour.Tag, cancellationToken);
            error.WriteLine($"capstan: image: pushed to {target} ({registry.BytesUploaded / 1048576.0:0.00} MiB sent)");
            reference = $"{target.Registry.Authority}/{target.Repository}:{flavour.Tag}@{flavour.Manifest.Digest}";
        }

        if (!writeValues)
        {
            error.WriteLine($"capstan: image: {reference} (dry run: the images values file was not written)");
            return reference;
        }

        var file = model.Values.For(ValuesLayer.Images).FirstOrDefault(t => !t.Contains('{', StringComparison.Ordinal))
            ?? throw new UserInputException("the values layout has no images file without {placeholders} to write the built image to (values.images in capstan.yaml)");
        var path = Path.Combine(model.RepoRoot, file);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + ".tmp";
        await File.WriteAllTextAsync(temp, $"# Written by capstan deploy --build-image: the MediaWiki image every release runs unless its own file says otherwise.\nimages:\n  mediawiki: \"{reference}\"\n", cancellationToken);
        File.Move(temp, path, overwrite: true);
        error.WriteLine($"capstan: image: {reference} written to {file}");
        return reference;
    }
}
