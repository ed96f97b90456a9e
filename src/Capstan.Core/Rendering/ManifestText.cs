using Capstan.Core.Kubernetes;

namespace Capstan.Core.Rendering;

/// <summary>One rendered object with its serialized text.</summary>
public sealed record ObjectText(RenderedRelease Release, IKubeObject Object, string Text);

/// <summary>Serializes a render's objects to YAML on every core, keeping farm order.</summary>
public static class ManifestText
{
    /// <summary>The YAML of every object of every release, in order; Secret values masked unless revealed.</summary>
    public static IReadOnlyList<ObjectText> ToYaml(IReadOnlyList<RenderedRelease> releases, bool revealSecrets)
    {
        var perRelease = new ObjectText[releases.Count][];
        Parallel.For(0, releases.Count, i =>
        {
            var release = releases[i];
            perRelease[i] = [.. release.Objects.Select(o => new ObjectText(release, o, KubeSerializer.ToYaml(o, revealSecrets)))];
        });
        return [.. perRelease.SelectMany(p => p)];
    }
}
