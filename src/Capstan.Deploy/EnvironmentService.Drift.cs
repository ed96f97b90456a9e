using Capstan.Core.Diagnostics;
using Capstan.Core.Environments;
using Capstan.Core.Rendering;
using Capstan.Core.State;

namespace Capstan.Deploy;

/// <summary>Environments: how one differs from production.</summary>
public sealed partial class EnvironmentService
{
    /// <summary>
    /// How an environment differs from production: per release, every values key whose value differs, with the file
    /// and line that set it on each side; the image; the dynamic state; and the releases only production runs.
    /// </summary>
    public async Task<EnvironmentDrift> DriftAsync(string name, DynamicState productionState, CancellationToken cancellationToken)
    {
        var (record, _) = await Records.GetAsync(name, cancellationToken) ?? throw new UserInputException($"there is no environment '{name}'");
        var production = new FarmRenderer(model, files);
        var renderer = EnvironmentScope.Renderer(model, files, record); // refuses groups the repo no longer has
        var values = new List<ReleaseValueDifference>();
        var onlyInProduction = new List<string>();
        foreach (var dc in record.Datacenters)
        {
            foreach (var group in record.Groups.Select(g => model.FindGroup(g)!))
            {
                foreach (var release in group.Releases.Where(r => r.RunsIn(dc)))
                {
                    var where = record.Datacenters.Count > 1 ? $" in {dc}" : string.Empty;
                    if (release.Canary is not null)
                    {
                        onlyInProduction.Add($"{group.Namespace}/{release.Name}{where} (canaries are off in environments)");
                        continue;
                    }

                    foreach (var difference in ValuesDrift.Compare(renderer.ResolveTree(dc, group, release), production.ResolveTree(dc, group, release, withSecrets: false)))
                    {
                        values.Add(new ReleaseValueDifference($"{group.Namespace}/{release.Name}{where}", difference));
                    }
                }
            }
        }

        if (record.Image is { } image)
        {
            values.Add(new ReleaseValueDifference("(all)", new ValueDifference("image", image, null, "(the images values file)", null)));
        }

        var state = new List<StateDifference>();
        if (await State(record).ReadAsync(cancellationToken) is { State: { } own })
        {
            if (own.PrimaryDc != productionState.PrimaryDc)
            {
                state.Add(new StateDifference("primary_dc", own.PrimaryDc, productionState.PrimaryDc));
            }

            foreach (var dc in record.Datacenters.Where(dc => own.ReadOnly.GetValueOrDefault(dc) != productionState.ReadOnly.GetValueOrDefault(dc)))
            {
                state.Add(new StateDifference($"read_only.{dc}", own.ReadOnly.GetValueOrDefault(dc) ?? "off", productionState.ReadOnly.GetValueOrDefault(dc) ?? "off"));
            }

            if (own.MaintenanceEnabled != productionState.MaintenanceEnabled)
            {
                state.Add(new StateDifference("maintenance_enabled", own.MaintenanceEnabled ? "true" : "false", productionState.MaintenanceEnabled ? "true" : "false"));
            }
        }
        else
        {
            state.Add(new StateDifference("(all)", "(none: the environment has no dynamic state)", "(production's)"));
        }

        // Live objects changed inside the environment by someone other than Capstan (a kubectl edit), from managedFields.
        var live = new List<string>();
        if (record.Creating is null && record.Sleeping is null)
        {
            var prepared = await Deployer(record).PrepareAsync(Request(record, record.Owner, "drift?") with { Preflight = false }, await EnvironmentScope.ReadStateAsync(model, record, store, record.Owner, time, cancellationToken), cancellationToken);
            live.AddRange(prepared.Plan.Actions.SelectMany(a => a.Drift.Select(d =>
                $"{a.Id.Datacenter}/{a.Id.Namespace[(record.Name.Length + EnvironmentNames.Separator.Length)..]}/{a.Id.Release}: {d.Kind} {d.Name} {d.Path} changed by {d.Manager}")));
        }

        var backends = EnvironmentScope.Backends(model, record)?.Items.Select(i => new BackendDifference(
            i.Production.Name, Backend.KindName(i.Production.Kind), i.Source.ToString(),
            Endpoints(i.Effective, record.Datacenters), Endpoints(i.Production, record.Datacenters))).ToList() ?? [];
        return new EnvironmentDrift(record.Name, values, onlyInProduction) { State = state, Backends = backends, Live = live };
    }

    /// <summary>What a backend points at in the given datacenters, for people: its addresses, prefix or topic.</summary>
    private string Endpoints(Backend backend, IReadOnlyList<string> datacenters)
    {
        var all = model.DatacenterNames.ToList();
        var texts = datacenters.SelectMany(dc => backend.Fields.Entries.Where(e => e.Key is not ("kind" or "port"))
            .SelectMany(e => Scalars(backend.Field(e.Key, dc, all)).Select(t => t.Replace("{dc}", dc, StringComparison.Ordinal))));
        var joined = string.Join(", ", texts.Where(t => t.Length > 0).Distinct(StringComparer.Ordinal));
        return joined.Length == 0 ? "(none: standard output)" : joined;
    }

    private static IEnumerable<string> Scalars(Core.Yaml.ValueNode? node) => node switch
    {
        Core.Yaml.ValueScalar scalar => [scalar.Text],
        Core.Yaml.ValueList list => list.Items.SelectMany(Scalars),
        _ => [],
    };
}
