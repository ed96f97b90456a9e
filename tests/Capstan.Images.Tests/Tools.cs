using System.Diagnostics;
using System.Text;
using Capstan.Core.Config;

namespace Capstan.Images.Tests;

/// <summary>Helpers: outside tools run as argv arrays, temporary trees, builds.</summary>
internal static class Tools
{
    public static (int Code, string Out, string Err) Run(string tool, params string[] args) => RunIn(null, null, tool, args);

    public static (int Code, string Out, string Err) RunIn(string? directory, IReadOnlyDictionary<string, string>? environment, string tool, params string[] args)
    {
        var psi = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (directory is not null)
        {
            psi.WorkingDirectory = directory;
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[key] = value;
        }

        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        Process process;
        try
        {
            process = Process.Start(psi)!;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException($"{tool} is not installed ({ex.Message}); .ci/run installs skopeo, umoci, docker-registry, php-cli and mediawiki with apt-get", ex);
        }

        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            process.WaitForExit();
            return (process.ExitCode, stdout.Result, stderr.Result);
        }
    }

    public static string Temp(string name)
    {
        var path = Path.Combine(Path.GetTempPath(), $"capstan-img-{name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>A small MediaWiki-shaped tree with the awkward cases: long paths, links, an executable, unicode, an empty dir.</summary>
    public static string Tree(string root, string flavour = "")
    {
        void Write(string rel, string text)
        {
            var path = Path.Combine(root, rel);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, text);
        }

        Write("index.php", "<?php // index " + flavour);
        Write("includes/Setup.php", "<?php // setup " + flavour);
        Write("includes/deep/" + string.Join('/', Enumerable.Repeat("segment-of-a-long-path", 12)) + "/File.php", "<?php // deep");
        Write("vendor/composer/autoload_real.php", "<?php // vendor");
        Write("languages/i18n/en.json", "{\"a\": \"b\"}");
        Write("languages/i18n/fr.json", "{\"a\": \"é ü 中\"}");
        Write("extensions/AbuseFilter/extension.json", "{}");
        Write("extensions/Wikibase/repo/x.php", "<?php");
        Write("extensions/Ünicode/extension.json", "{}");
        Write("skins/Vector/skin.json", "{}");
        Write("maintenance/run.sh", "#!/bin/sh\necho hi\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(Path.Combine(root, "maintenance/run.sh"), (UnixFileMode)0b111_101_101);
        }
        Directory.CreateDirectory(Path.Combine(root, "cache", "empty"));
        File.CreateSymbolicLink(Path.Combine(root, "LocalSettings.php"), "/etc/mediawiki/LocalSettings.php");
        File.CreateSymbolicLink(Path.Combine(root, "includes", "alias.php"), "Setup.php");
        File.CreateSymbolicLink(Path.Combine(root, "includes", "long-link"), string.Join('/', Enumerable.Repeat("..", 60)) + "/target");
        return root;
    }

    public static BuildInput Input(IReadOnlyList<ImageSource> sources, string? config = null, long epoch = 1_700_000_000, ImageBuildSpec? spec = null) =>
        new(spec ?? ImageBuildSpec.Default, sources, config, epoch, null);

    public static string Sha256Tree(string root)
    {
        var sb = new StringBuilder();
        foreach (var path in Directory.EnumerateFileSystemEntries(root, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }).Order(StringComparer.Ordinal))
        {
            var rel = Path.GetRelativePath(root, path);
            var info = new FileInfo(path);
            if (info.LinkTarget is { } target)
            {
                sb.Append(rel).Append(" -> ").Append(target).Append('\n');
            }
            else if (File.Exists(path))
            {
                sb.Append(rel).Append(' ').Append(Digests.Of(File.ReadAllBytes(path))).Append(' ').Append((info.UnixFileMode & UnixFileMode.UserExecute) != 0 ? "x" : "-").Append('\n');
            }
            else
            {
                sb.Append(rel).Append("/\n");
            }
        }

        return sb.ToString();
    }
}
