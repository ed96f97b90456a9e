using System.Text.Json.Nodes;
using Capstan.Core.Config;
using Capstan.Testing;

namespace Capstan.Images.Tests;

/// <summary>Images against the real tools: skopeo, umoci and a docker-registry.</summary>
public sealed class StoreTests(RegistryServer registry) : IClassFixture<RegistryServer>
{
    [Fact]
    public async Task Skopeo_and_umoci_accept_what_capstan_writes_and_umoci_unpacks_the_same_tree()
    {
        var v1 = Tools.Tree(Tools.Temp("v1"));
        var v2 = Tools.Tree(Tools.Temp("v2"), "v2");
        var dir = Tools.Temp("layout");
        var layout = new OciLayout(dir);
        var result = await new ImageBuilder(layout).BuildAsync(Tools.Input([new ImageSource("php-1.42", v1), new ImageSource("php-1.43", v2)]), "both", default);

        var inspect = Tools.Run("skopeo", "inspect", $"oci:{dir}:both");
        Assert.True(inspect.Code == 0, inspect.Err);
        var json = JsonNode.Parse(inspect.Out)!;
        Assert.Equal(result.Top.Digest, json["Digest"]!.GetValue<string>());
        Assert.Equal("php-1.42,php-1.43", json["Labels"]!["capstan.dev/versions"]!.GetValue<string>());
        Assert.Equal(20, json["Layers"]!.AsArray().Count);

        var copy = Tools.Run("skopeo", "copy", $"oci:{dir}:both", $"oci:{Tools.Temp("copy")}:both");
        Assert.True(copy.Code == 0, copy.Err);

        var bundle = Path.Combine(Tools.Temp("bundle"), "b");
        var unpack = Tools.Run("umoci", "unpack", "--rootless", "--image", $"{dir}:both", bundle);
        Assert.True(unpack.Code == 0, unpack.Err);
        Assert.Equal(Tools.Sha256Tree(v1), Tools.Sha256Tree(Path.Combine(bundle, "rootfs", "srv", "mediawiki", "php-1.42")));
        Assert.Equal(Tools.Sha256Tree(v2), Tools.Sha256Tree(Path.Combine(bundle, "rootfs", "srv", "mediawiki", "php-1.43")));
    }

