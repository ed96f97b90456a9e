using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json.Nodes;

namespace Capstan.Images;

/// <summary>What a prep did.</summary>
public sealed record PrepResult(string Digest, int Entries, int Written, int Unchanged, int Removed, long BytesWritten);

/// <summary>
/// Unpacks an image from an OCI layout into a staging directory ("prep"): layers applied in order with their whiteouts
/// (<c>.wh.NAME</c>, <c>.wh..wh..opq</c>). Every entry is checked before anything is written: an absolute path, a
/// <c>..</c> segment, a path that goes through a symbolic link, or a hard link to something outside the image refuses
/// the whole image. Symbolic links are created as they are and never followed. When the directory holds an earlier
/// prep, only what changed is written (a file with the same bytes is left alone), and files the earlier image had and
/// this one has not are removed; files the image never had are left alone.
/// </summary>
public sealed class ImagePrep(OciLayout layout)
{
    /// <summary>The record of what the last prep wrote, kept in the target directory.</summary>
    public const string StateFile = ".capstan-prep.json";

    /// <summary>
    /// Unpacks <paramref name="reference"/> (tag or digest in the layout) into <paramref name="target"/>. A path the image
    /// would write where something already stands that no earlier prep wrote (a foreign file) refuses the image, listing
    /// them, and nothing is written; <paramref name="overwriteForeign"/> replaces them instead.
    /// </summary>
    public async Task<PrepResult> PrepAsync(string reference, string target, string? flavour, CancellationToken cancellationToken, bool overwriteForeign = false)
    {
        var (bytes, mediaType, digest) = await layout.GetManifestAsync(reference, cancellationToken)
            ?? throw new ImageNotFoundException($"{layout.Describe} has no image {reference}");
        var manifest = JsonNode.Parse(bytes)!;
        if (MediaTypes.IsIndex(mediaType) || manifest["manifests"] is JsonArray)
        {
            var children = (manifest["manifests"] as JsonArray ?? []).ToList();
            var chosen = flavour is null
                ? children.FirstOrDefault()
                : children.FirstOrDefault(m => m?["annotations"]?["capstan.dev/flavour"]?.GetValue<string>() == flavour)
                  ?? throw new ImageException($"image {reference} has no flavour '{flavour}' (it has: {string.Join(", ", children.Select(c => c?["annotations"]?["capstan.dev/flavour"]?.GetValue<string>() ?? "?"))})");
            digest = Descriptor.FromJson(chosen ?? throw new ImageException($"image {reference} is an empty index")).Digest;
            manifest = JsonNode.Parse(layout.ReadBlob(digest))!;
        }

        var layers = (manifest["layers"] as JsonArray ?? []).Select(l => Descriptor.FromJson(l!)).ToList();
        foreach (var layer in layers.Where(l => !layout.HasBlob(l.Digest)))
        {
            throw new ImageException($"{layout.Describe} lacks layer {layer.Digest} of {reference}");
        }

        // Phase 1: read every layer's headers, build the final tree, refuse anything unsafe. Nothing is written yet.
        var tree = new PrepTree();
        for (var i = 0; i < layers.Count; i++)
        {
            ForEachEntry(layers[i], (entry, index) =>
            {
                tree.Add(entry, i, index);
                return false;
            });
        }

        var model = tree.Flatten();

        // Phase 2: refuse to overwrite what this tool did not write (unless told to), then apply.
        var root = Path.GetFullPath(target);
        var previous = ReadState(root);
        if (!overwriteForeign && Directory.Exists(root))
        {
            var foreign = ForeignPaths(root, model, previous);
            if (foreign.Count > 0)
            {
                throw new ImageForeignFilesException(
                    $"{root} holds {foreign.Count} path{(foreign.Count == 1 ? string.Empty : "s")} that the image would overwrite and no earlier prep wrote: " +
                    string.Join(", ", foreign.Take(10)) + (foreign.Count > 10 ? $" and {foreign.Count - 10} more" : string.Empty) +
                    "; nothing was written (--force overwrites them)");
            }
        }

        Directory.CreateDirectory(root);
        var written = 0;
        var unchanged = 0;
        long bytesWritten = 0;
        var links = new List<(string Path, string Target)>();
        foreach (var (path, node) in model.Where(m => m.Value.Kind == PrepKind.Directory).OrderBy(m => m.Key, StringComparer.Ordinal))
        {
            var full = StagingFiles.Inside(root, path);
            StagingFiles.EnsureParents(root, path);
            if (StagingFiles.Lstat(full) is { } info && (info.LinkTarget is not null || info is FileInfo))
            {
                info.Delete();
            }

            Directory.CreateDirectory(full);
            StagingFiles.SetMode(full, node.Mode);
        }

        for (var i = 0; i < layers.Count; i++)
        {
            ForEachEntry(layers[i], (entry, index) =>
            {
                var path = Normalize(entry.Name);
                if (path is null || !model.TryGetValue(path, out var node) || node.Layer != i || node.Index != index)
                {
                    return false;
                }

                var full = StagingFiles.Inside(root, path);
                switch (node.Kind)
                {
                    case PrepKind.File:
                        StagingFiles.EnsureParents(root, path);
                        if (WriteIfChanged(full, entry, node.Mode))
                        {
                            written++;
                            bytesWritten += entry.Length;
                        }
                        else
                        {
                            unchanged++;
                        }

                        break;
                    case PrepKind.Symlink:
                        StagingFiles.EnsureParents(root, path);
                        if (StagingFiles.Lstat(full) is { LinkTarget: { } existing } && existing == node.Link)
                        {
                            unchanged++;
                        }
                        else
                        {
                            StagingFiles.Remove(full);
                            File.CreateSymbolicLink(full, node.Link!);
                            written++;
                        }

                        break;
                    case PrepKind.Hardlink:
                        links.Add((path, node.Link!));
                        break;
                }

                return false;
            });
        }

        foreach (var (path, linkTarget) in links)
        {
            var full = StagingFiles.Inside(root, path);
            StagingFiles.EnsureParents(root, path);
            var source = StagingFiles.ResolveFile(root, linkTarget)
                         ?? throw new ImageException($"hard link '{path}': '{linkTarget}' is not a regular file under {root} reached without a symbolic link; refusing to link it");
            if (File.Exists(full) && StagingFiles.Lstat(full)?.LinkTarget is null && StagingFiles.FilesEqual(full, source))
            {
                unchanged++;
                continue;
            }

            StagingFiles.Remove(full);
            if (StagingFiles.Link(source, full) != 0)
            {
                File.Copy(source, full);
            }

            written++;
        }

        // What the earlier prep wrote and this image no longer has goes; anything else in the directory stays.
        var removed = 0;
        foreach (var path in previous.Where(p => !model.ContainsKey(p)).OrderByDescending(p => p.Length))
        {
            // Found without following any link: a path the new image put under a symbolic link is not ours to delete.
            if (StagingFiles.LstatInside(root, path) is { } info)
            {
                if (info is DirectoryInfo dir && info.LinkTarget is null)
                {
                    if (!dir.EnumerateFileSystemInfos().Any())
                    {
                        dir.Delete();
                        removed++;
                    }
                }
                else
                {
                    info.Delete();
                    removed++;
                }
            }
        }

        var state = new JsonObject
        {
            ["image"] = digest,
            ["paths"] = new JsonArray([.. model.Keys.Order(StringComparer.Ordinal).Select(p => (JsonNode?)p)]),
        };
        await StagingFiles.ReplaceAsync(Path.Combine(root, StateFile), state.ToJsonString(), cancellationToken);
        return new PrepResult(digest, model.Count, written, unchanged, removed, bytesWritten);
    }

