using System.Buffers;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Capstan.Core.Config;

namespace Capstan.Images;

/// <summary>What a build reads: the code trees (in version order), the config tree, and the fixed timestamp.</summary>
public sealed record BuildInput(ImageBuildSpec Spec, IReadOnlyList<ImageSource> Sources, string? ConfigDirectory, long Epoch, string? SourceCommit);

/// <summary>The kind of a layer entry.</summary>
public enum EntryKind
{
    /// <summary>A directory.</summary>
    Directory,

    /// <summary>A regular file.</summary>
    File,

    /// <summary>A symbolic link.</summary>
    Symlink,

    /// <summary>A hard link to a file of an earlier layer or of this one (a file shared byte for byte between versions).</summary>
    Hardlink,
}

/// <summary>One entry of a planned layer.</summary>
public sealed record PlannedEntry(string Path, EntryKind Kind, string? Source, long Size, bool Executable, string? Link)
{
    /// <summary>The source file's modification time (ticks), for the stat cache; 0 when not a file.</summary>
    public long Modified { get; init; }
}

/// <summary>A planned layer: its name (version/rule, or config), the rule it came from, and its entries in archive order.</summary>
public sealed record PlannedLayer(string Name, string Rule, string? Version, IReadOnlyList<PlannedEntry> Entries)
{
    /// <summary>
    /// A key over every entry's path, kind, size, mode, link and the source file's modification time: when an earlier
    /// build saw the same key, the layer's DiffID is known without reading the files (the way make and rsync decide).
    /// </summary>
    public string StatKey()
    {
        // One buffer, one hash: the fields of every entry, each string followed by a zero byte.
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(Entries.Count * 128);
        Span<byte> number = stackalloc byte[8];
        foreach (var e in Entries)
        {
            Text(buffer, e.Path);
            Text(buffer, e.Link);
            Text(buffer, e.Source);
            foreach (var value in (ReadOnlySpan<long>)[(long)e.Kind, e.Size, e.Executable ? 1 : 0, e.Modified])
            {
                System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(number, value);
                buffer.Write(number);
            }
        }

        return Digests.Of(buffer.WrittenSpan);
    }

    private static void Text(System.Buffers.ArrayBufferWriter<byte> buffer, string? text)
    {
        if (text is not null)
        {
            var span = buffer.GetSpan(System.Text.Encoding.UTF8.GetMaxByteCount(text.Length) + 1);
            var written = System.Text.Encoding.UTF8.GetBytes(text, span);
            span[written] = 0;
            buffer.Advance(written + 1);
        }
        else
        {
            buffer.Write((ReadOnlySpan<byte>)[0xFF, 0]);
        }
    }

    /// <summary>Bytes of file content in the layer.</summary>
    public long ContentBytes => Entries.Where(e => e.Kind == EntryKind.File).Sum(e => e.Size);

    /// <summary>Regular files in the layer.</summary>
    public int Files => Entries.Count(e => e.Kind == EntryKind.File);

    /// <summary>Files stored as links to the same bytes in an earlier version.</summary>
    public int Shared => Entries.Count(e => e.Kind == EntryKind.Hardlink);
}

/// <summary>
/// Turns code trees into layers following the layering plan: per version, one layer per rule in plan order (a path goes
/// to the first rule that matches it, everything else to the rule with '*'), then the config tree last. A file of a
/// later version with the same path and bytes as in an earlier version becomes a hard link to it, so a second version
/// costs only what differs. Entries are sorted (parents first, ordinal names) so the archive never depends on the
/// order a filesystem lists them in.
/// </summary>
public static class LayerPlanner
{
    /// <summary>Plans the layers of an input.</summary>
    public static IReadOnlyList<PlannedLayer> Plan(BuildInput input) => Plan(input, null);

