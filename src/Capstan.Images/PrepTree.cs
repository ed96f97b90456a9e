using System.Formats.Tar;

namespace Capstan.Images;

/// <summary>What kind of thing prep puts at a path.</summary>
internal enum PrepKind
{
    Directory,
    File,
    Symlink,
    Hardlink,
}

/// <summary>One path of the final tree: its kind, the layer and entry that supply it (-1 for a directory no entry names), its mode and link.</summary>
internal sealed record PrepNode(PrepKind Kind, int Layer, int Index, UnixFileMode Mode, string? Link);

/// <summary>
/// The tree an image unpacks to, built from its layers' headers before anything is written. Every path is resolved one
/// component at a time inside the tree, never through a symbolic link or a file: an entry under a symbolic link, a
/// symbolic link over a directory that has children, a hard link to anything but a file of the image, a device or FIFO,
/// and an entry named like prep's own record refuse the image with the entry's path. Whiteouts remove a subtree in time
/// proportional to the whiteouts, not to the tree.
/// </summary>
internal sealed class PrepTree
{
    private const UnixFileMode DefaultDirectoryMode = (UnixFileMode)0b111_101_101;
    private readonly Entry _root = new(new PrepNode(PrepKind.Directory, -1, -1, DefaultDirectoryMode, null));

    /// <summary>Adds one tar entry of layer <paramref name="layer"/> (0-based), entry <paramref name="index"/> of that layer.</summary>
    public void Add(TarEntry entry, int layer, int index)
    {
        var path = ImagePrep.Normalize(entry.Name) ?? throw Refuse(layer, entry.Name, "is outside the image (absolute path or '..')");
        if (path.Length == 0)
        {
            return;
        }

        var slash = path.LastIndexOf('/');
        var parentPath = slash < 0 ? string.Empty : path[..slash];
        var name = path[(slash + 1)..];
        if (parentPath.Length == 0 && name == ImagePrep.StateFile)
        {
            throw Refuse(layer, path, "has the name of prep's own record");
        }

        if (name.StartsWith(".wh.", StringComparison.Ordinal))
        {
            // A whiteout of something the tree does not hold has nothing to do, and makes no directory.
            if (Directory(parentPath, layer, path, create: false) is { } directory)
            {
                if (name == ".wh..wh..opq")
                {
                    Opaque(directory, layer);
                }
                else if (directory.Children.TryGetValue(name[4..], out var hidden))
                {
                    WhiteOut(directory, name[4..], hidden, layer);
                }
            }

            return;
        }

        var parent = Directory(parentPath, layer, path, create: true)!;

        var mode = (UnixFileMode)((int)entry.Mode & 0b111_111_111);
        var node = entry.EntryType switch
        {
            TarEntryType.Directory => new PrepNode(PrepKind.Directory, layer, index, mode, null),
            TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile => new PrepNode(PrepKind.File, layer, index, mode, null),
            TarEntryType.SymbolicLink => new PrepNode(PrepKind.Symlink, layer, index, mode, entry.LinkName),
            TarEntryType.HardLink => new PrepNode(PrepKind.Hardlink, layer, index, mode, HardLinkTarget(entry, layer, path)),
            TarEntryType.CharacterDevice or TarEntryType.BlockDevice => throw Refuse(layer, path, "is a device, which has no place in a code tree"),
            TarEntryType.Fifo => throw Refuse(layer, path, "is a FIFO, which has no place in a code tree"),
            _ => throw Refuse(layer, path, $"has the tar entry type {entry.EntryType}, which prep does not unpack"),
        };

        parent.Children.TryGetValue(name, out var existing);
        if (existing is not null && existing.Node.Kind == PrepKind.Directory && node.Kind == PrepKind.Directory)
        {
            existing.Node = node;
            existing.Touched = Math.Max(existing.Touched, layer);
            return;
        }

        if (existing is { Node.Kind: PrepKind.Directory, Children.Count: > 0 } && (node.Kind == PrepKind.Symlink || existing.Node.Layer == layer))
        {
            throw Refuse(layer, path, $"replaces a directory that has children ({string.Join(", ", existing.Children.Keys.Order(StringComparer.Ordinal).Take(3).Select(c => path + "/" + c))}) with a {Describe(node.Kind)}");
        }

        parent.Children[name] = new Entry(node);
    }

