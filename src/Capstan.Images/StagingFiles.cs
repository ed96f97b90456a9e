using System.Runtime.InteropServices;

namespace Capstan.Images;

/// <summary>
/// File operations of prep on the staging directory that never follow a symbolic link: lstat, replace a link or a file
/// by a directory, remove, hard link, set a mode, and the check that a path stays under the root.
/// </summary>
internal static class StagingFiles
{
    internal static bool FilesEqual(string a, string b)
    {
        var fa = new FileInfo(a);
        var fb = new FileInfo(b);
        if (!fa.Exists || !fb.Exists || fa.Length != fb.Length)
        {
            return false;
        }

        return File.ReadAllBytes(a).AsSpan().SequenceEqual(File.ReadAllBytes(b));
    }

    /// <summary>Makes every ancestor of <paramref name="path"/> a real directory inside <paramref name="root"/> (replacing links and files).</summary>
    internal static void EnsureParents(string root, string path)
    {
        var current = root;
        var parts = path.Split('/');
        for (var i = 0; i < parts.Length - 1; i++)
        {
            current = Path.Combine(current, parts[i]);
            var info = Lstat(current);
            if (info is not null && (info.LinkTarget is not null || info is FileInfo))
            {
                info.Delete();
                info = null;
            }

            if (info is null)
            {
                Directory.CreateDirectory(current);
            }
        }
    }

    /// <summary>
    /// What stands at an image path under the root, found one component at a time without following any link: null when
    /// nothing does, or when an ancestor is not a real directory (a path below a link or a file is not in the tree).
    /// </summary>
    internal static FileSystemInfo? LstatInside(string root, string path)
    {
        var current = root;
        var parts = path.Split('/');
        for (var i = 0; i < parts.Length; i++)
        {
            current = Path.Combine(current, parts[i]);
            var info = Lstat(current);
            if (i == parts.Length - 1 || info is null)
            {
                return info;
            }

            if (info is not DirectoryInfo || info.LinkTarget is not null)
            {
                return null;
            }
        }

        return null;
    }

    /// <summary>The full path of a regular file (not a link) at an image path, reached without following links, or null.</summary>
    internal static string? ResolveFile(string root, string path) =>
        LstatInside(root, path) is FileInfo { LinkTarget: null } file ? file.FullName : null;

    /// <summary>
    /// Replaces a file of prep's own with new text: written beside it (a new file, never opened through a link) and
    /// renamed over it, so a link standing at the name is replaced, not followed.
    /// </summary>
    internal static async Task ReplaceAsync(string full, string text, CancellationToken cancellationToken)
    {
        var temp = full + ".capstan-" + Guid.NewGuid().ToString("N")[..8];
        await using (var output = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
        {
            await output.WriteAsync(System.Text.Encoding.UTF8.GetBytes(text), cancellationToken);
        }

        File.Move(temp, full, overwrite: true);
    }

    internal static FileSystemInfo? Lstat(string full)
    {
        var dir = new DirectoryInfo(full);
        if (dir.Exists || dir.LinkTarget is not null)
        {
            return dir.LinkTarget is not null ? new FileInfo(full) is { LinkTarget: not null } link ? link : dir : dir;
        }

        var file = new FileInfo(full);
        return file.Exists || file.LinkTarget is not null ? file : null;
    }

    internal static void Remove(string full)
    {
        switch (Lstat(full))
        {
            case DirectoryInfo { LinkTarget: null } dir:
                dir.Delete(recursive: true);
                break;
            case { } other:
                other.Delete();
                break;
        }
    }

    /// <summary>The full path of an image path under the root (checked to stay inside it).</summary>
    internal static string Inside(string root, string path)
    {
        var full = Path.GetFullPath(Path.Combine(root, path));
        return full.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal) || full == root
            ? full
            : throw new ImageException($"'{path}' resolves outside {root}; refusing it");
    }

    internal static void SetMode(string path, UnixFileMode mode)
    {
        if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(path) & (UnixFileMode)0b111_111_111) != mode)
        {
            File.SetUnixFileMode(path, mode);
        }
    }

    [DllImport("libc", EntryPoint = "link", SetLastError = true)]
    internal static extern int Link([MarshalAs(UnmanagedType.LPUTF8Str)] string oldPath, [MarshalAs(UnmanagedType.LPUTF8Str)] string newPath);
}
