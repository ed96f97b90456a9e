using System.Collections.Immutable;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Environments;
using Capstan.Core.Rendering;
using Capstan.Core.State;
using Capstan.State;

namespace Capstan.Deploy;

/// <summary>
/// An environment seen as a farm of its own: production's model cut down to the environment's groups and
/// datacenters, under a project of its own (its own dynamic state, lock, journals and plan records in the state
/// store), rendered with the environment's overlay. Deploys, the maintenance gate and a switchover run on it
/// unchanged.
/// </summary>
public static class EnvironmentScope
{
    /// <summary>The project an environment keeps its keys under in the state store: <c>PROJECT--NAME</c>.</summary>
    public static string Project(FarmModel production, string name) => EnvironmentShape.Project(production, name);

    /// <summary>
    /// The environment's model: its groups and datacenters, its project, its namespaces. A group the repo no longer
    /// has, or a release that now needs one outside the environment, is a <see cref="UserInputException"/> naming it.
    /// </summary>
    public static FarmModel Model(FarmModel production, EnvironmentRecord record)
    {
        if (record.Groups.FirstOrDefault(g => production.FindGroup(g) is null) is { } gone)
        {
            throw new UserInputException($"environment {record.Name} runs server group {gone}, which the repo no longer has; delete the environment and create it again");
        }

        foreach (var (group, release) in production.AllReleases().Where(r => record.Groups.Contains(r.Group.Namespace, StringComparer.Ordinal)))
        {
            if (release.Needs.FirstOrDefault(n => !record.Groups.Contains(n.Namespace, StringComparer.Ordinal)) is { } outside)
            {
                throw new UserInputException($"environment {record.Name}: {group.Namespace}/{release.Name} now needs {outside}, which is not in the environment; delete the environment and create it again with --group {outside.Namespace}");
            }
        }

        return Scoped(production, record, Backends(production, record));
    }

    /// <summary>
    /// The environment's backends, through its class's profile (the profile as the repo has it now: a refresh follows
    /// a changed profile); null when the farm declares no backends.
    /// </summary>
    public static EnvironmentBackends? Backends(FarmModel production, EnvironmentRecord record) => Backends(production, record.Name, record.Purpose);

    /// <summary>The backends an environment of a name and purpose class gets.</summary>
    public static EnvironmentBackends? Backends(FarmModel production, string name, string purpose) =>
        production.Backends is { } catalog
            ? EnvironmentBackends.Resolve(catalog, production.EnvironmentPolicy.BackendsOf(production.EnvironmentPolicy.Class(purpose)), name)
            : null;

    /// <summary>The URL of each web-facing group of an environment (its hosts from the class's template), by group.</summary>
    public static IReadOnlyList<(string Group, string Url)> Urls(FarmModel production, EnvironmentRecord record)
    {
        var policy = production.EnvironmentPolicy;
        var template = policy.Classes.FirstOrDefault(c => c.Name == record.Purpose) is { } cls ? policy.HostOf(cls) : policy.Host;
        return [.. record.Groups
            .Where(g => production.FindGroup(g) is { Traits.Serving: ServingKind.Web } group && group.Releases.Any(r => r.Kind == ReleaseKind.MediaWiki && r.Canary is null))
            .Select(g => (g, $"https://{EnvironmentOverlay.UrlHost(template, record.Name, g)}/"))];
    }

    /// <summary>The production namespaces of an environment's groups, and <c>backends</c> when it deploys backends of its own.</summary>
    public static IReadOnlyList<string> Namespaces(FarmModel production, EnvironmentRecord record) =>
        Backends(production, record)?.Items.Any(i => i.Deployed) == true ? [.. record.Groups, BackendCatalog.Namespace] : record.Groups;

    /// <summary>
    /// The model cut to the environment. Its own backends form a group of their own (<c>backends</c>, one manifests
    /// release per backend) that every MediaWiki release of the environment needs, so they are up before it.
    /// </summary>
    private static FarmModel Scoped(FarmModel production, EnvironmentRecord record, EnvironmentBackends? backends)
    {
        var groups = production.Groups.Where(g => record.Groups.Contains(g.Namespace, StringComparer.Ordinal)).ToList();
        var deployed = backends?.Items.Where(i => i.Deployed).ToList() ?? [];
        if (deployed.Count > 0)
        {
            var catalog = backends!.Catalog;
            var releases = deployed.Select(i => new ReleaseSpec(
                i.Production.Name, ReleaseKind.Manifests, Stage.Testservers, [], null, null, [], $"{catalog.OwnDirectory}/{i.Production.Name}", null, i.Production.Fields.Location)).ToList();
            var needs = releases.Select(r => new ReleaseRef(BackendCatalog.Namespace, r.Name)).ToList();
            // The MediaWiki releases need them; support releases (statsd exporters, policies) come up beside them.
            groups = [.. groups.Select(g => g with { Releases = [.. g.Releases.Select(r => r.Kind == ReleaseKind.MediaWiki ? r with { Needs = [.. r.Needs, .. needs] } : r)] })];
            groups.Insert(0, new ServerGroup(BackendCatalog.Namespace, GroupTraits.FromName(BackendCatalog.Namespace), releases, catalog.File, null, SourceLocation.OfFile(catalog.File)));
        }

        return production with
        {
            Project = Project(production, record.Name),
            Environment = record.Name,
            Groups = groups,
            Datacenters = [.. production.Datacenters.Where(d => record.Datacenters.Contains(d.Name, StringComparer.Ordinal))],
            Subsets = [],
            // An environment's state is cloned from production's at create; it is never seeded from the repo.
            StateSeed = null,
        };
    }

