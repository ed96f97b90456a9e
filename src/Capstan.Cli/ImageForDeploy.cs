using System.Globalization;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Yaml;
using Capstan.Images;

namespace Capstan.Cli;

/// <summary>
/// <c>deploy --build-image</c>: build the image from the repo's trees, put it in the farm's registry, and write its
/// reference (by digest) to the deploy-written images values file, so the deploy that follows rolls it out. An image
/// whose digest the file already names is no change: the file is left as it is. A dry run writes nothing and returns
/// the file's new text for the plan to use instead, so the dry run and the real run plan the same thing.
/// </summary>
internal static class ImageForDeploy
{
    /// <summary>The images values file and the text a deploy plans with; null when the file already names the image.</summary>
    public sealed record ValuesChange(string File, string Text);

    public static async Task<ValuesChange?> BuildAsync(RepoSession session, CliEnvironment env, TextWriter error, bool writeValues, TimeProvider time, CancellationToken cancellationToken)
    {
        var model = session.Model;
        var file = model.Values.For(ValuesLayer.Images).FirstOrDefault(t => !t.Contains('{', StringComparison.Ordinal))
            ?? throw new UserInputException("the values layout has no images file without {placeholders} to write the built image to (values.images in capstan.yaml)");
        var input = Commands.ImageCommand.Input(env, session, [], null, null);
        var tag = time.GetUtcNow().UtcDateTime.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);
        var current = CurrentReference(session, file);
        var reference = await PublishAsync(session, env, error, input, tag, current, cancellationToken);
        if (reference is null)
        {
            error.WriteLine($"capstan: image: unchanged: {file} already names {current}");
            return null;
        }

        var text = $"# Written by capstan deploy --build-image: the MediaWiki image every release runs unless its own file says otherwise.\nimages:\n  mediawiki: \"{reference}\"\n";
        if (!writeValues)
        {
            error.WriteLine($"capstan: image: {reference} (dry run: planned with it; {file} was not written)");
            return new ValuesChange(file, text);
        }

        var path = Path.Combine(model.RepoRoot, file);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + ".tmp";
        await File.WriteAllTextAsync(temp, text, cancellationToken);
        File.Move(temp, path, overwrite: true);
        error.WriteLine($"capstan: image: {reference} written to {file}");
        return new ValuesChange(file, text);
    }

    /// <summary>
    /// Builds the image of <paramref name="input"/> with the incremental builder and makes it pullable: in the farm's
    /// own layout (<c>capstan.local/NAME:TAG@DIGEST</c>) or pushed to its registry. Null when
    /// <paramref name="current"/> already names the digest built.
    /// </summary>
    public static async Task<string?> PublishAsync(RepoSession session, CliEnvironment env, TextWriter error, BuildInput input, string tag, string? current, CancellationToken cancellationToken)
    {
        var model = session.Model;
        var layout = new OciLayout(Commands.ImageCommand.LayoutPath(env, session, null));
        var result = await new ImageBuilder(layout, new Progress<string>(m => error.WriteLine($"capstan: image: {m}"))).BuildAsync(input, tag, cancellationToken);
        var flavour = result.Flavours[0];
        await result.WriteReportAsync(layout, null, cancellationToken);
        var reused = flavour.Layers.Count(l => l.Reused);
        error.WriteLine($"capstan: image: built {flavour.Manifest.Digest} ({flavour.Layers.Count} layers, {reused} reused) in {result.Duration.TotalSeconds:0.00} s");
        if (current is not null && current.EndsWith("@" + flavour.Manifest.Digest, StringComparison.Ordinal))
        {
            return null;
        }

        if (model.RegistryLayout is not null)
        {
            return $"{ImageBuildSpec.LocalRegistry}/{model.Image.Name}:{flavour.Tag}@{flavour.Manifest.Digest}";
        }

        var target = ImageReference.Parse($"{model.Registry.TrimEnd('/')}/{model.Image.Name}:{flavour.Tag}", model.RepoRoot);
        using var registry = new RegistryClient(target.Registry!, target.Repository!, RegistryCredentials.Find(target.Registry!.Authority, env.Get));
        await new ImageCopier(layout, registry).CopyAsync(flavour.Tag, flavour.Tag, cancellationToken);
        error.WriteLine($"capstan: image: pushed to {target} ({registry.BytesUploaded / 1048576.0:0.00} MiB sent)");
        return $"{target.Registry.Authority}/{target.Repository}:{flavour.Tag}@{flavour.Manifest.Digest}";
    }

    /// <summary>
    /// The image of a test environment built from a developer's trees (<c>VERSION=DIR</c>, and <c>config=DIR</c> for
    /// the config tree; the repo's for whatever is not given), tagged <c>env-NAME-TIME</c>. Null when
    /// <paramref name="current"/> already names it.
    /// </summary>
    public static Task<string?> BuildForEnvironmentAsync(RepoSession session, CliEnvironment env, TextWriter error, string environment, IReadOnlyList<string> sources, string? current, TimeProvider time, CancellationToken cancellationToken)
    {
        var config = sources.Where(s => s.StartsWith("config=", StringComparison.Ordinal)).Select(s => s["config=".Length..]).LastOrDefault();
        var given = sources.Where(s => !s.StartsWith("config=", StringComparison.Ordinal)).ToList();

        // A version given replaces the repo's tree of that version; the others are the repo's.
        var trees = session.Model.Image.Sources
            .Where(r => !given.Any(g => g.StartsWith(r.Version + "=", StringComparison.Ordinal)))
            .Select(r => $"{r.Version}={Path.GetFullPath(Path.Combine(session.Model.RepoRoot, r.Path))}")
            .Concat(given)
            .ToArray();
        var input = Commands.ImageCommand.Input(env, session, trees, config, null);
        var tag = $"env-{environment}-{time.GetUtcNow().UtcDateTime.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}";
        return PublishAsync(session, env, error, input, tag, current, cancellationToken);
    }

    /// <summary>The MediaWiki image the images values file names now, if it names one.</summary>
    private static string? CurrentReference(RepoSession session, string file)
    {
        if (!session.Files.FileExists(file))
        {
            return null;
        }

        var diagnostics = new DiagnosticBag();
        var root = YamlReader.ReadSingle(session.Files.ReadText(file), file, diagnostics) as ValueMap;
        return (root?["images"] as ValueMap)?["mediawiki"] is ValueScalar { IsNull: false } scalar ? scalar.Text : null;
    }
}
