using System.Collections.Concurrent;

namespace Capstan.Images;

/// <summary>
/// Keeps the trees of a build current through the kernel's file notifications (inotify), so that a rebuild looks
/// only at what changed instead of walking every file: it walks each tree once, then re-reads only the paths a
/// notification names (a new directory wholly, a removed one with everything below it). When the notifications
/// overflow, the next walk of that tree is a full one.
/// </summary>
public sealed class ImageWatcher : IDisposable
{
    private readonly Dictionary<string, Tree> _trees = new(StringComparer.Ordinal);

    /// <summary>Starts watching the input's code trees and config tree (each is walked in full on its first use).</summary>
    public ImageWatcher(BuildInput input)
    {
        foreach (var root in input.Sources.Select(s => s.Path).Append(input.ConfigDirectory).OfType<string>().Select(Path.GetFullPath).Distinct(StringComparer.Ordinal))
        {
            if (!Directory.Exists(root))
            {
                throw new ImageException($"tree '{root}' does not exist");
            }

            _trees[root] = new Tree(root);
        }
    }

    /// <summary>How many changed paths are waiting to be read (over every tree).</summary>
    public int Pending => _trees.Values.Sum(t => t.Pending);

    /// <summary>True when a change of this path has been noticed and not yet read.</summary>
    public bool Noticed(string path)
    {
        var full = Path.GetFullPath(path);
        return _trees.Values.Any(t => t.Noticed(full));
    }

    /// <summary>A tree's entries as they are now: the earlier walk with every notified path read again.</summary>
    public IReadOnlyList<(string Rel, FileSystemInfo Info)> Walk(string directory) =>
        _trees.TryGetValue(Path.GetFullPath(directory), out var tree) ? tree.Current() : LayerPlanner.WalkParallel(directory);

    public void Dispose()
    {
        foreach (var tree in _trees.Values)
        {
            tree.Dispose();
        }
    }

    private sealed class Tree : IDisposable
    {
        private readonly string _root;
        private readonly FileSystemWatcher _watcher;
        private readonly ConcurrentDictionary<string, byte> _dirty = new(StringComparer.Ordinal);
        private readonly Dictionary<string, FileSystemInfo> _entries = new(StringComparer.Ordinal);
        private volatile bool _overflowed = true;

        public Tree(string root)
        {
            _root = root;
            // Watching starts before the first walk, so nothing that changes during it is missed.
            _watcher = new FileSystemWatcher(root)
            {
                IncludeSubdirectories = true,
                NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.Attributes,
                InternalBufferSize = 64 * 1024,
            };
            _watcher.Changed += (_, e) => Mark(e.FullPath);
            _watcher.Created += (_, e) => Mark(e.FullPath);
            _watcher.Deleted += (_, e) => Mark(e.FullPath);
            _watcher.Renamed += (_, e) =>
            {
                Mark(e.OldFullPath);
                Mark(e.FullPath);
            };
            _watcher.Error += (_, _) => _overflowed = true;
            _watcher.EnableRaisingEvents = true;
        }

        public int Pending => _dirty.Count + (_overflowed ? 1 : 0);

        public bool Noticed(string fullPath) =>
            fullPath.StartsWith(_root + Path.DirectorySeparatorChar, StringComparison.Ordinal)
            && _dirty.ContainsKey(Path.GetRelativePath(_root, fullPath).Replace(Path.DirectorySeparatorChar, '/'));

        public IReadOnlyList<(string Rel, FileSystemInfo Info)> Current()
        {
            if (_overflowed)
            {
                _overflowed = false;
                _dirty.Clear();
                _entries.Clear();
                foreach (var (rel, info) in LayerPlanner.WalkParallel(_root))
                {
                    _entries[rel] = info;
                }
            }

            foreach (var rel in _dirty.Keys.ToList())
            {
                _dirty.TryRemove(rel, out _);
                Refresh(rel);
            }

            return [.. _entries.Select(kv => (kv.Key, kv.Value))];
        }

        /// <summary>Reads one path again: gone (with all below it), a file or link, or a directory (with all below it).</summary>
        private void Refresh(string rel)
        {
            var path = Path.Combine(_root, rel);
            var prefix = rel + "/";
            foreach (var below in _entries.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).ToList())
            {
                _entries.Remove(below);
            }

            // A file, or a symbolic link (kept as a link, whatever it points at), or a directory, or gone.
            var file = new FileInfo(path);
            FileSystemInfo? info = file.Exists || file.LinkTarget is not null ? file : Directory.Exists(path) ? new DirectoryInfo(path) : null;
            if (info is null)
            {
                _entries.Remove(rel);
                return;
            }

            if (info is DirectoryInfo)
            {
                foreach (var (sub, subInfo) in LayerPlanner.Walk(path))
                {
                    _entries[prefix + sub] = subInfo;
                }
            }

            _entries[rel] = info;
        }

        private void Mark(string fullPath)
        {
            var rel = Path.GetRelativePath(_root, fullPath).Replace(Path.DirectorySeparatorChar, '/');
            if (rel is not "." && !rel.StartsWith("..", StringComparison.Ordinal) && !rel.Split('/').Contains(LayerPlanner.GitDirectory))
            {
                _dirty[rel] = 0;
            }
        }

        public void Dispose() => _watcher.Dispose();
    }
}