    /// <summary>
    /// What the image would overwrite that no earlier prep wrote: a path it writes where something else stands (a
    /// directory over a directory is no overwrite), and whatever stands below a directory it replaces by a file or link.
    /// </summary>
    private static List<string> ForeignPaths(string root, Dictionary<string, PrepNode> model, HashSet<string> previous)
    {
        var foreign = new List<string>();
        foreach (var (path, node) in model)
        {
            if (StagingFiles.LstatInside(root, path) is not { } info)
            {
                continue;
            }

            var realDirectory = info is DirectoryInfo && info.LinkTarget is null;
            if (!previous.Contains(path) && !(node.Kind == PrepKind.Directory && realDirectory))
            {
                foreign.Add(path);
            }

            if (node.Kind != PrepKind.Directory && realDirectory)
            {
                foreign.AddRange(Directory.EnumerateFileSystemEntries(info.FullName, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 })
                    .Select(p => path + "/" + Path.GetRelativePath(info.FullName, p).Replace(Path.DirectorySeparatorChar, '/'))
                    .Where(p => !previous.Contains(p)));
            }
        }

        return [.. foreign.Order(StringComparer.Ordinal)];
    }

    /// <summary>Reads a layer's entries in order, checking the blob against its digest at the end.</summary>
    private void ForEachEntry(Descriptor layer, Func<TarEntry, int, bool> visit)
    {
        using var file = new VerifyingStream(File.OpenRead(layout.BlobPath(layer.Digest)), layer.Digest, $"layer {layer.Digest}");
        using Stream data = layer.MediaType.EndsWith("+gzip", StringComparison.Ordinal) || layer.MediaType.EndsWith(".tar.gzip", StringComparison.Ordinal)
            ? new GZipStream(file, CompressionMode.Decompress)
            : layer.MediaType.EndsWith("+zstd", StringComparison.Ordinal)
                ? new ZstdSharp.DecompressionStream(file)
                : layer.MediaType.EndsWith("tar", StringComparison.Ordinal) || layer.MediaType.EndsWith(".tar", StringComparison.Ordinal)
                    ? file
                    : throw new ImageException($"layer {layer.Digest} has media type {layer.MediaType}, which prep does not read (gzip, zstd or plain tar)");
        using var reader = new TarReader(data, leaveOpen: true);
        var index = 0;
        while (reader.GetNextEntry(copyData: false) is { } entry)
        {
            visit(entry, index);
            index++;
        }

        // Read to the end so the digest is checked.
        data.CopyTo(Stream.Null);
    }

    /// <summary>
    /// Writes the entry's bytes unless a regular file (not a link) with exactly these bytes is already there; a changed
    /// file is written beside the old one and renamed over it. True when something was written.
    /// </summary>
    private static bool WriteIfChanged(string full, TarEntry entry, UnixFileMode mode)
    {
        byte[]? content = null;
        if (StagingFiles.Lstat(full) is FileInfo { LinkTarget: null } info && info.Length == entry.Length && entry.Length <= 256L << 20)
        {
            content = new byte[entry.Length];
            entry.DataStream?.ReadExactly(content);
            if (File.ReadAllBytes(full).AsSpan().SequenceEqual(content))
            {
                StagingFiles.SetMode(full, mode);
                return false;
            }
        }

        var temp = full + ".capstan-" + Guid.NewGuid().ToString("N")[..8];
        using (var output = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
        {
            if (content is not null)
            {
                output.Write(content);
            }
            else
            {
                entry.DataStream?.CopyTo(output);
            }
        }

        StagingFiles.SetMode(temp, mode);
        StagingFiles.Remove(full);
        File.Move(temp, full);
        File.SetLastWriteTimeUtc(full, entry.ModificationTime.UtcDateTime);
        return true;
    }

    /// <summary>An entry name as a clean relative path ("" for the root), or null when it would leave the target.</summary>
    internal static string? Normalize(string name)
    {
        if (name.StartsWith('/') || name.Contains('\0', StringComparison.Ordinal))
        {
            return null;
        }

        var parts = new List<string>();
        foreach (var part in name.Split('/'))
        {
            switch (part)
            {
                case "" or ".":
                    continue;
                case "..":
                    return null;
                default:
                    parts.Add(part);
                    break;
            }
        }

        return string.Join('/', parts);
    }

    private static HashSet<string> ReadState(string root)
    {
        // Only a regular file is prep's record: a link there (written by anything else) is never followed.
        var file = Path.Combine(root, StateFile);
        if (StagingFiles.Lstat(file) is not FileInfo { LinkTarget: null })
        {
            return [];
        }

        try
        {
            return [.. (JsonNode.Parse(File.ReadAllText(file))?["paths"] as JsonArray ?? []).Select(p => p!.GetValue<string>()).Where(p => Normalize(p) == p)];
        }
        catch (System.Text.Json.JsonException)
        {
            return [];
        }
    }
}
