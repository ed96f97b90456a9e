using System.Collections.Immutable;
using Capstan.Core.Config;
using Capstan.Core.Rendering;
using Capstan.Core.State;

namespace Capstan.Core.Tests;

/// <summary>The example farm, loaded once per test class, and helpers to render it.</summary>
internal static class FarmFixture
{
    private static readonly Lazy<(FarmModel Model, DirectoryRepoFiles Files)> Loaded = new(() =>
    {
        var files = new DirectoryRepoFiles(RepoPaths.ExampleFarm);
        return (RepoLoader.Load(files).Model, files);
    });

    public static FarmModel Model => Loaded.Value.Model;

    public static FarmRenderer Renderer() => new(Loaded.Value.Model, Loaded.Value.Files);

    public static DynamicState State(string primary = "eqiad", string? eqiadReadOnly = null, string? codfwReadOnly = null, bool maintenance = true) =>
        new(primary, ImmutableSortedDictionary.CreateRange(StringComparer.Ordinal, new Dictionary<string, string?> { ["eqiad"] = eqiadReadOnly, ["codfw"] = codfwReadOnly }), maintenance);

    public static RenderedRelease Release(string dc, string ns, string release, DynamicState? state = null) =>
        Assert.Single(Renderer().Render(new RenderSelection(dc, ns, release), state ?? State()).Releases);

    public static T Single<T>(RenderedRelease release) => Assert.Single(release.Objects.OfType<T>());
}
