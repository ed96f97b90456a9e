using System.Text.Json.Nodes;

namespace Capstan.LocalCluster;

/// <summary>
/// Which images the local cluster can pull. By default every image can; once a list is set, a pod whose image is not
/// in it gets ErrImagePull and then ImagePullBackOff, as a node does for an image missing from its registry.
/// </summary>
public sealed class ImageCatalog(string? layout = null)
{
    private readonly Lock _lock = new();
    private HashSet<string>? _images;

    /// <summary>
    /// True when the image can be pulled. An image of the farm's own OCI layout (<c>capstan.local/NAME:TAG[@DIGEST]</c>)
    /// is looked up there, as a node asks its registry: the manifest blob by digest, else the tag in index.json.
    /// </summary>
    public bool Exists(string image)
    {
        if (image.StartsWith(Core.Config.ImageBuildSpec.LocalRegistry + "/", StringComparison.Ordinal))
        {
            return layout is not null && InLayout(layout, image[(Core.Config.ImageBuildSpec.LocalRegistry.Length + 1)..]);
        }

        lock (_lock)
        {
            return _images is null || _images.Contains(image);
        }
    }

    private static bool InLayout(string layout, string reference)
    {
        var store = new Images.OciLayout(layout);
        var at = reference.IndexOf('@', StringComparison.Ordinal);
        if (at >= 0)
        {
            var digest = reference[(at + 1)..];
            return Images.Digests.IsValid(digest) && store.HasBlob(digest);
        }

        var colon = reference.LastIndexOf(':');
        return store.Resolve(colon >= 0 ? reference[(colon + 1)..] : "latest") is not null;
    }

    /// <summary>
    /// The layers a node needs for an image, with their compressed sizes: those of its manifest for an image of the
    /// farm's own OCI layout (the first manifest of an index), else one layer standing for the whole image, of
    /// <paramref name="defaultBytes"/>.
    /// </summary>
    public IReadOnlyList<(string Digest, long Size)> Layers(string image, long defaultBytes)
    {
        if (layout is not null && image.StartsWith(Core.Config.ImageBuildSpec.LocalRegistry + "/", StringComparison.Ordinal))
        {
            var store = new Images.OciLayout(layout);
            var reference = image[(Core.Config.ImageBuildSpec.LocalRegistry.Length + 1)..];
            var at = reference.IndexOf('@', StringComparison.Ordinal);
            var colon = reference.LastIndexOf(':');
            var digest = at >= 0 ? reference[(at + 1)..] : store.Resolve(colon >= 0 ? reference[(colon + 1)..] : "latest")?.Digest;
            if (digest is not null && Images.Digests.IsValid(digest) && store.HasBlob(digest))
            {
                var manifest = JsonNode.Parse(store.ReadBlob(digest))!;
                if (manifest["manifests"] is JsonArray index && index.Count > 0)
                {
                    manifest = JsonNode.Parse(store.ReadBlob(index[0]!["digest"]!.GetValue<string>()))!;
                }

                return [.. (manifest["layers"] as JsonArray ?? []).Select(l => (l!["digest"]!.GetValue<string>(), l["size"]!.GetValue<long>()))];
            }
        }

        return [("image:" + image, defaultBytes)];
    }

    /// <summary>Sets the pullable images; null means every image.</summary>
    public void Set(IEnumerable<string>? images)
    {
        lock (_lock)
        {
            _images = images is null ? null : new HashSet<string>(images, StringComparer.Ordinal);
        }
    }

    /// <summary>The catalog as JSON.</summary>
    public JsonObject Describe()
    {
        lock (_lock)
        {
            return new JsonObject { ["images"] = _images is null ? "all" : new JsonArray([.. _images.Order(StringComparer.Ordinal).Select(i => (JsonNode)JsonValue.Create(i))]) };
        }
    }
}
