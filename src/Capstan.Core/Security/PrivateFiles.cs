namespace Capstan.Core.Security;

/// <summary>
/// Directories and files that hold secrets or state (a local cluster's database, the file state store, the mask key):
/// created 0700 and 0600, and an existing directory or file with wider modes is narrowed, so no other local user can
/// read them.
/// </summary>
public static class PrivateFiles
{
    private const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Creates the directory (and its parents) when missing and makes it 0700.</summary>
    public static void Directory(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            System.IO.Directory.CreateDirectory(path);
            return;
        }

        System.IO.Directory.CreateDirectory(path, DirectoryMode);
        if (File.GetUnixFileMode(path) != DirectoryMode)
        {
            File.SetUnixFileMode(path, DirectoryMode);
        }
    }

    /// <summary>Options that create a file 0600 (an existing file keeps its mode: see <see cref="Narrow"/>).</summary>
    public static FileStreamOptions Options(System.IO.FileMode mode, FileAccess access, FileShare share = FileShare.Read)
    {
        var options = new FileStreamOptions { Mode = mode, Access = access, Share = share };
        if (!OperatingSystem.IsWindows() && (access & FileAccess.Write) != 0)
        {
            options.UnixCreateMode = FileMode;
        }

        return options;
    }

    /// <summary>Writes a whole file, created 0600 (an existing one is narrowed to 0600 first).</summary>
    public static async Task WriteAllTextAsync(string path, string text, CancellationToken cancellationToken = default)
    {
        Narrow(path);
        await using var stream = new FileStream(path, Options(System.IO.FileMode.Create, FileAccess.Write));
        await using var writer = new StreamWriter(stream);
        await writer.WriteAsync(text.AsMemory(), cancellationToken);
    }

    /// <summary>
    /// Writes a whole file, created 0600, so that a reader never sees half of it: written beside it under a name of its
    /// own (two writers never share one), then moved over it.
    /// </summary>
    public static void WriteAtomically(string path, string text)
    {
        var temporary = $"{path}.{Guid.NewGuid():N}.new";
        try
        {
            using (var stream = new FileStream(temporary, Options(System.IO.FileMode.CreateNew, FileAccess.Write)))
            {
                stream.Write(System.Text.Encoding.UTF8.GetBytes(text));
            }

            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    /// <summary>Makes an existing file 0600.</summary>
    public static void Narrow(string path)
    {
        if (!OperatingSystem.IsWindows() && File.Exists(path) && File.GetUnixFileMode(path) != FileMode)
        {
            File.SetUnixFileMode(path, FileMode);
        }
    }
}
