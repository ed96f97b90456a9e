namespace Capstan.Core.Config;

/// <summary>Read access to a deployment repo; paths are relative to its root with '/' separators.</summary>
public interface IRepoFiles
{
    /// <summary>A name for the repo in messages (its directory).</summary>
    string Root { get; }

    /// <summary>True when the file exists.</summary>
    bool FileExists(string path);

    /// <summary>True when the directory exists.</summary>
    bool DirectoryExists(string path);

    /// <summary>The file's text.</summary>
    string ReadText(string path);

    /// <summary>Files directly in a directory whose names match a pattern with '*' wildcards, sorted ordinally.</summary>
    IReadOnlyList<string> ListFiles(string directory, string pattern);
}

/// <summary>A deployment repo on disk.</summary>
public sealed class DirectoryRepoFiles(string root) : IRepoFiles
{
    /// <inheritdoc/>
    public string Root { get; } = Path.GetFullPath(root);

    /// <inheritdoc/>
    public bool FileExists(string path) => File.Exists(Full(path));

    /// <inheritdoc/>
    public bool DirectoryExists(string path) => Directory.Exists(Full(path));

    /// <inheritdoc/>
    public string ReadText(string path) => File.ReadAllText(Full(path));

    /// <inheritdoc/>
    public IReadOnlyList<string> ListFiles(string directory, string pattern)
    {
        var full = Full(directory);
        if (!Directory.Exists(full))
        {
            return [];
        }

        var prefix = directory.Length == 0 || directory == "." ? string.Empty : directory.TrimEnd('/') + "/";
        return [.. Directory.EnumerateFiles(full, pattern, SearchOption.TopDirectoryOnly)
            .Select(f => prefix + Path.GetFileName(f))
            .Order(StringComparer.Ordinal)];
    }

    private string Full(string path) => Path.Combine(Root, path);
}

/// <summary>
/// A repo with some files' text replaced (or added) in memory: what a dry run plans against when a real run would
/// first write those files (the images values file of <c>deploy --build-image</c>), without writing them.
/// </summary>
public sealed class OverlayRepoFiles(IRepoFiles inner, IReadOnlyDictionary<string, string> overrides) : IRepoFiles
{
    /// <inheritdoc/>
    public string Root => inner.Root;

    /// <inheritdoc/>
    public bool FileExists(string path) => overrides.ContainsKey(path) || inner.FileExists(path);

    /// <inheritdoc/>
    public bool DirectoryExists(string path) => inner.DirectoryExists(path) || overrides.Keys.Any(k => k.StartsWith(path.TrimEnd('/') + "/", StringComparison.Ordinal));

    /// <inheritdoc/>
    public string ReadText(string path) => overrides.TryGetValue(path, out var text) ? text : inner.ReadText(path);

    /// <inheritdoc/>
    public IReadOnlyList<string> ListFiles(string directory, string pattern)
    {
        var prefix = directory.Length == 0 || directory == "." ? string.Empty : directory.TrimEnd('/') + "/";
        var added = overrides.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal) && !k.AsSpan(prefix.Length).Contains('/')
                                              && System.IO.Enumeration.FileSystemName.MatchesSimpleExpression(pattern, k.AsSpan(prefix.Length)));
        return [.. inner.ListFiles(directory, pattern).Union(added, StringComparer.Ordinal).Order(StringComparer.Ordinal)];
    }
}
