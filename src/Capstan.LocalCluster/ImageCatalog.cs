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

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, IReadOnlyList<(string Digest, long Size)>> _layers = new(StringComparer.Ordinal);

    /// <summary>
    /// True when the image can be pulled. An image of the farm's own OCI layout (<c>capstan.local/NAME:TAG[@DIGEST]</c>)
    /// is looked up there, as a node asks its registry: the manifest blob by digest, else the tag in index.json.
    /// </summary>
    public bool Exists(string image)
    {
        if (Core.Config.ImageBuildSpec.LocalReference(image) is { } reference)
        {
            return layout is not null && Manifest(layout, reference) is not null;
        }

        lock (_lock)
        {
            return _images is null || _images.Contains(image);
        }
    }

    /// <summary>The manifest digest a reference of the layout names (a digest it holds, or a tag in index.json), else null.</summary>
    private static string? Manifest(string layout, string reference)
    {
        var store = new Images.OciLayout(layout);
        return reference.StartsWith("sha256:", StringComparison.Ordinal)
            ? (Images.Digests.IsValid(reference) && store.HasBlob(reference) ? reference : null)
            : store.Resolve(reference)?.Digest;
    }

    /// <summary>
    /// The layers a node needs for an image, with their compressed sizes: those of its manifest for an image of the
    /// farm's own OCI layout (the first manifest of an index), else one layer standing for the whole image, of
    /// <paramref name="defaultBytes"/>. A manifest's layers are read once: its digest names its content.
    /// </summary>
    public IReadOnlyList<(string Digest, long Size)> Layers(string image, long defaultBytes)
    {
        if (layout is not null && Core.Config.ImageBuildSpec.LocalReference(image) is { } reference && Manifest(layout, reference) is { } digest)
        {
            return _layers.GetOrAdd(digest, d =>
            {
                var store = new Images.OciLayout(layout);
                var manifest = JsonNode.Parse(store.ReadBlob(d))!;
                if (manifest["manifests"] is JsonArray index && index.Count > 0)
                {
                    manifest = JsonNode.Parse(store.ReadBlob(index[0]!["digest"]!.GetValue<string>()))!;
                }

                return [.. (manifest["layers"] as JsonArray ?? []).Select(l => (l!["digest"]!.GetValue<string>(), l["size"]!.GetValue<long>()))];
            });
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
