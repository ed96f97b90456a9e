namespace Capstan.Cli.Tests;

/// <summary>
/// The rendered example farm is checked in under tests/golden/wikifarm, one file per object. A change in output
/// shows up here as a diff to review.
/// </summary>
public sealed class GoldenRenderTests
{
    private const string Regenerate = "./capstan render --repo examples/wikifarm --state-file examples/wikifarm/state.yaml --out tests/golden/wikifarm";

    [Fact]
    public void Rendered_example_farm_matches_the_golden_files()
    {
        using var temp = new TempDir();
        var outDir = Path.Combine(temp.Path, "out");
        var result = CliRunner.Run("render", "--repo", "examples/wikifarm", "--state-file", "examples/wikifarm/state.yaml", "--out", outDir);
        Assert.True(result.ExitCode == 0, result.Err);

        var golden = Path.Combine(CliRunner.Root, "tests", "golden", "wikifarm");
        var expected = Files(golden);
        var actual = Files(outDir);
        var missing = expected.Keys.Except(actual.Keys).ToList();
        var extra = actual.Keys.Except(expected.Keys).ToList();
        var changed = expected.Keys.Intersect(actual.Keys).Where(k => expected[k] != actual[k]).ToList();
        Assert.True(
            missing.Count == 0 && extra.Count == 0 && changed.Count == 0,
            $"render output differs from the golden files (regenerate with `{Regenerate}` and review the diff):\n" +
            string.Join("\n", missing.Select(f => "  no longer rendered: " + f)
                .Concat(extra.Select(f => "  newly rendered:     " + f))
                .Concat(changed.Select(f => "  changed:            " + f + "\n" + FirstDifference(expected[f], actual[f])))));
        Assert.True(expected.Count > 100, "the golden tree looks truncated");
    }

    private static Dictionary<string, string> Files(string root) =>
        Directory.Exists(root)
            ? Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
                .ToDictionary(f => Path.GetRelativePath(root, f).Replace('\\', '/'), File.ReadAllText, StringComparer.Ordinal)
            : [];

    private static string FirstDifference(string expected, string actual)
    {
        var e = expected.Split('\n');
        var a = actual.Split('\n');
        for (var i = 0; i < Math.Max(e.Length, a.Length); i++)
        {
            var el = i < e.Length ? e[i] : "<end>";
            var al = i < a.Length ? a[i] : "<end>";
            if (el != al)
            {
                return $"    line {i + 1}:\n    - {el}\n    + {al}";
            }
        }

        return string.Empty;
    }
}
