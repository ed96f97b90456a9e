using System.Text.Json.Nodes;
using Capstan.Core.Kubernetes;
using Capstan.Core.Planning;
using Capstan.Core.Rendering;
using Capstan.Kubernetes;

namespace Capstan.Deploy;

/// <summary>What a datacenter's cluster holds, read in a few list calls: namespaces, Capstan's objects, records.</summary>
public sealed record LiveDatacenter(string Datacenter, IReadOnlySet<string> Namespaces, IReadOnlyDictionary<ReleaseId, LiveRelease> Releases, IReadOnlyDictionary<ReleaseId, List<ReleaseRecord>> Records);

/// <summary>Reads live state for planning: one list per kind across namespaces, filtered by Capstan's labels.</summary>
public static class LiveReader
{
    /// <summary>
    /// Reads a datacenter for the desired releases, with no more permission than a deployer of their namespaces holds:
    /// each namespace is read by name, records and objects are listed per namespace and kind (the kinds its releases
    /// render and its records name), and only cluster-scoped kinds a manifests release uses are listed across the
    /// cluster. The requests go out together, so they grow with namespaces times kinds, never with objects.
    /// </summary>
    public static async Task<LiveDatacenter> ReadAsync(IClusterClient client, string dc, IEnumerable<RenderedRelease> desired, CancellationToken cancellationToken)
    {
        var releases = desired.ToList();
        var selected = releases.Select(r => r.Namespace).Distinct(StringComparer.Ordinal).ToList();
        var selector = $"app.kubernetes.io/managed-by={ObjectLabels.ManagedBy}";
        // A namespace that does not exist holds nothing: it is not listed (a deployer could not list it anyway).
        var namespaces = (await Task.WhenAll(selected.Select(async ns => (Namespace: ns, Exists: await ExistsAsync(client, ns, cancellationToken)))))
            .Where(n => n.Exists).Select(n => n.Namespace).ToHashSet(StringComparer.Ordinal);
        // Only the deployed revision matters for planning; the history is not decompressed.
        var recordsRead = ReleaseRecords.ListAsync(client, dc, namespaces, cancellationToken, deployedOnly: true);
        var defined = ObjectScopes.Defined(releases);
        var wanted = releases.SelectMany(r => r.Objects.Select(o => (Scope: o.Metadata.Namespace, o.ApiVersion, o.Kind)))
            .Where(k => k.Scope is null || namespaces.Contains(k.Scope))
            .ToHashSet();
        var listed = wanted.Where(k => k.Kind != "Namespace")
            .ToDictionary(k => k, k => ListServedAsync(client, k.ApiVersion, k.Kind, k.Scope, selector, defined.ContainsKey((k.ApiVersion, k.Kind)), cancellationToken));

        // Kinds only the records still name (objects to prune) follow.
        Dictionary<ReleaseId, List<ReleaseRecord>> records;
        try
        {
            records = await recordsRead;
        }
        catch (Exception ex) when (ex is KubeApiException or KubeUnavailableException or ReleaseRecordException)
        {
            // The lists already sent are waited for (their own errors would say the same), then this one is reported.
            await ((Task)Task.WhenAll(listed.Values)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            throw;
        }

        foreach (var (id, history) in records)
        {
            foreach (var obj in history.Take(1).SelectMany(r => r.Manifest))
            {
                var key = (Scope: obj.Kube.Namespace, ApiVersion: obj.Kube.ApiVersion, Kind: obj.Kube.Kind);
                if (key.Kind != "Namespace" && !listed.ContainsKey(key))
                {
                    listed[key] = ListServedAsync(client, key.ApiVersion, key.Kind, key.Scope, selector, mayBeUnserved: true, cancellationToken);
                }
            }
        }

        var lists = await Task.WhenAll(listed.Select(async kv => (kv.Key.Kind, List: await kv.Value)));
        var objects = new Dictionary<ReleaseId, Dictionary<string, JsonObject>>();
        foreach (var (kind, list) in lists)
        {
            foreach (var item in list.Items)
            {
                var release = item["metadata"]?["labels"]?[ObjectLabels.ReleaseLabel]?.GetValue<string>();
                // A cluster-scoped object of a manifests release belongs to the release's namespace by its component label.
                var ns = item.Kube.Namespace ?? item["metadata"]?["labels"]?["app.kubernetes.io/component"]?.GetValue<string>();
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

                byKey[LiveRelease.Key(kind, item.Kube.Name)] = item;
            }
        }

        var live = new Dictionary<ReleaseId, LiveRelease>();
        foreach (var id in objects.Keys.Concat(records.Keys).Distinct())
        {
            var deployed = records.GetValueOrDefault(id)?.FirstOrDefault(r => r.Status == "deployed");
            live[id] = new LiveRelease(id, objects.GetValueOrDefault(id) ?? new Dictionary<string, JsonObject>(StringComparer.Ordinal), deployed);
        }

        return new LiveDatacenter(dc, namespaces, live, records);
    }

    /// <summary>
    /// The objects of a kind. With <paramref name="mayBeUnserved"/>, a kind the cluster does not serve has none: a
    /// custom resource whose definition this deploy applies first, or one only the records name (its definition
    /// deleted, taking its objects with it).
    /// </summary>
    private static async Task<ObjectList> ListServedAsync(IClusterClient client, string apiVersion, string kind, string? ns, string selector, bool mayBeUnserved, CancellationToken cancellationToken)
    {
        try
        {
            return await client.ListAsync(apiVersion, kind, ns, selector, cancellationToken);
        }
        catch (KubeNotFoundException) when (mayBeUnserved)
        {
            return new ObjectList([], "0");
        }
    }

    /// <summary>
    /// Whether a namespace exists (and is not being deleted). A deployer who may not read it gets "yes": only an admin
    /// can make namespaces for such a deployer, and a missing one shows as the apply's error.
    /// </summary>
    private static async Task<bool> ExistsAsync(IClusterClient client, string ns, CancellationToken cancellationToken)
    {
        try
        {
            return await client.GetAsync(new ObjectRef("v1", "Namespace", null, ns), cancellationToken) is { } found && found["metadata"]?["deletionTimestamp"] is null;
        }
        catch (KubeForbiddenException)
        {
            return true;
        }
    }
}