    /// <summary>Plans the layers of an input from trees as <paramref name="walk"/> gives them (an <see cref="ImageWatcher"/>'s current view), or walked now.</summary>
    public static IReadOnlyList<PlannedLayer> Plan(BuildInput input, Func<string, IReadOnlyList<(string Rel, FileSystemInfo Info)>>? walk)
    {
        walk ??= WalkParallel;
        var root = input.Spec.Root.Trim('/');
        var rules = input.Spec.Layers.Select(r => (Rule: r, Matchers: r.Paths.Where(p => p != "*").Select(Matcher).ToList())).ToList();
        var rest = input.Spec.Layers.FirstOrDefault(r => r.Paths.Contains("*"))?.Name ?? input.Spec.Layers[^1].Name;
        var layers = new List<PlannedLayer>();
        var earlier = new Dictionary<string, (string ImagePath, string Source, long Size)>(StringComparer.Ordinal);
        var hashes = new Dictionary<string, byte[]>(StringComparer.Ordinal);

        foreach (var source in input.Sources)
        {
            if (!Directory.Exists(source.Path))
            {
                throw new ImageException($"source tree '{source.Path}' ({source.Version}) does not exist");
            }

            var byRule = input.Spec.Layers.ToDictionary(r => r.Name, _ => new List<PlannedEntry>(), StringComparer.Ordinal);
            var mine = new Dictionary<string, (string ImagePath, string Source, long Size)>(StringComparer.Ordinal);

            // Reading the directories is sequential; stat-ing and classifying the entries runs on every core.
            var walked = walk(source.Path);
            var classified = new (string Rule, PlannedEntry Entry)[walked.Count];
            Parallel.For(0, walked.Count, i =>
            {
                var (rel, info) = walked[i];
                string[]? segments = null;
                var rule = rules.FirstOrDefault(r => r.Matchers.Any(m => m(rel, () => segments ??= rel.Split('/')))).Rule?.Name ?? rest;
                classified[i] = (rule, Entry($"{root}/{source.Version}/{rel}", info));
            });

            for (var i = 0; i < walked.Count; i++)
            {
                var rel = walked[i].Rel;
                var (rule, entry) = classified[i];
                if (entry.Kind == EntryKind.File && earlier.TryGetValue(rel, out var before) && before.Size == entry.Size && SameBytes(before.Source, entry.Source!, hashes))
                {
                    entry = new PlannedEntry(entry.Path, EntryKind.Hardlink, null, 0, false, before.ImagePath);
                }

                if (entry.Kind == EntryKind.File)
                {
                    mine.TryAdd(rel, (entry.Path, entry.Source!, entry.Size));
                }

                byRule[rule].Add(entry);
            }

            foreach (var (rel, value) in mine)
            {
                earlier.TryAdd(rel, value);
            }

            // Each rule's layers are cut and sorted on their own, on every core.
            var perRule = new List<PlannedLayer>[input.Spec.Layers.Count];
            Parallel.For(0, input.Spec.Layers.Count, r =>
            {
                var rule = input.Spec.Layers[r];
                var pieces = Split(rule, byRule[rule.Name], $"{root}/{source.Version}/");
                perRule[r] = [.. pieces.Select((piece, p) => new PlannedLayer(
                    pieces.Count == 1 ? $"{source.Version}/{rule.Name}" : $"{source.Version}/{rule.Name}.{p + 1}",
                    rule.Name,
                    source.Version,
                    Order(piece, $"{root}/{source.Version}")))];
            });
            layers.AddRange(perRule.SelectMany(l => l));
        }

        if (input.ConfigDirectory is { } config)
        {
            if (!Directory.Exists(config))
            {
                throw new ImageException($"config tree '{config}' does not exist");
            }

            var entries = walk(config).Select(w => Entry($"{root}/{w.Rel}", w.Info)).ToList();
            layers.Add(new PlannedLayer("config", "config", null, Order(entries, root)));
        }

        return layers;
    }

