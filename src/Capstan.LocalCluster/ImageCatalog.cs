using System.Text.Json.Nodes;

namespace Capstan.LocalCluster;

/// <summary>
/// Which images the local cluster can pull. By default every image can; once a list is set, a pod whose image is not
/// in it gets ErrImagePull and then ImagePullBackOff, as a node does for an image missing from its registry.
/// </summary>
public sealed class ImageCatalog
{
    private readonly Lock _lock = new();
    private HashSet<string>? _images;

    /// <summary>True when the image can be pulled.</summary>
    public bool Exists(string image)
    {
        lock (_lock)
        {
            return _images is null || _images.Contains(image);
        }
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
