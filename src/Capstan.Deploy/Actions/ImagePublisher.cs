using System.Globalization;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Yaml;
using Capstan.Images;

namespace Capstan.Deploy.Actions;

/// <summary>
/// Builds the farm's MediaWiki image from a repo's trees and makes it pullable: <c>deploy --build-image</c> (the image
/// then named in the deploy-written images values file) and the images of test environments built from a developer's
/// trees. Progress goes to <paramref name="log"/>, one line each.
/// </summary>
public sealed class ImagePublisher(FarmModel model, IRepoFiles files, Func<string, string?> environment, Action<string> log, TimeProvider time)
{
    /// <summary>The images values file and the text a deploy plans with.</summary>
    public sealed record ValuesChange(string File, string Text);

    /// <summary>Where the farm's images are built: its registry when that is an OCI layout, else the repo's build layout.</summary>
    public static string LayoutOf(FarmModel model) => model.RegistryLayout ?? Path.Combine(model.RepoRoot, ".capstan", "build");

    /// <summary>How long each build (and push) of this publisher took, in order.</summary>
    public List<PhaseTiming> Phases { get; } = [];

    /// <summary>Told each reference pushed to a registry, as pods will name it (the local clusters learn they can pull it).</summary>
    public Action<string>? Pushed { get; init; }

    /// <summary>The images values file <c>deploy --build-image</c> writes (the first of values.images without placeholders).</summary>
    public static string ImagesFile(FarmModel model) =>
        model.Values.For(ValuesLayer.Images).FirstOrDefault(t => !t.Contains('{', StringComparison.Ordinal))
            ?? throw new UserInputException("the values layout has no images file without {placeholders} to write the built image to (values.images in capstan.yaml)");

    /// <summary>
    /// <c>deploy --build-image</c>: build the image from the repo's trees, put it in the farm's registry, and write its
    /// reference (by digest) to the images values file, so the deploy that follows rolls it out. An image whose digest
    /// the file already names is no change (null; the file is left as it is). Without <paramref name="writeValues"/>
    /// (a dry run) nothing is written and the file's new text is returned for the plan to use instead, so the dry run
    /// and the real run plan the same thing.
    /// </summary>
    public async Task<ValuesChange?> BuildForDeployAsync(bool writeValues, CancellationToken cancellationToken)
    {
        var file = ImagesFile(model);
        var input = RepoBuildInput.For(model.Image, model.RepoRoot, null, null, null, environment);
        var tag = time.GetUtcNow().UtcDateTime.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);
        var current = CurrentReference(file);
        var reference = await PublishAsync(input, tag, current, cancellationToken);
        if (reference is null)
        {
            log($"unchanged: {file} already names {current}");
            return null;
        }

        var text = $"# Written by capstan deploy --build-image: the MediaWiki image every release runs unless its own file says otherwise.\nimages:\n  mediawiki: \"{reference}\"\n";
        if (!writeValues)
        {
            log($"{reference} (dry run: planned with it; {file} was not written)");
            return new ValuesChange(file, text);
        }

        var path = Path.Combine(model.RepoRoot, file);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        RepoSnapshot.WriteFile(path, text);
        log($"{reference} written to {file}");
        return new ValuesChange(file, text);
    }

    /// <summary>
    /// The image of a test environment built from a developer's trees (<c>VERSION=DIR</c>, and <c>config=DIR</c> for
    /// the config tree; the repo's for whatever is not given), tagged <c>env-NAME-TIME</c>. Null when
    /// <paramref name="current"/> already names it.
    /// </summary>
    public Task<string?> BuildForEnvironmentAsync(string name, IReadOnlyList<string> sources, string? current, CancellationToken cancellationToken)
    {
        var config = sources.Where(s => s.StartsWith("config=", StringComparison.Ordinal)).Select(s => s["config=".Length..]).LastOrDefault();
        var given = sources.Where(s => !s.StartsWith("config=", StringComparison.Ordinal)).ToList();

        // A version given replaces the repo's tree of that version; the others are the repo's.
        var trees = model.Image.Sources
            .Where(r => !given.Any(g => g.StartsWith(r.Version + "=", StringComparison.Ordinal)))
            .Select(r => new ImageSource(r.Version, Path.GetFullPath(Path.Combine(model.RepoRoot, r.Path))))
            .Concat(given.Select(g => RepoBuildInput.ParseSource(g, Path.GetFullPath)))
            .ToList();
        var input = RepoBuildInput.For(model.Image, model.RepoRoot, trees, config is null ? null : Path.GetFullPath(config), null, environment);
        var tag = $"env-{name}-{time.GetUtcNow().UtcDateTime.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}";
        return PublishAsync(input, tag, current, cancellationToken);
    }

    /// <summary>
    /// Builds the image of <paramref name="input"/> with the incremental builder and makes it pullable: in the farm's
    /// own layout (<c>capstan.local/NAME:TAG@DIGEST</c>) or pushed to its registry. Null when
    /// <paramref name="current"/> already names the digest built.
    /// </summary>
    public async Task<string?> PublishAsync(BuildInput input, string tag, string? current, CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        var layout = new OciLayout(LayoutOf(model));
        var result = await new ImageBuilder(layout, new Progress<string>(log)).BuildAsync(input, tag, cancellationToken);
        var flavour = result.Flavours[0];
        await result.WriteReportAsync(layout, null, cancellationToken);
        var reused = flavour.Layers.Count(l => l.Reused);
        log($"built {flavour.Manifest.Digest} ({flavour.Layers.Count} layers, {reused} reused) in {result.Duration.TotalSeconds:0.00} s");
        Phases.Add(new PhaseTiming("build", time.GetElapsedTime(started)));
        if (current is not null && current.EndsWith("@" + flavour.Manifest.Digest, StringComparison.Ordinal))
        {
            return null;
        }

        if (model.RegistryLayout is not null)
        {
            return $"{ImageBuildSpec.LocalRegistry}/{model.Image.Name}:{flavour.Tag}@{flavour.Manifest.Digest}";
        }

        var target = ImageReference.Parse($"{model.Registry.TrimEnd('/')}/{model.Image.Name}:{flavour.Tag}", model.RepoRoot);
        using var registry = new RegistryClient(target.Registry!, target.Repository!, RegistryCredentials.Find(target.Registry!.Authority, environment));
        var pushing = time.GetTimestamp();
        await new ImageCopier(layout, registry).CopyAsync(flavour.Tag, flavour.Tag, cancellationToken);
        Phases.Add(new PhaseTiming("push", time.GetElapsedTime(pushing)));
        log($"pushed to {target} ({registry.BytesUploaded / 1048576.0:0.00} MiB sent)");
        var reference = $"{target.Registry.Authority}/{target.Repository}:{flavour.Tag}@{flavour.Manifest.Digest}";
        Pushed?.Invoke(reference);
        return reference;
    }

    /// <summary>The MediaWiki image the images values file names now, if it names one.</summary>
    private string? CurrentReference(string file)
    {
        if (!files.FileExists(file))
        {
            return null;
        }

        var diagnostics = new DiagnosticBag();
        var root = YamlReader.ReadSingle(files.ReadText(file), file, diagnostics) as ValueMap;
        return (root?["images"] as ValueMap)?["mediawiki"] is ValueScalar { IsNull: false } scalar ? scalar.Text : null;
    }
}
