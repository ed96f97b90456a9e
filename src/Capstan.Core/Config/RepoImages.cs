using Capstan.Core.Diagnostics;
using Capstan.Core.Yaml;

namespace Capstan.Core.Config;

/// <summary>
/// The images a repo's files name: in its YAML (values layers, <c>deploy/images</c>, manifests, environment backends),
/// the value of every <c>image:</c> key and every string under an <c>images:</c> mapping. The embedded clusters start
/// with these as the images their nodes can pull. Hidden directories (<c>.capstan</c>, <c>.git</c>) and the image's
/// code and config trees are not read.
/// </summary>
public static class RepoImages
{
    /// <summary>The images named in the repo of <paramref name="model"/>, sorted, each once.</summary>
    public static IReadOnlyList<string> Named(FarmModel model)
    {
        var root = Path.GetFullPath(model.RepoRoot);
        var skipped = model.Image.Sources.Select(s => s.Path).Append(model.Image.Config).OfType<string>()
            .Select(p => Path.GetFullPath(Path.Combine(root, p)).TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar)
            .ToList();
        var images = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var file in Files(root, skipped))
        {
            string text;
            try
            {
                text = File.ReadAllText(file);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                continue;
            }

            foreach (var doc in YamlReader.ReadAll(text, file, new DiagnosticBag()))
            {
                Collect(doc, underImages: false, images);
            }
        }

        return [.. images];
    }

    private static IEnumerable<string> Files(string dir, List<string> skipped)
    {
        var pending = new Stack<string>([dir]);
        while (pending.TryPop(out var current))
        {
            IEnumerable<string> entries;
            try
            {
                entries = [.. Directory.EnumerateFileSystemEntries(current)];
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                continue;
            }

            foreach (var entry in entries)
            {
                var name = Path.GetFileName(entry);
                if (Directory.Exists(entry))
                {
                    if (!name.StartsWith('.') && !skipped.Contains(entry + Path.DirectorySeparatorChar) && !File.GetAttributes(entry).HasFlag(FileAttributes.ReparsePoint))
                    {
                        pending.Push(entry);
                    }
                }
                else if (name.EndsWith(".yaml", StringComparison.Ordinal) || name.EndsWith(".yml", StringComparison.Ordinal))
                {
                    yield return entry;
                }
            }
        }
    }

    private static void Collect(ValueNode? node, bool underImages, SortedSet<string> images)
    {
        switch (node)
        {
            case ValueMap map:
                foreach (var entry in map.Entries)
                {
                    if (entry.Key == "image" && entry.Value is ValueScalar image && Reference(image.Text))
                    {
                        images.Add(image.Text);
                    }
                    else
                    {
                        Collect(entry.Value, underImages || entry.Key == "images", images);
                    }
                }

                break;
            case ValueList list:
                foreach (var item in list.Items)
                {
                    Collect(item, underImages, images);
                }

                break;
            case ValueScalar scalar when underImages && Reference(scalar.Text):
                images.Add(scalar.Text);
                break;
        }
    }

    /// <summary>True for what can be an image reference (not a file pattern such as capstan.yaml's <c>values: images:</c>).</summary>
    private static bool Reference(string text) =>
        text.Length > 0 && !text.Any(char.IsWhiteSpace) && !text.Contains('{', StringComparison.Ordinal)
        && !text.EndsWith(".yaml", StringComparison.Ordinal) && !text.EndsWith(".yml", StringComparison.Ordinal);
}
