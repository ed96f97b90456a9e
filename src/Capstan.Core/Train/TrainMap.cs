using System.Globalization;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;

namespace Capstan.Core.Train;

/// <summary>A group of wikis the train moves as one (<c>dblists/GROUP.dblist</c>).</summary>
public sealed record TrainGroup(string Name, IReadOnlyList<string> Wikis, string File)
{
    /// <summary>The line of the list each wiki is on, in the order of <see cref="Wikis"/>.</summary>
    public IReadOnlyList<int> Lines { get; init; } = [];

    /// <summary>Where a wiki of the group is listed.</summary>
    public SourceLocation Where(int index) => new(File, index < Lines.Count ? Lines[index] : 1, 1);
}

/// <summary>Where the train is: each group of wikis and the version(s) its wikis run, from the config tree.</summary>
public sealed record TrainMap(TrainSettings Settings, IReadOnlyList<TrainGroup> Groups, WikiVersions Versions, string WikiVersionsFile)
{
    /// <summary>
    /// Reads the train of a farm from its config tree: the wikiversions file and one dblist per group (one wiki per
    /// line; '#' starts a comment). Throws <see cref="UserInputException"/> naming a missing file and the setting.
    /// </summary>
    public static TrainMap Load(FarmModel model, IRepoFiles files)
    {
        var settings = model.Train ?? throw new UserInputException("capstan.yaml has no train: section (wikiversions, dblists and the groups the train moves through)");
        var configTree = model.Image.Config ?? throw new UserInputException("the train needs the config tree: set image.config in capstan.yaml");
        var versionsFile = settings.WikiVersionsPath(configTree);
        if (!files.FileExists(versionsFile))
        {
            throw new UserInputException($"{versionsFile} does not exist ({settings.Location}: train.wikiversions)");
        }

        var groups = new List<TrainGroup>();
        foreach (var name in settings.Groups)
        {
            var file = settings.DblistPath(configTree, name);
            if (!files.FileExists(file))
            {
                throw new UserInputException($"{file} does not exist: the list of group '{name}' ({settings.Location}: train.groups)");
            }

            var entries = ReadDblist(files.ReadText(file));
            if (entries.FirstOrDefault(e => !WikiVersions.IsWiki(e.Wiki)) is { Wiki: not null } bad)
            {
                throw new UserInputException($"{file}:{bad.Line}: '{FreeText.Printable(bad.Wiki)}' is not a wiki name (a database name: lower-case letters, digits and '_', at most 64)");
            }

            groups.Add(new TrainGroup(name, [.. entries.Select(e => e.Wiki)], file) { Lines = [.. entries.Select(e => e.Line)] });
        }

        return new TrainMap(settings, groups, WikiVersions.Parse(files.ReadText(versionsFile), versionsFile), versionsFile);
    }

    /// <summary>
    /// The train's problems as diagnostics (<c>capstan validate</c>): files that cannot be read, a version not in the
    /// image, a wiki in no group or in two. Empty for a farm without a train.
    /// </summary>
    public static IReadOnlyList<Diagnostic> Check(FarmModel model, IRepoFiles files)
    {
        if (model.Train is not { } train)
        {
            return [];
        }

        try
        {
            return [.. Load(model, files).Problems([.. model.Image.Sources.Select(s => s.Version)]).Select(p => new Diagnostic(Severity.Error, p.Where, p.Message))];
        }
        catch (UserInputException ex)
        {
            return [new Diagnostic(Severity.Error, train.Location, ex.Message)];
        }
    }

    /// <summary>The wikis of a dblist with their lines: one per line, blank lines and '#' comments left out.</summary>
    public static IReadOnlyList<(string Wiki, int Line)> ReadDblist(string text) =>
        [.. text.Split('\n').Select((l, i) => ((l.IndexOf('#', StringComparison.Ordinal) is var hash and >= 0 ? l[..hash] : l).Trim(), i + 1)).Where(e => e.Item1.Length > 0)];

    /// <summary>The versions a group's wikis run, newest first, with how many wikis run each.</summary>
    public IReadOnlyList<(string Version, int Wikis)> VersionsOf(TrainGroup group) =>
        [.. group.Wikis.Select(w => Versions.Map.TryGetValue(w, out var v) ? v : "(none)")
            .GroupBy(v => v, StringComparer.Ordinal)
            .Select(g => (g.Key, g.Count()))
            .OrderByDescending(g => g.Key, VersionOrder.Instance)];

    /// <summary>
    /// What is wrong with the train's files against the versions in the image: a version not in it, a wiki in no group
    /// or in two, a wiki listed in a group but missing from wikiversions. Empty when all is well.
    /// </summary>
    public IReadOnlyList<(SourceLocation Where, string Message)> Problems(IReadOnlyCollection<string> imageVersions)
    {
        var problems = new List<(SourceLocation, string)>();
        foreach (var (version, wikis) in Versions.Map.GroupBy(p => p.Value, StringComparer.Ordinal).Select(g => (g.Key, g.Select(p => p.Key).ToList())))
        {
            if (!imageVersions.Contains(version))
            {
                problems.Add((new SourceLocation(WikiVersionsFile, Versions.LineOf(wikis[0]), 1), $"{version} (run by {Sample(wikis)}) is not in the image (image.sources: {string.Join(", ", imageVersions)})"));
            }
        }

        var groupOf = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var group in Groups)
        {
            foreach (var (wiki, index) in group.Wikis.Select((w, i) => (w, i)))
            {
                if (groupOf.TryGetValue(wiki, out var other))
                {
                    problems.Add((group.Where(index), $"{wiki} is also in group {other}: every wiki belongs to exactly one group"));
                }
                else
                {
                    groupOf[wiki] = group.Name;
                }

                if (!Versions.Map.ContainsKey(wiki))
                {
                    problems.Add((group.Where(index), $"{wiki} has no version in {WikiVersionsFile}"));
                }
            }
        }

        var orphans = Versions.Map.Keys.Where(w => !groupOf.ContainsKey(w)).ToList();
        if (orphans.Count > 0)
        {
            problems.Add((new SourceLocation(WikiVersionsFile, Versions.LineOf(orphans[0]), 1), $"{Sample(orphans)} {(orphans.Count == 1 ? "is" : "are")} in no group (train.groups: {string.Join(", ", Settings.Groups)})"));
        }

        return problems;
    }

    private static string Sample(IReadOnlyList<string> wikis) =>
        string.Join(", ", wikis.Take(3)) + (wikis.Count > 3 ? string.Create(CultureInfo.InvariantCulture, $" and {wikis.Count - 3} more") : string.Empty);
}

/// <summary>MediaWiki versions in release order: <c>php-1.9</c> before <c>php-1.10</c>, by their numeric parts.</summary>
public sealed class VersionOrder : IComparer<string>
{
    /// <summary>The one instance.</summary>
    public static VersionOrder Instance { get; } = new();

    /// <inheritdoc/>
    public int Compare(string? x, string? y)
    {
        var a = Parts(x ?? string.Empty);
        var b = Parts(y ?? string.Empty);
        for (var i = 0; i < Math.Min(a.Count, b.Count); i++)
        {
            var c = a[i] is long na && b[i] is long nb ? na.CompareTo(nb) : string.CompareOrdinal(a[i].ToString(), b[i].ToString());
            if (c != 0)
            {
                return c;
            }
        }

        return a.Count.CompareTo(b.Count);
    }

    private static List<object> Parts(string version) =>
        [.. System.Text.RegularExpressions.Regex.Matches(version, "[0-9]+|[^0-9.\\-]+")
            .Select(m => long.TryParse(m.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? (object)n : m.Value)];
}
