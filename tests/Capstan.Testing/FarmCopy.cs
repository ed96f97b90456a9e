namespace Capstan.Testing;

/// <summary>Copies a deployment repo (the example farm) without its local state, for tests and benchmarks that write.</summary>
public static class FarmCopy
{
    /// <summary>Copies every file of <paramref name="farm"/> except <c>.capstan/</c> into <paramref name="into"/>; returns <paramref name="into"/>.</summary>
    public static string To(string farm, string into)
    {
        foreach (var file in Directory.EnumerateFiles(farm, "*", SearchOption.AllDirectories).Where(f => !f.Contains(".capstan", StringComparison.Ordinal)))
        {
            var target = Path.Combine(into, Path.GetRelativePath(farm, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }

        return into;
    }
}
