using System.Text.Json.Nodes;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Kubernetes;
using Capstan.Core.Planning;
using Capstan.Core.Rendering;
using Capstan.Core.State;
using Capstan.Kubernetes;

namespace Capstan.Deploy;

/// <summary>Whether a release runs what the repo says, as Argo CD's Synced/OutOfSync/Unknown, with Capstan's own two.</summary>
public enum SyncState
{
    /// <summary>The repo renders what was last deployed, and live matches it.</summary>
    Synced,

    /// <summary>The repo changed since the last deploy.</summary>
    OutOfSync,

    /// <summary>Live differs from what was applied: someone other than Capstan changed it.</summary>
    Drifted,

    /// <summary>Rolled back and held: the repo's revision may not be applied again until the hold is lifted.</summary>
    Held,

    /// <summary>Cannot be told: the repo does not render (no dynamic state yet, or a repo error).</summary>
    Unknown,
}

/// <summary>How a release's workload is doing.</summary>
public enum HealthState
{
    /// <summary>Every replica wanted is ready, or the release has no workload to wait for.</summary>
    Healthy,

    /// <summary>A rollout is under way (fewer replicas ready than wanted, no pod problem).</summary>
    Progressing,

    /// <summary>A pod has a problem (the first is named).</summary>
    Degraded,

    /// <summary>The release's Deployment is gone.</summary>
    Missing,
}

/// <summary>A release's sync state and why, in a few words (null for Synced).</summary>
public sealed record SyncVerdict(SyncState State, string? Why)
{
    /// <summary>Synced.</summary>
    public static readonly SyncVerdict Synced = new(SyncState.Synced, null);

    /// <inheritdoc/>
    public override string ToString() => Why is null ? State.ToString() : $"{State}: {Why}";
}

/// <summary>A release's health and why (the first pod problem, or how far its rollout is).</summary>
public sealed record HealthVerdict(HealthState State, string? Why)
{
    /// <summary>The health of a release of the given readiness.</summary>
    public static HealthVerdict Of(Readiness ready) =>
        ready.Missing ? new(HealthState.Missing, "its Deployment is gone")
        : ready.Problem is { } problem ? new(HealthState.Degraded, problem)
        : ready.Ready is { } r && ready.Desired is { } d && r < d ? new(HealthState.Progressing, $"{r}/{d} ready")
        : new(HealthState.Healthy, null);

    /// <inheritdoc/>
    public override string ToString() => Why is null ? State.ToString() : $"{State}: {Why}";
}

/// <summary>
/// Judges every release of a <see cref="FarmStatus"/> Synced, OutOfSync, Drifted or Held, cheaply: from the release
/// records, the live workloads the status already read (their managedFields), the holds, and a render of the repo
/// (no request to a cluster, no dry run). <c>capstan status</c>, the dashboard and <c>/metrics</c> all use it;
/// <c>capstan diff</c> stays the place for the full answer.
/// </summary>
public static class ReleaseSync
{
    /// <summary>How many differences a verdict names before it says "and N more".</summary>
    private const int Named = 2;

    /// <summary>
    /// The status with a verdict on every release. <paramref name="state"/> is the dynamic state the repo renders with;
    /// when it is null (no state yet), or the repo does not render, the verdict is Unknown and says why.
    /// </summary>
    public static async Task<FarmStatus> JudgeAsync(
        FarmStatus status, FarmModel model, FarmRenderer renderer, IClusters clusters, DynamicState? state, IReadOnlyList<ReleaseHold> holds, CancellationToken cancellationToken)
    {
        var (rendered, renderError) = await RenderAsync(status, model, renderer, clusters, state, cancellationToken);
        var held = holds.GroupBy(h => h.Release).ToDictionary(g => g.Key, g => g.First());
        return status with
        {
            Releases = [.. status.Releases.Select(r => r with { Sync = Judge(r, held.GetValueOrDefault(r.Record.Id), rendered, renderError) })],
        };
    }

    private static SyncVerdict Judge(ReleaseStatus release, ReleaseHold? hold, IReadOnlyDictionary<ReleaseId, IReadOnlyList<JsonObject>>? rendered, string? renderError)
    {
        if (hold is not null)
        {
            return new SyncVerdict(SyncState.Held, $"held by {hold.Actor}: {hold.Reason}");
        }

        if (Drift(release) is { } drift)
        {
            return new SyncVerdict(SyncState.Drifted, drift);
        }

        if (rendered is null)
        {
            return new SyncVerdict(SyncState.Unknown, renderError);
        }

        if (!rendered.TryGetValue(release.Record.Id, out var objects))
        {
            return new SyncVerdict(SyncState.OutOfSync, "no longer in the repo");
        }

        return Planner.ManifestHash(objects) == release.Record.ManifestHash
            ? SyncVerdict.Synced
            : new SyncVerdict(SyncState.OutOfSync, Changes(release.Record, objects));
    }

