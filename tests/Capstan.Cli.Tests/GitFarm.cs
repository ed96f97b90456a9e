using System.Diagnostics;

namespace Capstan.Cli.Tests;

/// <summary>
/// The example farm with its config tree made a git repository (a deploy branch 'main' following 'upstream'), and one
/// commit on upstream not yet deployed: what <c>capstan backport</c> ships.
/// </summary>
internal static class GitFarm
{
    /// <summary>Runs git in <paramref name="dir"/> (no shell) and returns its trimmed output; fails the test when git fails.</summary>
    public static string Git(string dir, params string[] args)
    {
        var start = new ProcessStartInfo("git") { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"git {string.Join(' ', args)}: {error.Result}");
        return output.Trim();
    }

    /// <summary>Makes <paramref name="repo"/>'s config tree a repository and returns it with the commit waiting on upstream.</summary>
    public static (string Config, string Commit) WithConfigCommit(string repo)
    {
        var config = Path.Combine(repo, "mediawiki-config");
        Git(config, "init", "-q", "-b", "main");
        Git(config, "config", "user.name", "Deployer");
        Git(config, "config", "user.email", "deployer@example.org");
        Git(config, "add", "-A");
        Git(config, "commit", "-q", "-m", "Base");
        Git(config, "branch", "upstream");
        Git(config, "branch", "-q", "--set-upstream-to=upstream");
        Git(config, "checkout", "-q", "upstream");
        File.AppendAllText(Path.Combine(config, "wmf-config", "InitialiseSettings.php"), "// raise the upload limit\n");
        Git(config, "commit", "-q", "-am", "Raise the upload limit");
        var commit = Git(config, "rev-parse", "HEAD");
        Git(config, "checkout", "-q", "main");
        return (config, commit);
    }
}
