using System.Text.Json.Nodes;
using Capstan.Core.Planning;
using Capstan.Core.Rendering;
using Capstan.Kubernetes;

namespace Capstan.Deploy;

/// <summary>What a datacenter's cluster holds, read in a few list calls: namespaces, Capstan's objects, records.</summary>
public sealed record LiveDatacenter(string Datacenter, IReadOnlySet<string> Namespaces, IReadOnlyDictionary<ReleaseId, LiveRelease> Releases, IReadOnlyDictionary<ReleaseId, List<ReleaseRecord>> Records);

/// <summary>Reads live state for planning: one list per kind across namespaces, filtered by Capstan's labels.</summary>
public static class LiveReader
{
    /// <summary>Reads a datacenter, for the kinds the desired releases (and their records) use.</summary>
    public static async Task<LiveDatacenter> ReadAsync(IClusterClient client, string dc, IEnumerable<RenderedRelease> desired, CancellationToken cancellationToken)
    {
        var namespaces = (await client.ListAsync("v1", "Namespace", null, null, cancellationToken)).Items
            .Where(n => n["metadata"]?["deletionTimestamp"] is null)
            .Select(n => n["metadata"]!["name"]!.GetValue<string>())
            .ToHashSet(StringComparer.Ordinal);
        // Only the deployed revision matters for planning; the history is not decompressed.
        var records = await ReleaseRecords.ListAsync(client, dc, null, cancellationToken, deployedOnly: true);
        var kinds = desired.SelectMany(r => r.Objects).Select(o => (o.ApiVersion, o.Kind))
            .Concat(records.Values.SelectMany(l => l.Take(1)).SelectMany(r => r.Manifest).Select(o => (o["apiVersion"]!.GetValue<string>(), o["kind"]!.GetValue<string>())))
            .Where(k => k.Item2 != "Namespace")
            .Distinct()
            .ToList();
        var objects = new Dictionary<ReleaseId, Dictionary<string, JsonObject>>();
        foreach (var (apiVersion, kind) in kinds)
        {
            var list = await client.ListAsync(apiVersion, kind, null, $"app.kubernetes.io/managed-by={ObjectLabels.ManagedBy}", cancellationToken);
            foreach (var item in list.Items)
            {
                var release = item["metadata"]?["labels"]?[ObjectLabels.ReleaseLabel]?.GetValue<string>();
                // A cluster-scoped object of a manifests release belongs to the release's namespace by its component label.
                var ns = item["metadata"]?["namespace"]?.GetValue<string>() ?? item["metadata"]?["labels"]?["app.kubernetes.io/component"]?.GetValue<string>();
                if (release is null || ns is null)
                {
                    continue;
                }

                var id = new ReleaseId(dc, ns, release);
                if (!objects.TryGetValue(id, out var byKey))
                {
                    byKey = new Dictionary<string, JsonObject>(StringComparer.Ordinal);
                    objects[id] = byKey;
                }

                byKey[LiveRelease.Key(kind, item["metadata"]!["name"]!.GetValue<string>())] = item;
            }
        }

        var releases = new Dictionary<ReleaseId, LiveRelease>();
        foreach (var id in objects.Keys.Concat(records.Keys).Distinct())
        {
            var deployed = records.GetValueOrDefault(id)?.FirstOrDefault(r => r.Status == "deployed");
            releases[id] = new LiveRelease(id, objects.GetValueOrDefault(id) ?? new Dictionary<string, JsonObject>(StringComparer.Ordinal), deployed);
        }

        return new LiveDatacenter(dc, namespaces, releases, records);
    }
}