    /// <summary>The fields of the live workloads another manager changed, named with the manager; null when none did.</summary>
    private static string? Drift(ReleaseStatus release)
    {
        var applied = release.Record.Manifest.ToDictionary(o => o.Kube.Key, StringComparer.Ordinal);
        var found = new List<string>();
        foreach (var live in release.Live)
        {
            if (applied.GetValueOrDefault(live.Kube.Key) is { } desired)
            {
                found.AddRange(LiveProjection.Drift(desired, live).Select(d => $"{live.Kube.Kind} {live.Kube.Name} {d.Path} changed by {d.Manager}"));
            }
        }

        return found.Count == 0 ? null : Brief(found);
    }

    /// <summary>What the repo changed since the last deploy: images first, then the objects added, removed or changed.</summary>
    private static string Changes(ReleaseRecord record, IReadOnlyList<JsonObject> objects)
    {
        var changes = new List<string>();
        var images = ReleaseRecords.Images(objects);
        foreach (var (container, image) in images.Where(i => record.Images.GetValueOrDefault(i.Key) is { } was && was != i.Value))
        {
            changes.Add($"{container} image {ShortImage(record.Images[container])} → {ShortImage(image)}");
        }

        var before = record.Manifest.ToDictionary(o => o.Kube.Key, StringComparer.Ordinal);
        var after = objects.ToDictionary(o => o.Kube.Key, StringComparer.Ordinal);
        changes.AddRange(after.Where(o => !before.ContainsKey(o.Key)).Select(o => $"adds {o.Value.Kube.Kind} {o.Value.Kube.Name}"));
        changes.AddRange(before.Where(o => !after.ContainsKey(o.Key)).Select(o => $"removes {o.Value.Kube.Kind} {o.Value.Kube.Name}"));
        var imagesMoved = changes.Count > 0;
        foreach (var (key, obj) in after.Where(o => before.ContainsKey(o.Key) && !JsonNode.DeepEquals(o.Value, before[o.Key])))
        {
            // An object whose first difference is an image already named above is not named again.
            var path = Planner.FirstDifference(obj, before[key], string.Empty) ?? Planner.FirstDifference(before[key], obj, string.Empty);
            if (!(imagesMoved && path?.EndsWith(".image", StringComparison.Ordinal) == true))
            {
                changes.Add($"{obj.Kube.Kind} {obj.Kube.Name}{(path is null ? string.Empty : " " + path)}");
            }
        }

        return changes.Count == 0 ? "the repo renders its objects differently (order or form)" : Brief(changes);
    }

    /// <summary>An image reference without its registry and digest: <c>mediawiki-multiversion:2026-11-27-101500-publish</c>.</summary>
    private static string ShortImage(string image)
    {
        var noDigest = image.Split('@')[0];
        var name = noDigest[(noDigest.LastIndexOf('/') + 1)..];
        return name.Length > 0 ? name : image;
    }

    private static string Brief(List<string> items) =>
        string.Join("; ", items.Take(Named)) + (items.Count > Named ? $"; and {items.Count - Named} more" : string.Empty);

    /// <summary>The objects the repo renders now for each release of the status; null and why when it cannot be told.</summary>
    private static async Task<(IReadOnlyDictionary<ReleaseId, IReadOnlyList<JsonObject>>? Objects, string? Error)> RenderAsync(
        FarmStatus status, FarmModel model, FarmRenderer renderer, IClusters clusters, DynamicState? state, CancellationToken cancellationToken)
    {
        var ids = status.Releases.Select(r => r.Record.Id).ToHashSet();
        var work = renderer.Select(new RenderSelection()).Where(w => ids.Contains(new ReleaseId(w.Dc, model.LiveNamespace(w.Group), w.Release.Name))).ToList();
        if (state is null && renderer.NeedsState(new RenderSelection()))
        {
            return (null, "the dynamic state has not been set, so the repo cannot be rendered");
        }

        try
        {
            var result = new Dictionary<ReleaseId, IReadOnlyList<JsonObject>>();
            foreach (var release in renderer.Render(work, state, withNamespaces: false).Releases)
            {
                var resolved = release.Kind == ReleaseKind.Manifests ? (await ObjectScopes.ResolveAsync(clusters[release.Datacenter], [release], cancellationToken))[0] : release;
                result[new ReleaseId(resolved.Datacenter, resolved.Namespace, resolved.Release)] = [.. resolved.Objects.Select(KubeSerializer.ToNode)];
            }

            return (result, null);
        }
        catch (CapstanException ex) when (ex.Kind is RefusalKind.UserError)
        {
            return (null, $"the repo does not render: {ex.Message}");
        }
    }
}
