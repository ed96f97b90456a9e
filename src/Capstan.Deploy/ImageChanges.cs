using System.Text.Json.Nodes;
using Capstan.Core.Kubernetes;
using Capstan.Core.Planning;
using Capstan.Kubernetes;

namespace Capstan.Deploy;

/// <summary>
/// Images a deploy brings to a release: those its new pod template runs that the live one does not, and all those it
/// runs, with the template they come in (for its tolerations, node selector and pull secrets).
/// </summary>
public sealed record ImageChange(ReleaseId Release, IReadOnlyList<string> OldImages, IReadOnlyList<string> NewImages, IReadOnlyList<string> Images, JsonObject PodSpec, JsonObject? Live, int Replicas);

/// <summary>The nodes of a datacenter a release's new images go to.</summary>
public sealed record ImageNodes(IReadOnlyList<string> Nodes, IReadOnlyDictionary<string, IReadOnlySet<string>> Held, bool FromPods);

/// <summary>Which images a plan changes, and on which nodes they will run.</summary>
public static class ImageChanges
{
    /// <summary>The Deployments a plan changes whose pods will run images their live pods do not.</summary>
    public static IReadOnlyList<ImageChange> Of(Plan plan)
    {
        var changes = new List<ImageChange>();
        foreach (var action in plan.Actions.Where(a => a.Change != ReleaseChange.NoOp))
        {
            foreach (var change in action.Apply.Where(c => c.Kind == "Deployment"))
            {
                if (change.Desired["spec"]?["template"]?["spec"] is not JsonObject spec)
                {
                    continue;
                }

                var old = change.Live is null ? [] : ReleaseRecords.Images([change.Live]).Values.Distinct(StringComparer.Ordinal).ToList();
                var all = ReleaseRecords.Images([change.Desired]).Values.Distinct(StringComparer.Ordinal).ToList();
                var fresh = all.Where(i => !old.Contains(i, StringComparer.Ordinal)).ToList();
                if (fresh.Count > 0)
                {
                    // An autoscaled Deployment leaves replicas to its autoscaler: the live count.
                    var replicas = change.Desired["spec"]?["replicas"]?.GetValue<int>() ?? change.Live?["spec"]?["replicas"]?.GetValue<int>() ?? 1;
                    changes.Add(new ImageChange(action.Id, old, fresh, all, spec, change.Live, replicas));
                }
            }
        }

        return changes;
    }

    /// <summary>The cluster's nodes, or null when the caller may not list them (a deployer without cluster-wide read).</summary>
    public static async Task<IReadOnlyList<JsonObject>?> ListNodesAsync(IClusterClient client, CancellationToken cancellationToken)
    {
        try
        {
            return (await client.ListAsync("v1", "Node", null, null, cancellationToken)).Items;
        }
        catch (KubeForbiddenException)
        {
            return null;
        }
    }

