using System.Text.Json.Nodes;

namespace Capstan.Images;

/// <summary>What a composition made: the new manifest, and the images it was made of.</summary>
public sealed record ComposeResult(string Tag, Descriptor Manifest, IReadOnlyList<string> Versions, IReadOnlyList<string> Parts, int Layers);

/// <summary>
/// Combines single-version images (and the config tree's image) into the multi-version image, by reference: the new
/// manifest lists the parts' layers as they are, in the order given, so no layer is read, rebuilt or recompressed,
/// and a node that pulled a part already holds its layers. The config joins the parts' diff IDs, history and version
/// labels; it depends only on the parts, so the same parts give the same digest.
/// </summary>
public sealed class ImageComposer(OciLayout layout)
{
    /// <summary>Composes the images tagged <paramref name="parts"/> in the layout into one tagged <paramref name="tag"/>.</summary>
    public async Task<ComposeResult> ComposeAsync(IReadOnlyList<string> parts, string tag, CancellationToken cancellationToken)
    {
        if (parts.Count < 2)
        {
            throw new ImageException("compose needs at least two images");
        }

        var layers = new JsonArray();
        var diffIds = new JsonArray();
        var history = new JsonArray();
        var versions = new List<string>();
        var digests = new List<string>();
        JsonObject? first = null;
        var created = string.Empty;
        foreach (var part in parts)
        {
            var (manifest, partConfig, digest) = Manifest(part);
            digests.Add(digest);
            first ??= partConfig;
            var partLayers = manifest["layers"]?.AsArray() ?? throw new ImageException($"image {part} has no layers");
            var partDiffIds = partConfig["rootfs"]?["diff_ids"]?.AsArray() ?? throw new ImageException($"image {part}'s config has no rootfs.diff_ids");
            if (partLayers.Count != partDiffIds.Count)
            {
                throw new ImageException($"image {part} lists {partLayers.Count} layers but {partDiffIds.Count} diff IDs");
            }

            foreach (var layer in partLayers)
            {
                if (!layout.HasBlob(layer!["digest"]!.GetValue<string>()))
                {
                    throw new ImageException($"image {part}'s layer {layer["digest"]} is not in {layout.Describe}: pull the image first");
                }

                layers.Add(layer.DeepClone());
            }

            foreach (var id in partDiffIds)
            {
                diffIds.Add(id!.DeepClone());
            }

            foreach (var entry in partConfig["history"]?.AsArray() ?? [])
            {
                history.Add(entry!.DeepClone());
            }

            var partVersions = partConfig["config"]?["Labels"]?["capstan.dev/versions"]?.GetValue<string>();
            versions.AddRange(partVersions is null ? [] : partVersions.Split(',', StringSplitOptions.RemoveEmptyEntries));
            var partCreated = partConfig["created"]?.GetValue<string>() ?? string.Empty;
            created = string.CompareOrdinal(partCreated, created) > 0 ? partCreated : created;
        }

        if (versions.GroupBy(v => v, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } twice)
        {
            throw new ImageException($"version {twice.Key} is in more than one of the images; each version may come from one only");
        }

        var labels = (first!["config"]?["Labels"] as JsonObject)?.DeepClone().AsObject() ?? [];
        labels["capstan.dev/versions"] = string.Join(",", versions);
        labels["org.opencontainers.image.version"] = string.Join(",", versions);
        labels["org.opencontainers.image.created"] = created;
        labels["capstan.dev/composed-from"] = string.Join(",", digests);
        labels.Remove("org.opencontainers.image.revision");
        var sortedLabels = new JsonObject(labels.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => KeyValuePair.Create(kv.Key, kv.Value?.DeepClone())));
        var config = new JsonObject
        {
            ["created"] = created,
            ["architecture"] = first["architecture"]?.DeepClone(),
            ["os"] = first["os"]?.DeepClone(),
            ["config"] = new JsonObject { ["Labels"] = sortedLabels },
            ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = diffIds },
            ["history"] = history,
        };
        var configDescriptor = layout.PutBytes(OciJson.Bytes(config), MediaTypes.Config);
        var composed = OciJson.ImageManifest(
            configDescriptor,
            layers.Select(l => l!.DeepClone()),
            new JsonObject(sortedLabels.Where(l => l.Key.StartsWith("org.opencontainers", StringComparison.Ordinal)).Select(l => KeyValuePair.Create(l.Key, l.Value?.DeepClone()))));
        var descriptor = layout.PutBytes(OciJson.Bytes(composed), MediaTypes.Manifest);
        await layout.TagAsync(tag, descriptor, cancellationToken);
        return new ComposeResult(tag, descriptor, versions, digests, layers.Count);
    }

    /// <summary>A part's manifest and config; an index of one manifest counts as that manifest, one of several is refused.</summary>
    private (JsonObject Manifest, JsonObject Config, string Digest) Manifest(string tag)
    {
        var top = layout.Resolve(tag) ?? throw new ImageException($"there is no image tagged {tag} in {layout.Describe}");
        var node = JsonNode.Parse(layout.ReadBlob(top.Digest))!.AsObject();
        var digest = top.Digest;
        if (node["mediaType"]?.GetValue<string>() == MediaTypes.Index || node["manifests"] is JsonArray)
        {
            var manifests = node["manifests"]!.AsArray();
            if (manifests.Count != 1)
            {
                throw new ImageException($"image {tag} is an index of {manifests.Count} flavours; compose one flavour's tag ({tag}-FLAVOUR)");
            }

            digest = manifests[0]!["digest"]!.GetValue<string>();
            node = JsonNode.Parse(layout.ReadBlob(digest))!.AsObject();
        }

        var config = JsonNode.Parse(layout.ReadBlob(node["config"]!["digest"]!.GetValue<string>()))!.AsObject();
        return (node, config, digest);
    }
}
