using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Kubernetes;
using Capstan.Core.State;
using Capstan.Core.Values;

namespace Capstan.Core.Rendering;

/// <summary>
/// Renders a farm, or a selection of it: for each datacenter, group and release, layer the values, bind them and
/// run the release kind's renderer. A pure function of the repo, the selection and the dynamic state.
/// </summary>
public sealed class FarmRenderer
{
    private static readonly string[] KindOrder =
        ["Namespace", "NetworkPolicy", "ConfigMap", "Secret", "Service", "Deployment", "CronJob", "Job"];

    private readonly FarmModel _model;
    private readonly IRepoFiles _files;
    private readonly ValuesResolver _resolver;
    private readonly Environments.EnvironmentOverlay? _environment;

    /// <summary>Creates a renderer for a loaded farm (production), or for a test environment of it.</summary>
    public FarmRenderer(FarmModel model, IRepoFiles files, Environments.EnvironmentOverlay? environment = null)
    {
        _model = model;
        _files = files;
        var generated = environment?.Backends is not null ? environment.BackendValues
            : model.Backends is { } backends ? backends.ProductionValues
            : (Func<string, string, Yaml.ValueMap>?)null;
        _resolver = new ValuesResolver(files, model.Values, generated);
        _environment = environment;
    }

    /// <summary>
    /// Checks a selection against the farm and throws <see cref="UserInputException"/> naming the allowed values when
    /// it names something that does not exist.
    /// </summary>
    public void CheckSelection(RenderSelection selection)
    {
        if (selection.Datacenter is { } dc && !_model.DatacenterNames.Contains(dc))
        {
            throw new UserInputException($"unknown datacenter '{dc}' (allowed: {string.Join(", ", _model.DatacenterNames)})");
        }

        if (selection.Namespace is { } ns && _model.FindGroup(ns) is null)
        {
            throw new UserInputException($"unknown namespace '{ns}' (allowed: {string.Join(", ", _model.Groups.Select(g => g.Namespace))})");
        }

        if (selection.Subset is { } subset && _model.Subsets.All(e => e.Name != subset))
        {
            throw new UserInputException($"unknown subset '{subset}' (allowed: {string.Join(", ", _model.Subsets.Select(e => e.Name))})");
        }

        if (selection.Release is { } release)
        {
            var candidates = _model.Groups.Where(g => selection.Namespace is null || g.Namespace == selection.Namespace)
                .SelectMany(g => g.Releases.Select(r => r.Name)).Distinct().ToList();
            if (!candidates.Contains(release))
            {
                throw new UserInputException($"unknown release '{release}'{(selection.Namespace is null ? string.Empty : $" in {selection.Namespace}")} (allowed: {string.Join(", ", candidates)})");
            }
        }
    }

    /// <summary>The (datacenter, group, release) triples a selection covers, in farm order.</summary>
    public IEnumerable<(string Dc, ServerGroup Group, ReleaseSpec Release)> Select(RenderSelection selection)
    {
        var env = selection.Subset is null ? null : _model.Subsets.First(e => e.Name == selection.Subset);
        foreach (var dc in _model.DatacenterNames)
        {
            if (selection.Datacenter is not null && selection.Datacenter != dc)
            {
                continue;
            }

            foreach (var (group, release) in _model.AllReleases())
            {
                if ((selection.Namespace is null || selection.Namespace == group.Namespace) &&
                    (selection.Release is null || selection.Release == release.Name) &&
                    release.RunsIn(dc) &&
                    (_environment is null || _environment.Canaries || release.Canary is null) &&
                    (env is null || env.Includes(dc, new ReleaseRef(group.Namespace, release.Name))))
                {
                    yield return (dc, group, release);
                }
            }
        }
    }

    /// <summary>The layered values tree of one release (with this renderer's environment overlay, if any), each value knowing the file and line that set it.</summary>
    public Yaml.ValueMap ResolveTree(string dc, ServerGroup group, ReleaseSpec release, bool withSecrets = true) =>
        _resolver.Resolve(dc, group.Namespace, release.Name, _environment?.ValuesFiles, withSecrets ? _environment?.SecretsFiles : []).Tree;

