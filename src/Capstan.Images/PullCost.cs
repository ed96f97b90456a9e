using System.Text.Json.Nodes;

namespace Capstan.Images;

/// <summary>What rolling a new image out costs one datacenter: nodes, bytes per node and in all, and the time it takes.</summary>
public sealed record PullCostEstimate(string Datacenter, int Nodes, long BytesPerNode, long TotalBytes, double RegistrySeconds, double PeerToPeerSeconds);

/// <summary>
/// The cost of moving from one image to the next: each node that runs the old image pulls only the new image's
/// layers it lacks; the registry sends that to every node, or, peer-to-peer (Dragonfly, Kraken, Spegel), about once
/// while the nodes pass it among themselves.
/// </summary>
public static class PullCost
{
    /// <summary>The size of the pieces peers pass on (a swarm's chunk).</summary>
    private const long Chunk = 1 << 20;

    /// <summary>An image's layers (the first manifest of an index), with their compressed sizes.</summary>
    public static async Task<IReadOnlyList<(string Digest, long Size)>> LayersAsync(IImageStore store, string reference, CancellationToken cancellationToken)
    {
        var (bytes, _, _) = await store.GetManifestAsync(reference, cancellationToken) ?? throw new ImageNotFoundException($"{store.Describe} has no image {reference}");
        var node = JsonNode.Parse(bytes)!;
        if (node["manifests"] is JsonArray index && index.Count > 0)
        {
            var first = index[0]!["digest"]!.GetValue<string>();
            node = JsonNode.Parse((await store.GetManifestAsync(first, cancellationToken) ?? throw new ImageException($"{store.Describe} has no manifest {first}")).Bytes)!;
        }

        return [.. (node["layers"] as JsonArray ?? []).Select(l => (l!["digest"]!.GetValue<string>(), l["size"]!.GetValue<long>()))];
    }

    /// <summary>The bytes of the new image's layers the old one does not have (each layer once).</summary>
    public static long Missing(IReadOnlyList<(string Digest, long Size)> old, IReadOnlyList<(string Digest, long Size)> @new)
    {
        var held = old.Select(l => l.Digest).ToHashSet(StringComparer.Ordinal);
        return @new.DistinctBy(l => l.Digest).Where(l => !held.Contains(l.Digest)).Sum(l => l.Size);
    }

    /// <summary>
    /// The estimate for <paramref name="nodes"/> nodes each lacking <paramref name="missing"/> bytes: from the registry
    /// alone (its egress shared by all, each node at most its own link), and peer-to-peer (the registry sends the bytes
    /// once; then the swarm moves them at the nodes' speed, plus one chunk per doubling of the nodes that hold them).
    /// </summary>
    public static PullCostEstimate Estimate(string datacenter, int nodes, long missing, long registryBytesPerSecond, long nodeBytesPerSecond) =>
        Estimate(datacenter, Enumerable.Repeat(missing, nodes).ToList(), registryBytesPerSecond, nodeBytesPerSecond);

    /// <summary>
    /// The same for nodes that lack different amounts (each entry a node's bytes; nodes lacking nothing do not count).
    /// <see cref="PullCostEstimate.BytesPerNode"/> is then the most any node lacks.
    /// </summary>
    public static PullCostEstimate Estimate(string datacenter, IReadOnlyList<long> perNode, long registryBytesPerSecond, long nodeBytesPerSecond)
    {
        var lacking = perNode.Where(b => b > 0).ToList();
        var most = lacking.DefaultIfEmpty(0).Max();
        if (lacking.Count == 0)
        {
            return new PullCostEstimate(datacenter, perNode.Count, 0, 0, 0, 0);
        }

        var total = lacking.Sum();
        var registry = Math.Max((double)total / registryBytesPerSecond, (double)most / nodeBytesPerSecond);
        var seed = (double)most / Math.Min(registryBytesPerSecond, nodeBytesPerSecond);
        var rounds = Math.Ceiling(Math.Log2(lacking.Count));
        var peer = seed + (rounds * Math.Min(Chunk, most) / nodeBytesPerSecond);
        return new PullCostEstimate(datacenter, lacking.Count, most, total, registry, Math.Min(peer, registry));
    }
}
