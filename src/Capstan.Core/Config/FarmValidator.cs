using Capstan.Core.Diagnostics;

namespace Capstan.Core.Config;

/// <summary>Checks that span files: needs, cycles, stage order, canaries, ports, environments, manifests paths.</summary>
internal static class FarmValidator
{
    public static void Validate(FarmModel model, IRepoFiles files, DiagnosticBag diagnostics)
    {
        foreach (var (group, release) in model.AllReleases())
        {
            CheckNeeds(model, group, release, diagnostics);
            CheckCanary(group, release, diagnostics);
            if (release.Kind == ReleaseKind.Manifests && release.ManifestsPath is { } path && !files.DirectoryExists(path))
            {
                diagnostics.Error(release.Location, $"release '{group.Namespace}/{release.Name}': manifests directory '{path}' does not exist");
            }
        }

        CheckCycles(model, diagnostics);
        CheckPorts(model, diagnostics);
        CheckEnvironments(model, diagnostics);
    }

    private static void CheckNeeds(FarmModel model, ServerGroup group, ReleaseSpec release, DiagnosticBag diagnostics)
    {
        foreach (var need in release.Needs)
        {
            var target = model.FindRelease(need);
            var what = $"release '{group.Namespace}/{release.Name}'";
            if (target is null)
            {
                var known = model.FindGroup(need.Namespace) is { } g
                    ? $"releases of {need.Namespace}: {string.Join(", ", g.Releases.Select(r => r.Name))}"
                    : $"no server group '{need.Namespace}'";
                diagnostics.Error(release.Location, $"{what} needs '{need}', which does not exist ({known})");
                continue;
            }

            if (target.Stage > release.Stage)
            {
                diagnostics.Error(release.Location,
                    $"{what} (stage {Word(release.Stage)}) needs '{need}', which deploys later (stage {Word(target.Stage)})");
            }

            foreach (var dc in model.DatacenterNames.Where(dc => release.RunsIn(dc) && !target.RunsIn(dc)))
            {
                diagnostics.Error(release.Location, $"{what} needs '{need}', which is not deployed in datacenter '{dc}'");
            }
        }
    }

    private static void CheckCanary(ServerGroup group, ReleaseSpec release, DiagnosticBag diagnostics)
    {
        if (release.Canary is not { } canary)
        {
            return;
        }

        var what = $"release '{group.Namespace}/{release.Name}'";
        var main = group.Releases.FirstOrDefault(r => r.Name == canary.Of);
        if (main is null)
        {
            diagnostics.Error(release.Location, $"{what} is a canary of '{canary.Of}', which is not a release of {group.Namespace}");
        }
        else if (main.Canary is not null)
        {
            diagnostics.Error(release.Location, $"{what} is a canary of '{canary.Of}', which is itself a canary");
        }
        else if (main.Kind != ReleaseKind.MediaWiki)
        {
            diagnostics.Error(release.Location, $"{what} is a canary of '{canary.Of}', which is not a mediawiki release");
        }
        else if (main.Name == release.Name)
        {
            diagnostics.Error(release.Location, $"{what} cannot be a canary of itself");
        }
    }

    private static void CheckCycles(FarmModel model, DiagnosticBag diagnostics)
    {
        var state = new Dictionary<ReleaseRef, int>();
        var stack = new List<ReleaseRef>();
        var reported = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (group, release) in model.AllReleases())
        {
            Visit(new ReleaseRef(group.Namespace, release.Name));
        }

        void Visit(ReleaseRef node)
        {
            if (state.TryGetValue(node, out var s) && s == 2)
            {
                return;
            }

            if (s == 1)
            {
                var start = stack.IndexOf(node);
                var cycle = stack.Skip(start).Append(node).Select(r => r.ToString()).ToList();
                var key = string.Join(",", cycle.Skip(1).Order(StringComparer.Ordinal));
                if (reported.Add(key))
                {
                    var at = model.FindRelease(stack[start])!.Location;
                    diagnostics.Error(at, $"dependency cycle: {string.Join(" -> ", cycle)}");
                }

                return;
            }

            var release = model.FindRelease(node);
            if (release is null)
            {
                return;
            }

            state[node] = 1;
            stack.Add(node);
            foreach (var need in release.Needs)
            {
                Visit(need);
            }

            stack.RemoveAt(stack.Count - 1);
            state[node] = 2;
        }
    }

    private static void CheckPorts(FarmModel model, DiagnosticBag diagnostics)
    {
        var seen = new Dictionary<int, string>();
        foreach (var group in model.Groups)
        {
            if (group.TlsPort is not { } port)
            {
                continue;
            }

            if (seen.TryGetValue(port, out var other))
            {
                diagnostics.Error(group.TlsPortLocation, $"tls-port {port} of server group '{group.Namespace}' is already used by server group '{other}'");
            }
            else
            {
                seen[port] = group.Namespace;
            }
        }
    }

    private static void CheckEnvironments(FarmModel model, DiagnosticBag diagnostics)
    {
        foreach (var subset in model.Subsets)
        {
            foreach (var reference in subset.Releases ?? [])
            {
                if (model.FindRelease(reference) is null)
                {
                    diagnostics.Error(subset.Location, $"subset '{subset.Name}' lists release '{reference}', which does not exist");
                }
            }
        }
    }

    internal static string Word(Stage stage) => GroupFileReader.StageWords.First(s => s.Item2 == stage).Item1;
}
