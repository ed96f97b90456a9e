using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Environments;
using Capstan.Core.Kubernetes;
using Capstan.Core.Rendering;
using Capstan.State;

namespace Capstan.Deploy;

/// <summary>
/// The proof, at render time, that an environment is isolated from production: its rendered objects carry none of
/// production's endpoints (those of every backend it does not explicitly share) and none of production's secret
/// values. Each hit names the object and key, and the file and line of the value that carried it.
/// </summary>
public static class EnvironmentIsolation
{
    /// <summary>What production's repo says the environment must not carry.</summary>
    public static IReadOnlyList<ProductionNeedle> Needles(FarmModel production, IRepoFiles files, EnvironmentRecord record)
    {
        var needles = new List<ProductionNeedle>();
        var namespaces = production.Groups.Select(g => g.Namespace).ToList();
        if (EnvironmentScope.Backends(production, record) is { } backends)
        {
            needles.AddRange(backends.ForbiddenEndpoints([.. production.DatacenterNames], namespaces)
                .Select(e => new ProductionNeedle(e.Text, $"{e.Backend} endpoint {e.Text}", e.Location, Secret: false)));
        }

        // Production's secrets, where this machine has them (a farm may keep them outside the repo): read to compare, never shown.
        var renderer = new FarmRenderer(production, files);
        foreach (var (dc, group, release) in renderer.Select(new RenderSelection()).Where(t => record.Groups.Contains(t.Group.Namespace)).DistinctBy(t => (t.Dc, t.Group.Namespace)))
        {
            try
            {
                needles.AddRange(IsolationScan.SecretNeedles(renderer.ResolveTree(dc, group, release)["secrets"]));
            }
            catch (RepoValidationException)
            {
                // Production's own values are checked where production is rendered; here they only feed the comparison.
            }
        }

        return [.. needles.DistinctBy(n => (n.Text, n.Secret))];
    }

    /// <summary>
    /// Every hit in a rendering of the environment; the carrier of each is looked up in the release's values (its own
    /// secrets included) and, for a manifests release, in its files.
    /// </summary>
    public static IReadOnlyList<IsolationHit> Find(FarmModel production, IRepoFiles files, EnvironmentRecord record, FarmRenderer environment, RenderResult rendered)
    {
        var needles = Needles(production, files, record);
        var scoped = EnvironmentScope.Model(production, record);
        var (withSettings, _) = EnvironmentScope.Overlay(production, files, record);
        var hits = new List<IsolationHit>();
        foreach (var release in rendered.Releases)
        {
            var ns = release.Namespace[(record.Name.Length + EnvironmentNames.Separator.Length)..];
            var group = scoped.FindGroup(ns);
            var spec = group?.Releases.FirstOrDefault(r => r.Name == release.Release);
            foreach (var obj in release.Objects)
            {
                foreach (var hit in IsolationScan.Scan($"{release.Datacenter} {release.Namespace}/{obj.Kind} {obj.Metadata.Name}", KubeSerializer.ToNode(obj), needles))
                {
                    hits.Add(hit with { CarriedBy = Carrier(environment, withSettings, release.Datacenter, group, spec, hit.Needle) });
                }
            }
        }

        return hits;
    }

    /// <summary>
    /// Refuses the environment when it is not isolated: a <see cref="RepoValidationException"/> with one error per hit,
    /// at the file and line that carried it (else where production declares what leaked).
    /// </summary>
    public static void Check(FarmModel production, IRepoFiles files, EnvironmentRecord record, FarmRenderer environment, RenderResult rendered)
    {
        var hits = Find(production, files, record, environment, rendered);
        if (hits.Count > 0)
        {
            throw new RepoValidationException([.. hits
                .Select(h => new Diagnostic(
                    Severity.Error,
                    h.CarriedBy ?? h.Needle.Declared,
                    $"environment {record.Name} would reach production: {h.Object} {h.Key} carries production's {h.Needle.What} (declared at {h.Needle.Declared}){(h.CarriedBy is null ? "; capstan rendered it from the repo" : string.Empty)}"))
                .Distinct()]);
        }
    }

    private static SourceLocation? Carrier(FarmRenderer environment, IRepoFiles files, string dc, ServerGroup? group, ReleaseSpec? release, ProductionNeedle needle)
    {
        if (group is null || release is null)
        {
            return null;
        }

        if (release.Kind == ReleaseKind.Manifests && release.ManifestsPath is { } dir)
        {
            foreach (var path in files.ListFiles(dir, "*.yaml").Concat(files.ListFiles(dir, "*.yml")).Order(StringComparer.Ordinal))
            {
                if (IsolationScan.Carrier(path, files.ReadText(path), needle) is { } line)
                {
                    return line;
                }
            }

            return null;
        }

        var tree = environment.ResolveTree(dc, group, release);

        // A value from the generated backends layer is production's only for a backend the environment shares explicitly.
        return IsolationScan.Carrier(tree, needle);
    }
}