    /// <summary>Cuts a rule's entries into pieces at name-defined points (and at the size bound); one piece when the rule does not split.</summary>
    private static List<List<PlannedEntry>> Split(LayerRule rule, List<PlannedEntry> entries, string prefix)
    {
        if (rule.SplitFiles is null && rule.SplitBytes is null)
        {
            return [entries];
        }

        var sorted = entries.OrderBy(e => e.Path.Replace('/', '\0'), StringComparer.Ordinal).ToList();
        var pieces = new List<List<PlannedEntry>> { new() };
        long bytes = 0;
        foreach (var entry in sorted)
        {
            pieces[^1].Add(entry);
            bytes += entry.Size;
            var cut = (rule.SplitFiles is { } n && entry.Kind == EntryKind.File && PathHash(entry.Path[prefix.Length..]) % (ulong)n == 0)
                || (rule.SplitBytes is { } max && bytes >= max);
            if (cut)
            {
                pieces.Add([]);
                bytes = 0;
            }
        }

        if (pieces.Count > 1 && pieces[^1].Count == 0)
        {
            pieces.RemoveAt(pieces.Count - 1);
        }

        return pieces;
    }

    /// <summary>A stable hash of a path below the version directory, so every version cuts at the same names.</summary>
    private static ulong PathHash(string rel) => BitConverter.ToUInt64(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(rel)), 0);

    /// <summary>The entries of a tree, its top-level directories read on every core.</summary>
    internal static List<(string Rel, FileSystemInfo Info)> WalkParallel(string directory)
    {
        var top = new DirectoryInfo(directory).EnumerateFileSystemInfos("*", new EnumerationOptions { RecurseSubdirectories = false, AttributesToSkip = 0, IgnoreInaccessible = false })
            .Where(i => i.Name != GitDirectory).ToList();
        var parts = new List<(string, FileSystemInfo)>[top.Count];
        Parallel.For(0, top.Count, i =>
        {
            var info = top[i];
            var list = new List<(string, FileSystemInfo)> { (info.Name, info) };
            if (info is DirectoryInfo && (info.Attributes & FileAttributes.ReparsePoint) == 0)
            {
                list.AddRange(Walk(info.FullName).Select(w => (info.Name + "/" + w.Rel, w.Info)));
            }

            parts[i] = list;
        });
        return [.. parts.SelectMany(p => p)];
    }

    /// <summary>A checkout's git metadata (a directory, or a file in a submodule or worktree): never part of the image.</summary>
    internal const string GitDirectory = ".git";

    /// <summary>The entries of a tree, relative paths with '/' separators; symlinks are entries, never followed; <c>.git</c> is left out.</summary>
    internal static IEnumerable<(string Rel, FileSystemInfo Info)> Walk(string directory)
    {
        var stack = new Stack<(DirectoryInfo Dir, string Rel)>();
        stack.Push((new DirectoryInfo(directory), string.Empty));
        var options = new EnumerationOptions { RecurseSubdirectories = false, AttributesToSkip = 0, IgnoreInaccessible = false, ReturnSpecialDirectories = false };
        while (stack.Count > 0)
        {
            var (dir, rel) = stack.Pop();
            foreach (var info in dir.EnumerateFileSystemInfos("*", options).Where(i => i.Name != GitDirectory))
            {
                var path = rel.Length == 0 ? info.Name : rel + "/" + info.Name;
                yield return (path, info);
                if (info is DirectoryInfo sub && (info.Attributes & FileAttributes.ReparsePoint) == 0)
                {
                    stack.Push((sub, path));
                }
            }
        }
    }

    private static PlannedEntry Entry(string imagePath, FileSystemInfo info)
    {
        if ((info.Attributes & FileAttributes.ReparsePoint) != 0 && info.LinkTarget is { } target)
        {
            return new PlannedEntry(imagePath, EntryKind.Symlink, null, 0, false, target);
        }

        if (info is DirectoryInfo)
        {
            return new PlannedEntry(imagePath, EntryKind.Directory, null, 0, false, null);
        }

        var file = (FileInfo)info;
        var executable = (file.UnixFileMode & UnixFileMode.UserExecute) != 0;
        return new PlannedEntry(imagePath, EntryKind.File, file.FullName, file.Length, executable, null) { Modified = file.LastWriteTimeUtc.Ticks };
    }

    /// <summary>Adds the parent directories every entry needs (up to the image root) and sorts: parents first, names ordinal.</summary>
    private static List<PlannedEntry> Order(List<PlannedEntry> entries, string top)
    {
        var all = new Dictionary<string, PlannedEntry>(StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            all[entry.Path] = entry;
            var parent = entry.Path;
            while (parent.LastIndexOf('/') is var slash and > 0)
            {
                parent = parent[..slash];
                if (all.ContainsKey(parent))
                {
                    break;
                }

                all[parent] = new PlannedEntry(parent, EntryKind.Directory, null, 0, false, null);
            }
        }

        if (entries.Count == 0)
        {
            // An empty layer still carries its directory, so every layer has content and a digest of its own.
            var parent = top;
            while (true)
            {
                all[parent] = new PlannedEntry(parent, EntryKind.Directory, null, 0, false, null);
                if (parent.LastIndexOf('/') is var slash and > 0)
                {
                    parent = parent[..slash];
                }
                else
                {
                    break;
                }
            }
        }

        // Ordinal order of the path with '/' as the lowest character: the same as ComparePaths, vectorized.
        return [.. all.Values.OrderBy(e => e.Path.Replace('/', '\0'), StringComparer.Ordinal)];
    }

    /// <summary>Segment by segment, ordinal: a directory always comes before what it holds.</summary>
    internal static int ComparePaths(string a, string b)
    {
        var i = 0;
        var j = 0;
        while (i < a.Length && j < b.Length)
        {
            var ca = a[i] == '/' ? '\0' : a[i];
            var cb = b[j] == '/' ? '\0' : b[j];
            if (ca != cb)
            {
                return ca.CompareTo(cb);
            }

            i++;
            j++;
        }

        return (a.Length - i).CompareTo(b.Length - j);
    }

    /// <summary>A matcher for one path pattern of a rule: "dir/" takes the subtree, otherwise a glob on the leading segments.</summary>
    private static Func<string, Func<string[]>, bool> Matcher(string pattern)
    {
        if (pattern.EndsWith('/') && !pattern.AsSpan(0, pattern.Length - 1).ContainsAny("*?["))
        {
            var dir = pattern.TrimEnd('/');
            return (rel, _) => rel == dir || rel.StartsWith(pattern, StringComparison.Ordinal);
        }

        var segments = pattern.Trim('/').Split('/').Select(GlobRegex).ToArray();
        var first = pattern.Trim('/').Split('/')[0];
        var wild = first.IndexOfAny(['*', '?', '[']);
        var literal = wild >= 0 ? first[..wild] : first;
        return (rel, split) =>
        {
            // Cheap refusal first: the literal start of the pattern's first segment.
            if (!rel.StartsWith(literal, StringComparison.Ordinal))
            {
                return false;
            }

            var parts = split();
            if (parts.Length < segments.Length)
            {
                return false;
            }

            for (var k = 0; k < segments.Length; k++)
            {
                if (!segments[k].IsMatch(parts[k]))
                {
                    return false;
                }
            }

            return true;
        };
    }

    private static Regex GlobRegex(string glob)
    {
        var pattern = "^" + Regex.Escape(glob).Replace(@"\*", "[^/]*", StringComparison.Ordinal).Replace(@"\?", "[^/]", StringComparison.Ordinal).Replace(@"\[", "[", StringComparison.Ordinal).Replace(@"\]", "]", StringComparison.Ordinal) + "$";
        return new Regex(pattern, RegexOptions.CultureInvariant);
    }

    private static bool SameBytes(string a, string b, Dictionary<string, byte[]> hashes) => Hash(a, hashes).AsSpan().SequenceEqual(Hash(b, hashes));

    private static byte[] Hash(string path, Dictionary<string, byte[]> hashes)
    {
        if (!hashes.TryGetValue(path, out var hash))
        {
            using var stream = File.OpenRead(path);
            hash = SHA256.HashData(stream);
            hashes[path] = hash;
        }

        return hash;
    }
}