    /// <summary>
    /// The nodes a release's pods may run on, as a DaemonSet with its pod template would cover them: Ready,
    /// schedulable, matching its node selector and tolerating the nodes' taints, with the images each already holds
    /// (<c>status.images</c>). Without <paramref name="nodes"/> (they cannot be listed) or their images, the nodes its pods
    /// run on now, which hold its old images.
    /// </summary>
    public static async Task<ImageNodes> NodesAsync(IClusterClient client, IReadOnlyList<JsonObject>? nodes, ImageChange change, CancellationToken cancellationToken)
    {
        // Nodes that report no images at all (a kubelet that does not, or a cluster whose images are simply there) say
        // nothing of what they hold: then, too, the nodes the release runs on are those known to hold its old images.
        if (nodes is not null && nodes.Any(n => n["status"]?["images"] is JsonArray { Count: > 0 }))
        {
            var selector = change.PodSpec["nodeSelector"] as JsonObject;
            var tolerations = change.PodSpec["tolerations"] as JsonArray;
            var eligible = nodes.Where(n =>
                    n["spec"]?["unschedulable"]?.GetValue<bool>() != true
                    && (n["status"]?["conditions"] as JsonArray ?? []).Any(c => c?["type"]?.GetValue<string>() == "Ready" && c["status"]?.GetValue<string>() == "True")
                    && (selector ?? []).All(kv => n["metadata"]?["labels"]?[kv.Key]?.GetValue<string>() == kv.Value?.GetValue<string>())
                    && Affinity.Admits(n, change.PodSpec["affinity"]?["nodeAffinity"]?["requiredDuringSchedulingIgnoredDuringExecution"] as JsonObject)
                    && Taints.Admits(n, tolerations))
                .ToList();

            // A release with fewer pods than half those nodes would warm many it never runs on: its own nodes then.
            if (change.Replicas * 2 < eligible.Count && await RunningOnAsync(client, change, cancellationToken) is { Count: > 0 } running)
            {
                eligible = [.. eligible.Where(n => running.Contains(Name(n)))];
            }

            return new ImageNodes(
                [.. eligible.Select(Name)],
                eligible.ToDictionary(Name, n => (IReadOnlySet<string>)(n["status"]?["images"] as JsonArray ?? [])
                    .SelectMany(i => i?["names"] as JsonArray ?? []).Select(x => x!.GetValue<string>()).ToHashSet(StringComparer.Ordinal), StringComparer.Ordinal),
                FromPods: false);
        }

        return new ImageNodes([.. (await RunningOnAsync(client, change, cancellationToken)).Order(StringComparer.Ordinal)], new Dictionary<string, IReadOnlySet<string>>(), FromPods: true);
    }

    /// <summary>The nodes the release's live pods run on (none for a release not deployed yet).</summary>
    private static async Task<HashSet<string>> RunningOnAsync(IClusterClient client, ImageChange change, CancellationToken cancellationToken)
    {
        var labels = change.Live?["spec"]?["selector"]?["matchLabels"] as JsonObject;
        if (labels is null || labels.Count == 0)
        {
            return [];
        }

        var pods = await client.ListAsync("v1", "Pod", change.Release.Namespace, string.Join(",", labels.Select(kv => $"{kv.Key}={kv.Value}")), cancellationToken);
        return pods.Items.Select(p => p["spec"]?["nodeName"]?.GetValue<string>()).OfType<string>().ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>
    /// True when a node's image names (<c>status.images[].names</c>) include the image: the reference as written, or for
    /// one pinned by digest (<c>repo:tag@sha256:…</c>) the name <c>repo@sha256:…</c> a container runtime reports.
    /// </summary>
    public static bool Holds(IReadOnlySet<string>? names, string image)
    {
        if (names is null || names.Count == 0)
        {
            return false;
        }

        var full = Qualified(image);
        var pinned = Pinned(full);
        return names.Contains(image) || names.Any(n => Qualified(n) == full || (pinned is not null && Pinned(Qualified(n)) == pinned));
    }

    /// <summary>A reference as container runtimes report it: <c>x:1</c> is <c>docker.io/library/x:1</c>, <c>a/x</c> is <c>docker.io/a/x</c>.</summary>
    private static string Qualified(string image)
    {
        var slash = image.IndexOf('/', StringComparison.Ordinal);
        var first = slash < 0 ? string.Empty : image[..slash];
        return slash >= 0 && (first.Contains('.', StringComparison.Ordinal) || first.Contains(':', StringComparison.Ordinal) || first == "localhost")
            ? image
            : "docker.io/" + (slash < 0 ? "library/" : string.Empty) + image;
    }

    private static string? Pinned(string image)
    {
        var at = image.IndexOf('@', StringComparison.Ordinal);
        if (at < 0)
        {
            return null;
        }

        var repo = image[..at];
        var slash = repo.LastIndexOf('/');
        var colon = repo.LastIndexOf(':');
        return (colon > slash ? repo[..colon] : repo) + image[at..];
    }

    private static string Name(JsonObject obj) => obj.Kube.Name;
}
