using System.Diagnostics;
using Capstan.Core.Diagnostics;

namespace Capstan.Deploy.Backport;

/// <summary>A git command failed in a tree; its stderr says why.</summary>
public sealed class GitException(string message) : CapstanException(RefusalKind.Failure, message);

/// <summary>
/// A code or config tree that is a git repository of its own: the checkout an image is built from. Git runs as a
/// process with an argument list (never through a shell), in the tree, with no prompt and no user configuration
/// beyond the repository's own.
/// </summary>
public sealed class GitTree
{
    private GitTree(string name, string path)
    {
        Name = name;
        Path = path;
    }

    /// <summary>The tree's name in the image: a version (<c>php-1.44</c>) or <c>config</c>.</summary>
    public string Name { get; }

    /// <summary>The tree's directory (the top of its repository).</summary>
    public string Path { get; }

    /// <summary>
    /// The tree at <paramref name="path"/> when it is the top of a git repository, else null (a tree inside another
    /// repository, such as the deployment repo itself, is not one: its commits are not the tree's).
    /// </summary>
    public static async Task<GitTree?> OpenAsync(string name, string path, CancellationToken cancellationToken)
    {
        var full = System.IO.Path.GetFullPath(path);
        if (!Directory.Exists(full))
        {
            return null;
        }

        // The top of its repository: no prefix below the top (so a tree reached through a symbolic link counts too).
        var (code, prefix, _) = await RunAsync(full, ["rev-parse", "--show-prefix"], cancellationToken);
        return code == 0 && prefix.Trim().Length == 0 ? new GitTree(name, full) : null;
    }

    /// <summary>The full hash of a commit the tree knows, or null.</summary>
    public async Task<string?> ResolveAsync(string commit, CancellationToken cancellationToken)
    {
        if (commit.StartsWith('-') || commit.Length == 0)
        {
            return null;
        }

        var (code, output, _) = await RunAsync(Path, ["rev-parse", "--verify", "--quiet", commit + "^{commit}"], cancellationToken);
        return code == 0 ? output.Trim() : null;
    }

    /// <summary>The commits of a range <c>A..B</c>, oldest first.</summary>
    public async Task<IReadOnlyList<string>> RangeAsync(string range, CancellationToken cancellationToken) =>
        [.. (await GitAsync(["rev-list", "--reverse", "--end-of-options", range], cancellationToken)).Split('\n', StringSplitOptions.RemoveEmptyEntries)];

    /// <summary>The upstream branch the tree follows (<c>@{upstream}</c>), or null when it has none.</summary>
    public async Task<string?> UpstreamAsync(CancellationToken cancellationToken)
    {
        var (code, output, _) = await RunAsync(Path, ["rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}"], cancellationToken);
        return code == 0 ? output.Trim() : null;
    }

    /// <summary>True when <paramref name="ancestor"/> is reachable from <paramref name="commit"/>.</summary>
    public async Task<bool> IsAncestorAsync(string ancestor, string commit, CancellationToken cancellationToken) =>
        (await RunAsync(Path, ["merge-base", "--is-ancestor", ancestor, commit], cancellationToken)).Code == 0;

    /// <summary>True when HEAD already holds the change of <paramref name="commit"/>: the commit itself, or one with the same patch.</summary>
    public async Task<bool> HeadHasAsync(string commit, CancellationToken cancellationToken) =>
        await IsAncestorAsync(commit, "HEAD", cancellationToken)
        || (await RunAsync(Path, ["cherry", "HEAD", commit, commit + "~1"], cancellationToken)) is { Code: 0 } cherry && cherry.Output.TrimStart().StartsWith('-');

    /// <summary>The commit HEAD is at.</summary>
    public async Task<string> HeadAsync(CancellationToken cancellationToken) => (await GitAsync(["rev-parse", "HEAD"], cancellationToken)).Trim();

    /// <summary>The files the work tree changed or does not track (empty when it is clean).</summary>
    public async Task<string> DirtyAsync(CancellationToken cancellationToken) => (await GitAsync(["status", "--porcelain"], cancellationToken)).Trim();

    /// <summary>A commit's short hash and subject.</summary>
    public async Task<string> DescribeAsync(string commit, CancellationToken cancellationToken) =>
        (await GitAsync(["log", "-1", "--format=%h %s", commit], cancellationToken)).Trim();

    /// <summary>
    /// Puts a commit's change (or its revert) on HEAD. A conflict aborts, leaving HEAD and the work tree as they were, and
    /// returns the conflicting files; null when it applied.
    /// </summary>
    public async Task<string?> ApplyAsync(string commit, bool revert, CancellationToken cancellationToken)
    {
        var (code, _, error) = await RunAsync(Path, revert ? ["revert", "--no-edit", commit] : ["cherry-pick", "-x", commit], cancellationToken);
        if (code == 0)
        {
            return null;
        }

        var conflicts = (await RunAsync(Path, ["diff", "--name-only", "--diff-filter=U"], cancellationToken)).Output.Trim().Replace('\n', ' ');
        await RunAsync(Path, [revert ? "revert" : "cherry-pick", "--abort"], cancellationToken);
        return conflicts.Length > 0 ? conflicts : error.Trim().Split('\n')[0];
    }

    /// <summary>Moves HEAD and the work tree back to <paramref name="commit"/> (what a failed backport leaves).</summary>
    public Task ResetAsync(string commit, CancellationToken cancellationToken) => GitAsync(["reset", "--hard", "--quiet", commit], cancellationToken);

    private async Task<string> GitAsync(IReadOnlyList<string> args, CancellationToken cancellationToken)
    {
        var (code, output, error) = await RunAsync(Path, args, cancellationToken);
        return code == 0 ? output : throw new GitException($"git {string.Join(' ', args)} in {Path} failed: {error.Trim().Split('\n')[0]}");
    }

    private static async Task<(int Code, string Output, string Error)> RunAsync(string directory, IReadOnlyList<string> args, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo("git")
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("core.hooksPath=/dev/null");
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["GIT_TERMINAL_PROMPT"] = "0";
        start.Environment["GIT_EDITOR"] = "true";
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new GitException("git could not be started");
        }
        catch (System.ComponentModel.Win32Exception)
        {
            throw new PreflightException(["git is not installed: a backport reads the trees' git history (Debian: apt-get install git)"]);
        }

        using (process)
        {
            process.StandardInput.Close();
            var output = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
            var error = process.StandardError.ReadToEndAsync(CancellationToken.None);
            try
            {
                await process.WaitForExitAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                // An interrupted git is stopped and waited for, so what runs next (a reset) finds no lock of its.
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync(CancellationToken.None);
                throw;
            }

            return (process.ExitCode, await output, await error);
        }
    }
}
