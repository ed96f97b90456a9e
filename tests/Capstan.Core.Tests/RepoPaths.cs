namespace Capstan.Core.Tests;

/// <summary>Finds the checkout's folders from the test's output directory.</summary>
internal static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    public static string ExampleFarm => Path.Combine(Root, "examples", "wikifarm");

    public static string InvalidCorpus => Path.Combine(Root, "tests", "Capstan.Core.Tests", "invalid");

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Capstan.slnx")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("cannot find the checkout root (Capstan.slnx) above " + AppContext.BaseDirectory);
    }
}
