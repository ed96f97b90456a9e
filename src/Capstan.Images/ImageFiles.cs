using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json.Nodes;

namespace Capstan.Images;

/// <summary>Reads one file out of an image of an OCI layout, as the image's filesystem holds it (the topmost layer wins).</summary>
public static class ImageFiles
{
    /// <summary>The largest file read (a bigger one is treated as absent).</summary>
    public const long MaxBytes = 16 << 20;

    /// <summary>
    /// The text of <paramref name="path"/> (no leading '/') in the image whose manifest is <paramref name="manifestDigest"/>,
    /// or null when the layout lacks the image or the image lacks the file (or a later layer deleted it), or it is not a
    /// regular file (a link is never followed), or it is bigger than <see cref="MaxBytes"/>.
    /// </summary>
    public static async Task<string?> ReadTextAsync(OciLayout layout, string manifestDigest, string path, CancellationToken cancellationToken)
    {
        if (await layout.GetManifestAsync(manifestDigest, cancellationToken) is not { } manifest
            || JsonNode.Parse(manifest.Bytes)?["layers"] is not JsonArray layers)
        {
            return null;
        }

        var name = path.TrimStart('/');
        var whiteout = Path.GetDirectoryName(name)?.Replace('\\', '/') is { Length: > 0 } dir ? $"{dir}/.wh.{Path.GetFileName(name)}" : $".wh.{name}";
        foreach (var layer in layers.Reverse())
        {
            if (layer?["digest"]?.GetValue<string>() is not { } digest || layer["mediaType"]?.GetValue<string>() is not { } mediaType || !layout.HasBlob(digest))
            {
                return null;
            }

            await using var file = File.OpenRead(layout.BlobPath(digest));
            await using Stream data = mediaType.EndsWith("+gzip", StringComparison.Ordinal) ? new GZipStream(file, CompressionMode.Decompress)
                : mediaType.EndsWith("+zstd", StringComparison.Ordinal) ? new ZstdSharp.DecompressionStream(file)
                : file;
            await using var reader = new TarReader(data, leaveOpen: true);
            while (await reader.GetNextEntryAsync(copyData: false, cancellationToken) is { } entry)
            {
                var entryName = entry.Name.StartsWith("./", StringComparison.Ordinal) ? entry.Name[2..] : entry.Name;
                if (entryName == whiteout)
                {
                    return null;
                }

                if (entryName == name && (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || entry.Length > MaxBytes))
                {
                    return null;
                }

                if (entryName == name && entry.DataStream is { } stream)
                {
                    using var text = new StreamReader(stream);
                    return await text.ReadToEndAsync(cancellationToken);
                }
            }
        }

        return null;
    }
}
