using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Core.Config;
using Capstan.Core.Planning;
using Capstan.Deploy;
using Capstan.Images;

namespace Capstan.Cli;

/// <summary>
/// What a plan's new images cost to pull, per release: the nodes its pods may run on, the bytes of the new images'
/// layers its old ones lack, the registry egress for all of them, and the time from the registry against a
/// peer-to-peer fan-out. Layers are known for images the farm keeps itself (its OCI layout or registry); for others
/// the row says so.
/// </summary>
internal sealed record DeployPullCost(ReleaseId Release, PullCostEstimate? Estimate, int Nodes, string? Unknown)
{
    public static async Task<IReadOnlyList<DeployPullCost>> ForAsync(DeploySession session, Plan plan, CliEnvironment env, CancellationToken cancellationToken)
    {
        var model = session.Repo.Model;
        var layers = new Dictionary<string, IReadOnlyList<(string Digest, long Size)>?>(StringComparer.Ordinal);
        async Task<IReadOnlyList<(string Digest, long Size)>?> LayersAsync(string image)
        {
            if (!layers.TryGetValue(image, out var known))
            {
                known = await FarmLayersAsync(model, env, image, cancellationToken);
                layers[image] = known;
            }

            return known;
        }

        var rows = new List<DeployPullCost>();
        foreach (var change in ImageChanges.Of(plan))
        {
            var nodes = await ImageChanges.NodesAsync(session.Clusters[change.Release.Datacenter], change, cancellationToken);
            var old = new List<(string Digest, long Size)>();
            var fresh = new List<(string Digest, long Size)>();
            var unknown = new List<string>();
            foreach (var image in change.OldImages)
            {
                old.AddRange(await LayersAsync(image) ?? []);
            }

            foreach (var image in change.NewImages)
            {
                if (await LayersAsync(image) is { } known)
                {
                    fresh.AddRange(known);
                }
                else
                {
                    unknown.Add(image);
                }
            }

            rows.Add(unknown.Count > 0
                ? new DeployPullCost(change.Release, null, nodes.Nodes.Count, $"layers unknown: {string.Join(", ", unknown)} is not in the farm's registry ({model.Registry})")
                : new DeployPullCost(change.Release, PullCost.Estimate(change.Release.Datacenter, nodes.Nodes.Count, PullCost.Missing(old, fresh), model.PrePull.MaxEgress, model.PrePull.NodeBandwidth), nodes.Nodes.Count, null));
        }

        return rows;
    }

    /// <summary>The layers of an image the farm keeps (<c>capstan.local/…</c> in its OCI layout, or its registry's), else null.</summary>
    private static async Task<IReadOnlyList<(string Digest, long Size)>?> FarmLayersAsync(FarmModel model, CliEnvironment env, string image, CancellationToken cancellationToken)
    {
        try
        {
            if (model.RegistryLayout is { } layout && image.StartsWith(ImageBuildSpec.LocalRegistry + "/", StringComparison.Ordinal))
            {
                var name = image[(ImageBuildSpec.LocalRegistry.Length + 1)..];
                var at = name.IndexOf('@', StringComparison.Ordinal);
                var colon = name.LastIndexOf(':');
                var reference = at >= 0 ? name[(at + 1)..] : colon >= 0 ? name[(colon + 1)..] : "latest";
                return Directory.Exists(layout) ? await PullCost.LayersAsync(new OciLayout(layout), reference, cancellationToken) : null;
            }

            var registry = model.Registry.TrimEnd('/');
            if (model.RegistryLayout is null && image.StartsWith(registry + "/", StringComparison.Ordinal))
            {
                var parsed = ImageReference.Parse(image, model.RepoRoot);
                await using var store = await Stores.OpenAsync(parsed, env, cancellationToken);
                return await PullCost.LayersAsync(store.Store, parsed.Reference, cancellationToken);
            }
        }
        catch (ImageException)
        {
        }

        return null;
    }

    public static string Table(IReadOnlyList<DeployPullCost> rows)
    {
        var table = new PlainTable("DC", "RELEASE", "NODES", "PER NODE", "REGISTRY EGRESS", "FROM REGISTRY", "PEER-TO-PEER");
        foreach (var row in rows)
        {
            if (row.Estimate is { } e)
            {
                table.Add(row.Release.Datacenter, $"{row.Release.Namespace}/{row.Release.Release}", e.Nodes.ToString(CultureInfo.InvariantCulture), Commands.ImageCommand.Size(e.BytesPerNode),
                    Commands.ImageCommand.Size(e.TotalBytes), e.RegistrySeconds.ToString("0.0 s", CultureInfo.InvariantCulture), e.PeerToPeerSeconds.ToString("0.0 s", CultureInfo.InvariantCulture));
            }
            else
            {
                table.Add(row.Release.Datacenter, $"{row.Release.Namespace}/{row.Release.Release}", row.Nodes.ToString(CultureInfo.InvariantCulture), "?", "?", "?", "?");
            }
        }

        var notes = string.Concat(rows.Where(r => r.Unknown is not null).Select(r => $"  {r.Release}: {r.Unknown}\n").Distinct(StringComparer.Ordinal));
        return "\nimage pull cost (new images' layers each node lacks):\n" + table + notes;
    }

    public static JsonArray Json(IReadOnlyList<DeployPullCost> rows) => [.. rows.Select(r => (JsonNode)new JsonObject
    {
        ["release"] = r.Release.ToString(),
        ["nodes"] = r.Nodes,
        ["bytesPerNode"] = r.Estimate?.BytesPerNode,
        ["registryEgressBytes"] = r.Estimate?.TotalBytes,
        ["registrySeconds"] = r.Estimate is { } e ? Math.Round(e.RegistrySeconds, 3) : null,
        ["peerToPeerSeconds"] = r.Estimate is { } p ? Math.Round(p.PeerToPeerSeconds, 3) : null,
        ["unknown"] = r.Unknown,
    })];
}
