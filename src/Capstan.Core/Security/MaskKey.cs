using System.Security.Cryptography;

namespace Capstan.Core.Security;

/// <summary>
/// The repo's key for Secret fingerprints (<c>.capstan/mask.key</c>, 0600 in a 0700 directory, made on first use): a
/// diff shows that a value changed, and nobody without the key can test a guessed value against the fingerprint.
/// </summary>
public static class MaskKey
{
    /// <summary>The key file under the repo's <c>.capstan</c> directory.</summary>
    public const string FileName = "mask.key";

    /// <summary>The repo's key, made when the repo has none yet (or when the file holds no key, or is a link).</summary>
    public static byte[] ForRepo(string repoRoot)
    {
        var directory = Path.Combine(repoRoot, ".capstan");
        PrivateFiles.Directory(directory);
        var path = Path.Combine(directory, FileName);
        for (var attempt = 0; ; attempt++)
        {
            if (Read(path) is { } key)
            {
                return key;
            }

            key = RandomNumberGenerator.GetBytes(32);
            var temp = path + ".tmp-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
            using (var stream = new FileStream(temp, PrivateFiles.Options(FileMode.CreateNew, FileAccess.Write)))
            {
                stream.Write(System.Text.Encoding.ASCII.GetBytes(Convert.ToBase64String(key) + "\n"));
            }

            try
            {
                // Two commands that start at once: the first key written wins, and both use it.
                File.Move(temp, path, overwrite: attempt > 0);
                return key;
            }
            catch (IOException) when (File.Exists(path) && attempt == 0)
            {
                File.Delete(temp);
            }
        }
    }

    private static byte[]? Read(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists || info.LinkTarget is not null)
        {
            return null;
        }

        PrivateFiles.Narrow(path);
        try
        {
            var key = Convert.FromBase64String(File.ReadAllText(path).Trim());
            return key.Length >= 16 ? key : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