    /// <summary>
    /// The overlay of an environment and the files it reads: its values file (<c>environments/NAME.yaml</c>), the files
    /// given at create, then each <c>--set</c> value as a document of its own; and its own secrets file.
    /// </summary>
    public static (IRepoFiles Files, EnvironmentOverlay Overlay) Overlay(FarmModel production, IRepoFiles files, EnvironmentRecord record)
    {
        var values = new List<string>();
        if (files.FileExists($"environments/{record.Name}.yaml"))
        {
            values.Add($"environments/{record.Name}.yaml");
        }

        values.AddRange(record.ValuesFiles);
        if (record.Settings.Count > 0)
        {
            var documents = EnvironmentSettings.Documents(record.Settings);
            // A key given twice: the last value wins, as with any later layer.
            var byName = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (name, text) in documents)
            {
                byName[name] = text;
            }

            files = new OverlayRepoFiles(files, byName);
            values.AddRange(documents.Select(kv => kv.Key).Distinct(StringComparer.Ordinal));
        }

        var secrets = files.FileExists($"environments/{record.Name}.secrets.yaml") ? new[] { $"environments/{record.Name}.secrets.yaml" } : [];
        var policy = production.EnvironmentPolicy;
        var host = policy.Classes.FirstOrDefault(c => c.Name == record.Purpose) is { } cls ? policy.HostOf(cls) : policy.Host;
        return (files, new EnvironmentOverlay(record.Name, values, secrets, Image: record.Image) { Backends = Backends(production, record), HostTemplate = host });
    }

    /// <summary>The renderer of an environment.</summary>
    public static FarmRenderer Renderer(FarmModel production, IRepoFiles files, EnvironmentRecord record) => Scope(production, files, record).Renderer;

    /// <summary>
    /// The environment's model and its renderer, built on that same model (a deploy compares the releases of the two,
    /// so they must be the same objects).
    /// </summary>
    public static (FarmModel Model, FarmRenderer Renderer) Scope(FarmModel production, IRepoFiles files, EnvironmentRecord record)
    {
        var (withSettings, overlay) = Overlay(production, files, record);
        var scoped = Model(production, record);
        return (scoped, new FarmRenderer(scoped, withSettings, overlay));
    }

    /// <summary>The dynamic state service of an environment (its own state, written as production's is).</summary>
    public static DynamicStateService State(FarmModel production, EnvironmentRecord record, IStateStore store, TimeProvider time) =>
        new(store, Project(production, record.Name), record.Datacenters, time);

    /// <summary>
    /// The environment's dynamic state. One that never had any (made before environments had their own) gets a
    /// clone of production's, written to the store; one that had a state and lost it is an error, as production's is.
    /// </summary>
    public static async Task<DynamicState> ReadStateAsync(FarmModel production, EnvironmentRecord record, IStateStore store, string actor, TimeProvider time, CancellationToken cancellationToken)
    {
        var service = State(production, record, store, time);
        if ((await service.ReadAsync(cancellationToken)).State is { } state)
        {
            return state;
        }

        if ((await service.HistoryAsync(cancellationToken)).Count > 0)
        {
            throw new StateStoreException($"the dynamic state of environment {record.Name} is missing from {store.Address}, though its history is there; set it with 'capstan state init --environment {record.Name} --primary-dc DC --reason …'");
        }

        var productionState = await new DynamicStateService(store, production.Project, [.. production.DatacenterNames], time).ReadRequiredAsync(cancellationToken);
        await service.ChangeAsync(new StateChange.Initialize(Clone(productionState, record.Datacenters)), actor, $"environment {record.Name}: cloned from production's state", force: true, cancellationToken);
        return await service.ReadRequiredAsync(cancellationToken);
    }

    /// <summary>
    /// The state an environment starts from: production's, cut to the environment's datacenters, with maintenance
    /// off (<c>capstan maintenance enable --environment NAME</c> turns it on). When production's primary is not one of
    /// them, the environment's first datacenter is its primary.
    /// </summary>
    public static DynamicState Clone(DynamicState production, IReadOnlyList<string> datacenters) => production with
    {
        MaintenanceEnabled = false,
        PrimaryDc = datacenters.Contains(production.PrimaryDc, StringComparer.Ordinal) ? production.PrimaryDc : datacenters[0],
        ReadOnly = production.ReadOnly.Where(kv => datacenters.Contains(kv.Key, StringComparer.Ordinal)).ToImmutableSortedDictionary(StringComparer.Ordinal),
    };
}
