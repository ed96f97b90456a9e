using System.Globalization;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;

namespace Capstan.Images;

/// <summary>
/// What an image is built from in a repo: the code trees (given, else <c>image.sources</c>), the config tree (given,
/// else <c>image.config</c>), the epoch (given, else <c>SOURCE_DATE_EPOCH</c>, else <c>image.epoch</c>, else 0) and the
/// commit the trees are checked out at.
/// </summary>
public static class RepoBuildInput
{
    /// <summary>
    /// The build input of a repo. Relative paths of capstan.yaml are the repo root's; <paramref name="sources"/> and
    /// <paramref name="configDirectory"/>, when given, are absolute already.
    /// </summary>
    public static BuildInput For(
        ImageBuildSpec spec, string repoRoot, IReadOnlyList<ImageSource>? sources, string? configDirectory, long? epoch, Func<string, string?> environment, bool requireSources = true)
    {
        var trees = sources is { Count: > 0 }
            ? sources
            : spec.Sources.Select(s => s with { Path = Path.GetFullPath(Path.Combine(repoRoot, s.Path)) }).ToList();
        foreach (var source in trees.Where(s => !Directory.Exists(s.Path)))
        {
            throw new UserInputException($"code tree '{source.Path}' ({source.Version}) does not exist");
        }

        if (requireSources && trees.Count == 0)
        {
            throw new UserInputException("no code tree to build: pass --source VERSION=DIR or set image.sources in capstan.yaml");
        }

        var configDir = configDirectory ?? (spec.Config is { } c ? Path.GetFullPath(Path.Combine(repoRoot, c)) : null);
        if (configDir is not null && !Directory.Exists(configDir))
        {
            throw new UserInputException($"config tree '{configDir}' does not exist");
        }

        var epochText = environment("SOURCE_DATE_EPOCH");
        var chosen = epoch ?? (long.TryParse(epochText, NumberStyles.None, CultureInfo.InvariantCulture, out var fromEnv) ? fromEnv : spec.Epoch ?? 0);
        return new BuildInput(spec, trees, configDir, chosen, SourceCommit(configDir ?? trees.FirstOrDefault()?.Path));
    }

    /// <summary>A code tree given as <c>VERSION=DIR</c>, its directory resolved by <paramref name="resolve"/>.</summary>
    public static ImageSource ParseSource(string text, Func<string, string> resolve) =>
        text.Split('=', 2) is [var version, var dir] && version.Length > 0 && dir.Length > 0
            ? new ImageSource(version, resolve(dir))
            : throw new UserInputException($"--source '{text}' must be VERSION=DIR (e.g. php-1.42=/srv/php-1.42)");

    /// <summary>The commit a tree is checked out at, read from its .git (no git process), or null.</summary>
    public static string? SourceCommit(string? directory)
    {
        for (var dir = directory is null ? null : new DirectoryInfo(directory); dir is not null; dir = dir.Parent)
        {
            var head = Path.Combine(dir.FullName, ".git", "HEAD");
            if (!File.Exists(head))
            {
                continue;
            }

            var text = File.ReadAllText(head).Trim();
            if (!text.StartsWith("ref: ", StringComparison.Ordinal))
            {
                return text;
            }

            var refPath = Path.Combine(dir.FullName, ".git", text[5..]);
            if (File.Exists(refPath))
            {
                return File.ReadAllText(refPath).Trim();
            }

            var packed = Path.Combine(dir.FullName, ".git", "packed-refs");
            return File.Exists(packed)
                ? File.ReadLines(packed).Select(l => l.Split(' ')).FirstOrDefault(p => p.Length == 2 && p[1] == text[5..])?[0]
                : null;
        }

        return null;
    }
}
