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
        // Everything goes out together (a real API server answers in parallel): namespaces, the records, and the kinds
        // the desired releases use; kinds only the records still name (objects to prune) follow.
        var selector = $"app.kubernetes.io/managed-by={ObjectLabels.ManagedBy}";
        var namespacesList = client.ListAsync("v1", "Namespace", null, null, cancellationToken);
        // Only the deployed revision matters for planning; the history is not decompressed.
        var recordsRead = ReleaseRecords.ListAsync(client, dc, null, cancellationToken, deployedOnly: true);
        var kinds = desired.SelectMany(r => r.Objects).Select(o => (o.ApiVersion, o.Kind)).Where(k => k.Kind != "Namespace").Distinct().ToList();
        var listed = kinds.Select(k => client.ListAsync(k.ApiVersion, k.Kind, null, selector, cancellationToken)).ToList();
        var records = await recordsRead;
        var recordedKinds = records.Values.SelectMany(l => l.Take(1)).SelectMany(r => r.Manifest)
            .Select(o => (ApiVersion: o["apiVersion"]!.GetValue<string>(), Kind: o["kind"]!.GetValue<string>()))
            .Where(k => k.Kind != "Namespace")
            .Distinct()
            .Except(kinds)
            .ToList();
        kinds.AddRange(recordedKinds);
        listed.AddRange(recordedKinds.Select(k => client.ListAsync(k.ApiVersion, k.Kind, null, selector, cancellationToken)));
        var lists = await Task.WhenAll(listed);
        var namespaces = (await namespacesList).Items
            .Where(n => n["metadata"]?["deletionTimestamp"] is null)
            .Select(n => n["metadata"]!["name"]!.GetValue<string>())
            .ToHashSet(StringComparer.Ordinal);
        var objects = new Dictionary<ReleaseId, Dictionary<string, JsonObject>>();
        foreach (var ((_, kind), list) in kinds.Zip(lists))
        {
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
