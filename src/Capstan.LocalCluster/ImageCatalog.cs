using System.Text.Json.Nodes;

namespace Capstan.LocalCluster;

/// <summary>
/// Which images the local cluster can pull. An image of the farm's own OCI layout (<c>capstan.local/…</c>) can be
/// pulled when the layout holds it. Any other image can be pulled when the catalog's list names it: a cluster of a
/// repo keeps that list in its directory (<c>images.json</c>, seeded with every image the repo names when the cluster
/// is made, read again when it changes), a test may set one; without a list every image can be pulled. A pod whose
/// image cannot be pulled gets ErrImagePull and then ImagePullBackOff, as a node does for an image missing from its
/// registry.
/// </summary>
public sealed class ImageCatalog(string? layout = null, string? file = null)
{
    /// <summary>The name of the list in a cluster's directory.</summary>
    public const string FileName = "images.json";

    private readonly Lock _lock = new();
    private HashSet<string>? _images;
    private (DateTime, long) _read;

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
            Refresh();
            return _images is null || _images.Contains(image);
        }
    }

    /// <summary>
    /// Reads the list file again when it changed since it was read (its time or size; the caller holds the lock). A file
    /// that is gone means every image; one that cannot be read keeps the list read last.
    /// </summary>
    private void Refresh()
    {
        if (file is null)
        {
            return;
        }

        var info = new FileInfo(file);
        var seen = info.Exists ? (info.LastWriteTimeUtc, info.Length) : default;
        if (seen == _read)
        {
            return;
        }

        _read = seen;
        if (!info.Exists)
        {
            _images = null;
        }
        else if (Read(file) is { } images)
        {
            _images = new HashSet<string>(images, StringComparer.Ordinal);
        }
    }

    /// <summary>The images a list file names, or null when there is none (or it cannot be read).</summary>
    public static IReadOnlyList<string>? Read(string path)
    {
        try
        {
            return (JsonNode.Parse(File.ReadAllText(path)) as JsonObject)?["images"] is JsonArray list
                ? [.. list.Select(i => i is JsonValue v && v.TryGetValue<string>(out var s) ? s : null).OfType<string>()]
                : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Text.Json.JsonException)
        {
            return null;
        }
    }

    /// <summary>Writes a list file, readable by its owner only, whole (a reader never sees half of it).</summary>
    public static void Write(string path, IEnumerable<string> images)
    {
        var text = new JsonObject
        {
            ["images"] = new JsonArray([.. images.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).Select(i => (JsonNode)JsonValue.Create(i))]),
        }.ToJsonString(Indented) + "\n";
        Core.Security.PrivateFiles.WriteAtomically(path, text);
    }

    private static readonly System.Text.Json.JsonSerializerOptions Indented = new() { WriteIndented = true };

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

    /// <summary>Sets the pullable images (kept in the list file, when the catalog has one); null means every image.</summary>
    public void Set(IEnumerable<string>? images)
    {
        lock (_lock)
        {
            _images = images is null ? null : new HashSet<string>(images, StringComparer.Ordinal);
            if (file is not null)
            {
                if (_images is null)
                {
                    File.Delete(file);
                }
                else
                {
                    Write(file, _images);
                }

                _read = default;
            }
        }
    }

    /// <summary>The catalog as JSON.</summary>
    public JsonObject Describe()
    {
        lock (_lock)
        {
            Refresh();
            return new JsonObject { ["images"] = _images is null ? "all" : new JsonArray([.. _images.Order(StringComparer.Ordinal).Select(i => (JsonNode)JsonValue.Create(i))]) };
        }
    }
}