    /// <summary>True when rendering the selection needs the dynamic state (it covers a periodic MediaWiki release).</summary>
    public bool NeedsState(RenderSelection selection) =>
        Select(selection).Any(t => t.Group.Traits.Periodic && t.Release.Kind == ReleaseKind.MediaWiki);

    /// <summary>The bound values of one release in one datacenter.</summary>
    public MediaWikiValues ResolveValues(string dc, ServerGroup group, ReleaseSpec release) =>
        ValuesBinder.Bind(_resolver.Resolve(dc, group.Namespace, release.Name).Tree, group.Traits);

    /// <summary>Renders a selection. Throws <see cref="RepoValidationException"/> for bad values, listing every problem.</summary>
    public RenderResult Render(RenderSelection selection, DynamicState? state)
    {
        CheckSelection(selection);
        return Render(Select(selection).ToList(), state, withNamespaces: selection.Release is null);
    }

    /// <summary>Renders the given releases (a selection widened by needs, for example).</summary>
    public RenderResult Render(IReadOnlyList<(string Dc, ServerGroup Group, ReleaseSpec Release)> work, DynamicState? state, bool withNamespaces)
    {
        var rendered = new RenderedRelease?[work.Count];
        var missing = new IReadOnlyList<MissingValuesFile>[work.Count];
        var failures = new IReadOnlyList<Diagnostic>?[work.Count];
        var refusals = new UserInputException?[work.Count];

        // Releases are independent: render them on every core, then put the results back in farm order.
        Parallel.For(0, work.Count, i =>
        {
            var (dc, group, release) = work[i];
            try
            {
                var resolved = _resolver.Resolve(dc, group.Namespace, release.Name, _environment?.ValuesFiles, _environment?.SecretsFiles);
                missing[i] = resolved.FilesMissing;
                var values = ValuesBinder.Bind(resolved.Tree, group.Traits);
                if (_environment?.Image is { } image)
                {
                    // The environment's image wins over every layer.
                    values = values with { Images = values.Images with { MediaWiki = image } };
                }

                var production = RenderRelease(new ReleaseContext(_model, dc, group, release, values, state) { Environment = _environment });
                rendered[i] = _environment is null ? production : _environment.Apply(production);
            }
            catch (RepoValidationException ex)
            {
                missing[i] = [];
                failures[i] = ex.Diagnostics;
            }
            catch (UserInputException ex)
            {
                missing[i] = [];
                refusals[i] = ex;
            }
        });

        if (refusals.FirstOrDefault(r => r is not null) is { } refusal)
        {
            throw refusal;
        }

        var errors = failures.Where(f => f is not null).SelectMany(f => f!).Distinct().ToList();
        if (errors.Count > 0)
        {
            throw new RepoValidationException(errors);
        }

        var releases = rendered.Select(r => r!).ToList();
        var missingFiles = missing.SelectMany(m => m).Distinct().OrderBy(m => m.Path, StringComparer.Ordinal).ToList();

        var namespaces = withNamespaces
            ? releases.Select(r => (r.Datacenter, r.Namespace)).Distinct()
                .Select(p => (p.Datacenter, new Namespace(new ObjectMeta(p.Namespace, Labels: SortedMap.Of(
                    ("app.kubernetes.io/managed-by", ObjectLabels.ManagedBy),
                    ("app.kubernetes.io/part-of", _model.Project)).SetItems(EnvironmentLabels())))))
                .ToList()
            : [];
        return new RenderResult(releases, namespaces, missingFiles);
    }

