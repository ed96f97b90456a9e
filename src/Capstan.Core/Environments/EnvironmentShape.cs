using Capstan.Core.Config;
using Capstan.Core.Diagnostics;

namespace Capstan.Core.Environments;

/// <summary>
/// What an environment of a farm may be, checked before anything is read or written: its datacenters, its groups (and
/// the groups their releases need), its values files, and its name against the farm's namespaces, subsets and labels.
/// </summary>
public static class EnvironmentShape
{
    /// <summary>The groups an environment runs unless told: the web and API groups (debug aside), with their support releases.</summary>
    public static IReadOnlyList<string> DefaultGroups(FarmModel model) =>
        [.. model.Groups.Where(g => g.Traits.Serving == ServingKind.Web && !g.Namespace.Contains("debug", StringComparison.Ordinal)).Select(g => g.Namespace)];

    /// <summary>The project (the <c>app.kubernetes.io/part-of</c> label and the state-store prefix) of an environment.</summary>
    public static string Project(FarmModel production, string name) => $"{production.Project}--{name}";

    /// <summary>
    /// Checks a request's shape and returns the groups it runs (the defaults when none was given); throws
    /// <see cref="UserInputException"/> naming the first thing wrong and what is allowed.
    /// </summary>
    public static IReadOnlyList<string> Check(FarmModel model, string name, IReadOnlyList<string> datacenters, IReadOnlyList<string> requestedGroups, IReadOnlyList<string> valuesFiles)
    {
        foreach (var dc in datacenters)
        {
            if (!model.DatacenterNames.Contains(dc))
            {
                throw new UserInputException($"unknown datacenter '{dc}' (allowed: {string.Join(", ", model.DatacenterNames)})");
            }
        }

        if (datacenters.Count == 0 || datacenters.Distinct(StringComparer.Ordinal).Count() != datacenters.Count)
        {
            throw new UserInputException("an environment needs one datacenter or several different ones (--dc)");
        }

        var groups = requestedGroups.Count > 0 ? requestedGroups : DefaultGroups(model);
        if (groups.FirstOrDefault(g => model.FindGroup(g) is null) is { } unknown)
        {
            throw new UserInputException($"unknown group '{unknown}' (allowed: {string.Join(", ", model.Groups.Select(g => g.Namespace))})");
        }

        foreach (var (group, release) in model.AllReleases().Where(r => groups.Contains(r.Group.Namespace)))
        {
            if (release.Needs.FirstOrDefault(n => !groups.Contains(n.Namespace)) is { } outside)
            {
                throw new UserInputException($"{group.Namespace}/{release.Name} needs {outside}, which is not in the environment: add --group {outside.Namespace}");
            }
        }

        foreach (var path in valuesFiles)
        {
            if (Path.IsPathRooted(path) || path.Split('/', '\\').Contains(".."))
            {
                throw new UserInputException($"values file '{path}' is outside the repo: give a path inside it (such as environments/{name}-extra.yaml), so the environment can be refreshed from the repo alone");
            }
        }

        EnvironmentNames.Check(name, model.Backends is null ? groups : [.. groups, BackendCatalog.Namespace]);
        if (model.Subsets.Any(e => e.Name == name))
        {
            throw new UserInputException($"'{name}' is the name of a release subset in capstan.yaml's subsets:; choose another name for a test environment");
        }

        // The environment's project is the part-of label of its objects: a label value of at most 63 characters.
        if (Project(model, name) is { Length: > 63 } project)
        {
            throw new UserInputException($"environment name '{name}' is {project.Length - 63} character{(project.Length == 64 ? string.Empty : "s")} too long for this farm: the label app.kubernetes.io/part-of={project} would exceed 63 characters");
        }

        if (groups.Select(g => EnvironmentNames.Namespace(name, g)).FirstOrDefault(ns => model.FindGroup(ns) is not null) is { } taken)
        {
            throw new UserInputException($"environment name '{name}' would put a group into {taken}, which is a production namespace; choose another name");
        }

        return groups;
    }
}
