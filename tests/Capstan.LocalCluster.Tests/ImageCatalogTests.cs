namespace Capstan.LocalCluster.Tests;

public sealed class ImageCatalogTests : IDisposable
{
    private readonly string _layout = Path.Combine(Path.GetTempPath(), "capstan-catalog-" + Guid.NewGuid().ToString("N"));

    public ImageCatalogTests()
    {
        Directory.CreateDirectory(Path.Combine(_layout, "blobs", "sha256"));
        File.WriteAllText(Path.Combine(_layout, "blobs", "sha256", new string('a', 64)), "{}");
        File.WriteAllText(Path.Combine(_layout, "index.json"), """{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aaaa","size":2,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}""");
    }

    public void Dispose() => Directory.Delete(_layout, recursive: true);

    [Fact]
    public void Images_of_the_farms_layout_are_pullable_only_when_the_layout_holds_them()
    {
        var catalog = new ImageCatalog(_layout);
        Assert.True(catalog.Exists($"capstan.local/mediawiki:v1@sha256:{new string('a', 64)}"));
        Assert.False(catalog.Exists($"capstan.local/mediawiki:v1@sha256:{new string('b', 64)}"));
        Assert.True(catalog.Exists("capstan.local/mediawiki:v1"));
        Assert.False(catalog.Exists("capstan.local/mediawiki:v2"));
        Assert.False(catalog.Exists("capstan.local/mediawiki@sha256:../../etc/passwd"));

        // Other registries stay as the catalog says (every image, unless a list is set), and without a layout nothing local exists.
        Assert.True(catalog.Exists("docker-registry.example/envoy:1.2"));
        catalog.Set(["docker-registry.example/envoy:1.2"]);
        Assert.False(catalog.Exists("docker-registry.example/httpd:2"));
        Assert.False(new ImageCatalog().Exists($"capstan.local/mediawiki:v1@sha256:{new string('a', 64)}"));
    }
}