    /// <summary>
    /// Renders one maintenance-script run in a cli group of <paramref name="dc"/>: a release named
    /// <see cref="ScriptRun.Release"/> layered like any release of the group, optionally with another MediaWiki image.
    /// </summary>
    public RenderedRelease RenderScriptRun(string dc, ServerGroup group, ScriptRun run, DynamicState state, string? image)
    {
        if (group.Traits.Serving != ServingKind.Cli || group.Traits.Periodic)
        {
            throw new UserInputException($"{group.Namespace} is not a script group (a cli group without CronJobs, such as mw-script)");
        }

        var release = new ReleaseSpec(run.Release, ReleaseKind.MediaWiki, Stage.Production, [], null, null, [], null, null, SourceLocation.OfFile(group.File));
        var values = ValuesBinder.Bind(_resolver.Resolve(dc, group.Namespace, release.Name).Tree, group.Traits);
        if (image is not null)
        {
            values = values with { Images = values.Images with { MediaWiki = image } };
        }

        var ctx = new ReleaseContext(_model, dc, group, release, values, state);
        var common = ObjectLabels.Common(_model.Project, ctx.Namespace, release.Name, release.Kind);
        var objects = MediaWikiRenderer.RenderScriptRun(ctx, run).Select(o => ObjectLabels.Apply(o, common)).ToList();
        CheckNames(ctx, objects);
        return new RenderedRelease(dc, group.Namespace, release.Name, release.Kind, objects);
    }

    private IEnumerable<KeyValuePair<string, string>> EnvironmentLabels() =>
        _environment is null ? [] : [KeyValuePair.Create(Environments.EnvironmentOverlay.Label, _environment.Name)];

    private RenderedRelease RenderRelease(ReleaseContext ctx)
    {
        var objects = ctx.Release.Kind switch
        {
            ReleaseKind.StatsdExporter => StatsdExporterRenderer.Render(ctx),
            ReleaseKind.MediaWikiCommon => MediaWikiCommonRenderer.Render(ctx),
            ReleaseKind.Manifests => ManifestsRenderer.Render(ctx, _files),
            _ => MediaWikiRenderer.Render(ctx),
        };
        var common = ObjectLabels.Common(_model.Project, ctx.Namespace, ctx.Release.Name, ctx.Release.Kind);
        var labelled = objects
            .Select(o => ObjectLabels.Apply(o, common))
            .OrderBy(o => KindRank(o.Kind))
            .ThenBy(o => o.Kind, StringComparer.Ordinal)
            .ThenBy(o => o.Metadata.Name, StringComparer.Ordinal)
            .ToList();
        CheckNames(ctx, labelled);
        return new RenderedRelease(ctx.Datacenter, ctx.Namespace, ctx.Release.Name, ctx.Release.Kind, labelled);
    }

    private static int KindRank(string kind)
    {
        var index = Array.IndexOf(KindOrder, kind);
        return index < 0 ? KindOrder.Length : index;
    }

    private static void CheckNames(ReleaseContext ctx, IReadOnlyList<IKubeObject> objects)
    {
        var problems = new List<string>();
        var seen = new HashSet<(string, string)>();
        foreach (var obj in objects)
        {
            var name = obj.Metadata.Name;
            if (!seen.Add((obj.Kind, name)))
            {
                problems.Add($"two {obj.Kind} objects are named '{name}'");
            }

            var why = obj.Kind switch
            {
                "Service" or "Namespace" => KubeNames.CheckDnsLabel(name),
                "CronJob" => KubeNames.CheckDnsLabel(name, KubeNames.MaxCronJobNameLength),
                _ => KubeNames.CheckDnsSubdomain(name),
            };
            if (why is not null)
            {
                problems.Add($"{obj.Kind} name '{name}' {why}");
            }

            foreach (var (key, value) in obj.Metadata.Labels ?? SortedMap.Empty)
            {
                if (KubeNames.CheckLabelValue(value) is { } bad)
                {
                    problems.Add($"label {key}={value} on {obj.Kind} {name} {bad}");
                }
            }
        }

        if (problems.Count > 0)
        {
            throw MediaWikiRenderer.Error(ctx, $"release {ctx.Namespace}/{ctx.Release.Name} renders invalid objects: {string.Join("; ", problems)}");
        }
    }
}
