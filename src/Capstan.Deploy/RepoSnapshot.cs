namespace Capstan.Deploy;

/// <summary>Files of a repo as they were, to put back after a change that did not go through.</summary>
public sealed class RepoSnapshot
{
    private readonly List<(string Path, string? Text)> _files;

    private RepoSnapshot(List<(string, string?)> files) => _files = files;

    /// <summary>The files (relative to <paramref name="root"/>) as they are now; a missing one is restored by removing it.</summary>
    public static RepoSnapshot Take(string root, IEnumerable<string> paths) =>
        new([.. paths.Distinct(StringComparer.Ordinal).Select(p => Path.Combine(root, p)).Select(p => (p, File.Exists(p) ? File.ReadAllText(p) : null))]);

    /// <summary>Puts every file back as it was.</summary>
    public void Restore()
    {
        foreach (var (path, text) in _files)
        {
            if (text is null)
            {
                File.Delete(path);
            }
            else
            {
                WriteFile(path, text);
            }
        }
    }

    /// <summary>Writes a file whole (a temporary file renamed over it), so a reader never sees half of it.</summary>
    public static void WriteFile(string path, string text)
    {
        var temp = path + ".tmp";
        File.WriteAllText(temp, text);
        File.Move(temp, path, overwrite: true);
    }
}
