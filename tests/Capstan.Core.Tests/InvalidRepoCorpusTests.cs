using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Rendering;
using Capstan.Core.State;

namespace Capstan.Core.Tests;

/// <summary>
/// Every directory under <c>invalid/</c> is a broken deployment repo; its <c>expected.txt</c> holds the exact error
/// lines (file:line:column: error: message) that loading, layering and rendering it must report. Run with
/// CAPSTAN_UPDATE_EXPECTED=1 to rewrite them after a deliberate change of wording, then review the diff.
/// </summary>
public sealed class InvalidRepoCorpusTests
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var dir in Directory.GetDirectories(RepoPaths.InvalidCorpus).Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetFileName(dir));
        }

        return data;
    }

    [Fact]
    public void Corpus_has_at_least_twenty_cases()
    {
        Assert.True(Cases().Count >= 20, $"only {Cases().Count} invalid repos");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Broken_repo_fails_with_its_own_message_and_location(string name)
    {
        var dir = Path.Combine(RepoPaths.InvalidCorpus, name);
        var actual = Errors(dir);
        var expectedFile = Path.Combine(dir, "expected.txt");
        if (Environment.GetEnvironmentVariable("CAPSTAN_UPDATE_EXPECTED") == "1")
        {
            File.WriteAllText(expectedFile, string.Join("\n", actual) + "\n");
        }

        Assert.True(File.Exists(expectedFile), $"{name}: no expected.txt (CAPSTAN_UPDATE_EXPECTED=1 writes it)");
        var expected = File.ReadAllLines(expectedFile).Where(l => l.Length > 0).ToList();
        Assert.NotEmpty(actual);
        Assert.Equal(expected, actual);
    }

    /// <summary>The error lines a repo produces: load, then state, then a render of everything.</summary>
    internal static List<string> Errors(string dir)
    {
        var files = new DirectoryRepoFiles(dir);
        try
        {
            var (model, _) = RepoLoader.Load(files);
            DynamicState? state = null;
            if (files.FileExists("state.yaml"))
            {
                state = DynamicStateFile.Parse(files.ReadText("state.yaml"), "state.yaml", [.. model.DatacenterNames]);
            }

            new FarmRenderer(model, files).Render(new RenderSelection(), state);
            return [];
        }
        catch (RepoValidationException ex)
        {
            return [.. ex.Diagnostics.Where(d => d.Severity == Severity.Error).Select(d => d.ToString())];
        }
    }
}