    /// <summary>Every path of the final tree with its node, parents before children; directories no entry named are included.</summary>
    public Dictionary<string, PrepNode> Flatten()
    {
        var paths = new Dictionary<string, PrepNode>(StringComparer.Ordinal);
        var pending = new Stack<(string Path, Entry Entry)>();
        pending.Push((string.Empty, _root));
        while (pending.Count > 0)
        {
            var (path, entry) = pending.Pop();
            foreach (var (name, child) in entry.Children)
            {
                var childPath = path.Length == 0 ? name : path + "/" + name;
                paths[childPath] = child.Node;
                pending.Push((childPath, child));
            }
        }

        // A hard link whose file a later layer removed or replaced has nothing to link to.
        foreach (var (path, node) in paths.Where(p => p.Value.Kind == PrepKind.Hardlink))
        {
            if (!paths.TryGetValue(node.Link!, out var target) || target.Kind != PrepKind.File)
            {
                throw new ImageException($"entry '{path}': hard link to '{node.Link}', which is no longer a file of the image once every layer is applied; refusing the image");
            }
        }

        return paths;
    }

    /// <summary>
    /// The directory at <paramref name="path"/>, made when absent (or null when <paramref name="create"/> is false); a
    /// symbolic link or file on the way refuses the entry.
    /// </summary>
    private Entry? Directory(string path, int layer, string entryPath, bool create)
    {
        var current = _root;
        if (path.Length == 0)
        {
            return current;
        }

        var walked = string.Empty;
        foreach (var part in path.Split('/'))
        {
            walked = walked.Length == 0 ? part : walked + "/" + part;
            if (!current.Children.TryGetValue(part, out var next))
            {
                if (!create)
                {
                    return null;
                }

                next = new Entry(new PrepNode(PrepKind.Directory, -1, -1, DefaultDirectoryMode, null));
                current.Children[part] = next;
            }
            else if (next.Node.Kind != PrepKind.Directory)
            {
                throw Refuse(layer, entryPath, $"goes through '{walked}', which is a {(next.Node.Kind == PrepKind.Symlink ? $"symbolic link to '{next.Node.Link}'" : "file")}");
            }

            if (create)
            {
                next.Touched = Math.Max(next.Touched, layer);
            }

            current = next;
        }

        return current;
    }

    /// <summary>The file a hard link names, found in the tree without following any symbolic link.</summary>
    private string HardLinkTarget(TarEntry entry, int layer, string path)
    {
        var target = ImagePrep.Normalize(entry.LinkName) ?? throw Refuse(layer, path, $"is a hard link that points outside the image ('{entry.LinkName}')");
        var current = _root;
        foreach (var part in target.Split('/'))
        {
            if (current.Node.Kind != PrepKind.Directory || !current.Children.TryGetValue(part, out var next))
            {
                throw Refuse(layer, path, $"is a hard link to '{target}', which is not a file of the image");
            }

            current = next;
        }

        return current.Node.Kind == PrepKind.File ? target : throw Refuse(layer, path, $"is a hard link to '{target}', which is not a file of the image");
    }

    /// <summary>A whiteout of one name: what lower layers put there goes, what this layer put there stays.</summary>
    private static void WhiteOut(Entry directory, string name, Entry hidden, int layer)
    {
        if (hidden.Touched < layer)
        {
            directory.Children.Remove(name);
        }
        else if (hidden.Node.Kind == PrepKind.Directory)
        {
            Opaque(hidden, layer);
        }
    }

    /// <summary>An opaque whiteout: what lower layers put in the directory goes, what this layer put there stays.</summary>
    private static void Opaque(Entry directory, int layer)
    {
        foreach (var (name, child) in directory.Children.ToList())
        {
            if (child.Node.Layer >= layer)
            {
                continue;
            }

            if (child.Touched < layer)
            {
                directory.Children.Remove(name);
            }
            else
            {
                // A directory of a lower layer that this layer already wrote into: keep this layer's part only.
                Opaque(child, layer);
            }
        }
    }

    private static ImageException Refuse(int layer, string path, string why) => new($"layer {layer + 1}: entry '{path}' {why}; refusing the image");

    private static string Describe(PrepKind kind) => kind switch
    {
        PrepKind.Symlink => "symbolic link",
        PrepKind.Hardlink => "hard link",
        _ => "file",
    };

    private sealed class Entry(PrepNode node)
    {
        public PrepNode Node { get; set; } = node;

        public Dictionary<string, Entry> Children { get; } = new(StringComparer.Ordinal);

        /// <summary>The last layer that added anything at or below this directory.</summary>
        public int Touched { get; set; } = node.Layer;
    }
}
