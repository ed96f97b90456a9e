using Capstan.Core.Config;
using Capstan.Core.Planning;
using Capstan.Kubernetes;
using Capstan.Images;

namespace Capstan.Deploy.Actions;

/// <summary>
/// What a plan's new images cost to pull, per changed release: the nodes its pods may run on that lack them, the bytes
/// each lacks (the new images' layers minus those of the images the node holds, from <c>status.images</c>, or the
/// release's old images on the nodes it runs on when nodes cannot be listed), the registry egress for all of them, and
/// the time from the registry against a peer-to-peer fan-out. Layers are known for images the farm keeps itself (its OCI
/// layout or registry); for others the row says so. With several releases in a datacenter, a last row counts each node
/// once for all of them (a layer two releases share is pulled once).
/// </summary>
public sealed record DeployPullCost(string Datacenter, string What, PullCostEstimate? Estimate, string? Unknown)
{
    /// <summary>The rows of a plan; registry credentials come from <paramref name="environment"/>.</summary>
    public static async Task<IReadOnlyList<DeployPullCost>> ForAsync(FarmModel model, IClusters clusters, Plan plan, PrePullSettings settings, Func<string, string?> environment, CancellationToken cancellationToken)
    {
        var layers = new Dictionary<string, (IReadOnlyList<(string Digest, long Size)>? Layers, string? Why)>(StringComparer.Ordinal);
        async Task<(IReadOnlyList<(string Digest, long Size)>? Layers, string? Why)> LayersAsync(string image)
        {
            if (!layers.TryGetValue(image, out var known))
            {
                known = await FarmLayersAsync(model, environment, image, cancellationToken);
                layers[image] = known;
            }

            return known;
        }

        var rows = new List<DeployPullCost>();
        foreach (var dc in ImageChanges.Of(plan).GroupBy(c => c.Release.Datacenter))
        {
            var client = clusters[dc.Key];
            var nodeList = await ImageChanges.ListNodesAsync(client, cancellationToken);
            var all = new Dictionary<string, (HashSet<string> Held, Dictionary<string, long> Wanted)>(StringComparer.Ordinal);
            var complete = true;
            foreach (var change in dc)
            {
                var nodes = await ImageChanges.NodesAsync(client, nodeList, change, cancellationToken);
                var perNode = new List<long>();
                var unknown = new SortedSet<string>(StringComparer.Ordinal);
                foreach (var node in nodes.Nodes)
                {
                    // What the node holds: the images its status names, or (nodes not listed) the release's old ones.
                    var holds = nodes.FromPods ? change.OldImages : change.Images.Concat(change.OldImages).Where(i => ImageChanges.Holds(nodes.Held.GetValueOrDefault(node), i)).ToList();
                    var held = new List<(string Digest, long Size)>();
                    foreach (var image in holds)
                    {
                        // A held image whose layers are unknown shares none with the new ones, as far as this count goes.
                        held.AddRange((await LayersAsync(image)).Layers ?? []);
                    }

                    var wanted = new List<(string Digest, long Size)>();
                    foreach (var image in change.Images.Where(i => !holds.Contains(i, StringComparer.Ordinal)))
                    {
                        var (found, why) = await LayersAsync(image);
                        if (found is null)
                        {
                            unknown.Add(why!);
                        }

                        wanted.AddRange(found ?? []);
                    }

                    perNode.Add(PullCost.Missing(held, wanted));
                    var sum = all.TryGetValue(node, out var known) ? known : all[node] = ([], []);
                    sum.Held.UnionWith(held.Select(l => l.Digest));
                    foreach (var (digest, size) in wanted)
                    {
                        sum.Wanted[digest] = size;
                    }
                }

                var what = $"{change.Release.Namespace}/{change.Release.Release}";
                if (unknown.Count > 0)
                {
                    complete = false;
                    rows.Add(new DeployPullCost(dc.Key, what, null, unknown.First() + (unknown.Count > 1 ? $" (and {unknown.Count - 1} more images)" : string.Empty)));
                    continue;
                }

                rows.Add(new DeployPullCost(dc.Key, what, PullCost.Estimate(dc.Key, perNode, settings.MaxEgress, settings.NodeBandwidth), null));
            }

            if (complete && dc.Count() > 1)
            {
                var perNode = all.Values.Select(n => n.Wanted.Where(l => !n.Held.Contains(l.Key)).Sum(l => l.Value)).ToList();
                rows.Add(new DeployPullCost(dc.Key, "all releases", PullCost.Estimate(dc.Key, perNode, settings.MaxEgress, settings.NodeBandwidth), null));
            }
        }

        return rows;
    }

    /// <summary>The layers of an image the farm keeps (<c>capstan.local/…</c> in its OCI layout, or its registry's), else why not.</summary>
    private static async Task<(IReadOnlyList<(string Digest, long Size)>? Layers, string? Why)> FarmLayersAsync(FarmModel model, Func<string, string?> environment, string image, CancellationToken cancellationToken)
    {
        try
        {
            if (model.RegistryLayout is { } layout && ImageBuildSpec.LocalReference(image) is { } reference)
            {
                return Directory.Exists(layout) ? (await PullCost.LayersAsync(new OciLayout(layout), reference, cancellationToken), null) : (null, $"{image}: {model.Registry} does not exist");
            }

            var registry = model.Registry.TrimEnd('/');
            if (model.RegistryLayout is null && image.StartsWith(registry + "/", StringComparison.Ordinal))
            {
                var parsed = ImageReference.Parse(image, model.RepoRoot);
                await using var store = ImageStores.Open(parsed, environment);
                return (await PullCost.LayersAsync(store.Store, parsed.Reference, cancellationToken), null);
            }

            return (null, $"{image} is not in the farm's registry ({model.Registry})");
        }
        catch (ImageException ex)
        {
            return (null, $"{image} could not be read: {ex.Message}");
        }
    }
}
