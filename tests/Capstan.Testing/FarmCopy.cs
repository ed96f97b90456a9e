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

    /// <summary>
    /// Writes an environment's own secrets file into a repo, as <c>capstan env secrets init NAME</c> does: a fresh value
    /// for every key production's secrets have (never production's values, which an environment may not carry).
    /// </summary>
    public static void WriteEnvironmentSecrets(string repo, string environment)
    {
        var files = new Core.Config.DirectoryRepoFiles(repo);
        var (model, _) = Core.Config.RepoLoader.Load(files);
        var production = Core.Environments.EnvironmentSecrets.Production(model, files) ?? throw new InvalidOperationException($"{repo} has no production secrets");
        var backends = model.Backends is { } catalog ? Core.Environments.EnvironmentBackends.Resolve(catalog, model.EnvironmentPolicy.Backends, environment) : null;
        var path = Path.Combine(repo, Core.Environments.EnvironmentSecrets.PathOf(environment));
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, Core.Environments.EnvironmentSecrets.Generate(production, environment, Core.Environments.EnvironmentSecrets.DatabaseHost(backends)));
    }
}