    [Fact]
    public async Task Zstd_layers_are_reproducible_read_back_by_prep_and_by_skopeo_and_umocis_answer_is_known()
    {
        var tree = Tools.Tree(Tools.Temp("tree"));
        var spec = ImageBuildSpec.Default with { Compression = "zstd" };
        var dir = Tools.Temp("layout");
        var layout = new OciLayout(dir);
        var built = await new ImageBuilder(layout).BuildAsync(Tools.Input([new ImageSource("php-1.42", tree)], spec: spec), "zstd", default);
        var again = await new ImageBuilder(new OciLayout(Tools.Temp("again"))).BuildAsync(Tools.Input([new ImageSource("php-1.42", Tools.Tree(Tools.Temp("copy")))], spec: spec), "zstd", default);
        Assert.Equal(built.Top.Digest, again.Top.Digest);
        Assert.All(built.Flavours[0].Layers, l => Assert.Equal(MediaTypes.LayerZstd, l.Blob.MediaType));
        var blob = File.ReadAllBytes(layout.BlobPath(built.Flavours[0].Layers.First(l => l.Files > 0).Blob.Digest));
        Assert.Equal(new byte[] { 0x28, 0xB5, 0x2F, 0xFD }, blob[..4]); // a zstd frame's magic number

        // The same content with gzip: a different image, its own cache, and the zstd cache untouched.
        var gzip = await new ImageBuilder(layout).BuildAsync(Tools.Input([new ImageSource("php-1.42", tree)]), "gzip", default);
        Assert.All(gzip.Flavours[0].Layers, l => Assert.Equal(MediaTypes.LayerGzip, l.Blob.MediaType));
        Assert.NotEqual(built.Top.Digest, gzip.Top.Digest);
        Assert.Equal(built.Top.Digest, (await new ImageBuilder(layout).BuildAsync(Tools.Input([new ImageSource("php-1.42", tree)], spec: spec), "zstd2", default)).Top.Digest);

        // Prep reads zstd layers to the same tree.
        var target = Tools.Temp("target");
        await new ImagePrep(layout).PrepAsync("zstd", target, null, default);
        Assert.Equal(Tools.Sha256Tree(tree), Tools.Sha256Tree(Path.Combine(target, "srv", "mediawiki", "php-1.42")));

        // Debian's skopeo reads and copies it (the README says so).
        var inspect = Tools.Run("skopeo", "inspect", $"oci:{dir}:zstd");
        Assert.True(inspect.Code == 0, inspect.Err);
        Assert.Equal(built.Top.Digest, JsonNode.Parse(inspect.Out)!["Digest"]!.GetValue<string>());
        Assert.Equal(built.Flavours[0].Layers.Select(l => l.Blob.Digest), JsonNode.Parse(inspect.Out)!["Layers"]!.AsArray().Select(l => l!.GetValue<string>()));
        var copy = Tools.Run("skopeo", "copy", $"oci:{dir}:zstd", $"oci:{Tools.Temp("skopeo-copy")}:zstd");
        Assert.True(copy.Code == 0, copy.Err);

        // Debian's umoci 0.4.7 predates zstd layers: it refuses them, which the README says too. If a newer umoci
        // unpacks them, the tree must be the same.
        var bundle = Path.Combine(Tools.Temp("bundle"), "b");
        var unpack = Tools.Run("umoci", "unpack", "--rootless", "--image", $"{dir}:zstd", bundle);
        if (unpack.Code == 0)
        {
            Assert.Equal(Tools.Sha256Tree(tree), Tools.Sha256Tree(Path.Combine(bundle, "rootfs", "srv", "mediawiki", "php-1.42")));
        }
        else
        {
            Assert.Contains("zstd", unpack.Err, StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public async Task Compose_combines_single_version_images_by_reference_the_same_way_twice_and_skopeo_and_umoci_read_it()
    {
        var v1 = Tools.Tree(Tools.Temp("v1"));
        var v2 = Tools.Tree(Tools.Temp("v2"), "v2");
        var dir = Tools.Temp("layout");
        var layout = new OciLayout(dir);
        var first = await new ImageBuilder(layout).BuildAsync(Tools.Input([new ImageSource("php-1.42", v1)]), "php-1.42", default);
        var second = await new ImageBuilder(layout).BuildAsync(Tools.Input([new ImageSource("php-1.43", v2)]), "php-1.43", default);
        var blobs = Directory.GetFiles(Path.Combine(dir, "blobs", "sha256")).Length;

        var composed = await new ImageComposer(layout).ComposeAsync(["php-1.42", "php-1.43"], "both", default);
        var again = await new ImageComposer(layout).ComposeAsync(["php-1.42", "php-1.43"], "both-again", default);
        Assert.Equal(composed.Manifest.Digest, again.Manifest.Digest);
        Assert.Equal(["php-1.42", "php-1.43"], composed.Versions);
        // By reference: the only new blobs are the config and the manifest; the layers are the parts' own, in order.
        Assert.Equal(blobs + 2, Directory.GetFiles(Path.Combine(dir, "blobs", "sha256")).Length);
        var manifest = JsonNode.Parse(layout.ReadBlob(composed.Manifest.Digest))!;

        // The built and the composed manifests write '+' as other tools do, not as \u002B.
        foreach (var text in new[] { composed.Manifest.Digest, first.Flavours[0].Manifest.Digest }.Select(d => System.Text.Encoding.UTF8.GetString(layout.ReadBlob(d))))
        {
            Assert.Contains("\"application/vnd.oci.image.manifest.v1+json\"", text, StringComparison.Ordinal);
            Assert.DoesNotContain("\\u002B", text, StringComparison.Ordinal);
        }

        Assert.Equal(
            first.Flavours[0].Layers.Concat(second.Flavours[0].Layers).Select(l => l.Blob.Digest),
            manifest["layers"]!.AsArray().Select(l => l!["digest"]!.GetValue<string>()));

        var inspect = Tools.Run("skopeo", "inspect", $"oci:{dir}:both");
        Assert.True(inspect.Code == 0, inspect.Err);
        Assert.Equal("php-1.42,php-1.43", JsonNode.Parse(inspect.Out)!["Labels"]!["capstan.dev/versions"]!.GetValue<string>());
        var bundle = Path.Combine(Tools.Temp("bundle"), "b");
        var unpack = Tools.Run("umoci", "unpack", "--rootless", "--image", $"{dir}:both", bundle);
        Assert.True(unpack.Code == 0, unpack.Err);
        Assert.Equal(Tools.Sha256Tree(v1), Tools.Sha256Tree(Path.Combine(bundle, "rootfs", "srv", "mediawiki", "php-1.42")));
        Assert.Equal(Tools.Sha256Tree(v2), Tools.Sha256Tree(Path.Combine(bundle, "rootfs", "srv", "mediawiki", "php-1.43")));

        // A version in two parts, or a part that is not there, is refused.
        Assert.Contains("php-1.42 is in more than one", (await Assert.ThrowsAsync<ImageException>(() => new ImageComposer(layout).ComposeAsync(["php-1.42", "both"], "twice", default))).Message, StringComparison.Ordinal);
        Assert.Contains("there is no image tagged nope", (await Assert.ThrowsAsync<ImageException>(() => new ImageComposer(layout).ComposeAsync(["php-1.42", "nope"], "x", default))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Push_skips_what_the_registry_has_mounts_across_repositories_and_pull_gets_the_same_image()
    {
        var tree = Tools.Tree(Tools.Temp("tree"));
        var big = Path.Combine(tree, "vendor", "big.bin");
        var random = new byte[40 << 20];
        new Random(42).NextBytes(random);
        await File.WriteAllBytesAsync(big, random);
        var layout = new OciLayout(Tools.Temp("layout"));
        var built = await new ImageBuilder(layout).BuildAsync(Tools.Input([new ImageSource("php-1.42", tree)]), "v1", default);
        var registryUri = new Uri(registry.Address + "/");

        using (var target = new RegistryClient(registryUri, "mediawiki", null))
        {
            var first = await new ImageCopier(layout, target).CopyAsync("v1", "v1", default);
            Assert.Equal(built.Top.Digest, first.Digest);
            Assert.True(target.BytesUploaded > 40 << 20, "the 40 MiB layer goes up in chunks");
            var uploaded = target.BytesUploaded;
            var again = await new ImageCopier(layout, target).CopyAsync("v1", "v1", default);
            Assert.Equal(0, again.Blobs);
            Assert.Equal(uploaded, target.BytesUploaded);
        }

        using (var other = new RegistryClient(registryUri, "team/mediawiki", null) { MountFrom = "mediawiki" })
        using (var source = new RegistryClient(registryUri, "mediawiki", null))
        {
            await new ImageCopier(source, other).CopyAsync("v1", "copy", default);
            Assert.Equal(0, other.BytesUploaded);
        }

        var skopeo = Tools.Run("skopeo", "inspect", "--tls-verify=false", $"docker://127.0.0.1:{registry.Port}/team/mediawiki:copy");
        Assert.True(skopeo.Code == 0, skopeo.Err);
        Assert.Equal(built.Top.Digest, JsonNode.Parse(skopeo.Out)!["Digest"]!.GetValue<string>());

        // A registry written by another tool pulls too.
        var pushed = Tools.Run("skopeo", "copy", "--dest-tls-verify=false", $"oci:{layout.Path}:v1", $"docker://127.0.0.1:{registry.Port}/by-skopeo:v1");
        Assert.True(pushed.Code == 0, pushed.Err);
        var pulledLayout = new OciLayout(Tools.Temp("pulled"));
        using (var source = new RegistryClient(registryUri, "by-skopeo", null))
        {
            var pulled = await new ImageCopier(source, pulledLayout).CopyAsync("v1", "v1", default);
            Assert.Equal(built.Flavours[0].Layers.Select(l => l.Blob.Digest).Distinct().Count() + 1, pulled.Blobs);
        }

        var prepped = Tools.Temp("prepped");
        await new ImagePrep(pulledLayout).PrepAsync("v1", prepped, null, default);
        Assert.Equal(Tools.Sha256Tree(tree), Tools.Sha256Tree(Path.Combine(prepped, "srv", "mediawiki", "php-1.42")));
    }

    [Fact]
    public async Task A_blob_altered_in_the_registry_is_detected_on_pull_and_never_stored()
    {
        // Content of its own: the registry stores a blob once for every repository, and this test damages it.
        var tree = Tools.Tree(Tools.Temp("tree"), Guid.NewGuid().ToString("N"));
        var layout = new OciLayout(Tools.Temp("layout"));
        var built = await new ImageBuilder(layout).BuildAsync(Tools.Input([new ImageSource("php-1.42", tree)]), "v1", default);
        var registryUri = new Uri(registry.Address + "/");
        using (var target = new RegistryClient(registryUri, "corrupt", null))
        {
            await new ImageCopier(layout, target).CopyAsync("v1", "v1", default);
        }

        var victim = built.Flavours[0].Layers.Single(l => l.Name == "php-1.42/includes").Blob.Digest;
        var file = registry.BlobFile(victim);
        var bytes = await File.ReadAllBytesAsync(file);
        bytes[bytes.Length / 2] ^= 0x55;
        await File.WriteAllBytesAsync(file, bytes);

        var pulled = new OciLayout(Tools.Temp("pulled"));
        using var source = new RegistryClient(registryUri, "corrupt", null);
        var ex = await Assert.ThrowsAsync<DigestMismatchException>(() => new ImageCopier(source, pulled).CopyAsync("v1", "v1", default));
        Assert.Contains(victim, ex.Message, StringComparison.Ordinal);
        Assert.False(pulled.HasBlob(victim));
        Assert.Null(pulled.Resolve("v1"));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(pulled.Path, "blobs", "sha256"), "*.tmp"));
    }
}
