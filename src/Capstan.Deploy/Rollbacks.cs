using System.Text.Json.Nodes;
using Capstan.Core.Config;
using Capstan.Core.Diagnostics;
using Capstan.Core.Kubernetes;
using Capstan.Core.Planning;
using Capstan.Kubernetes;
using Capstan.State;

namespace Capstan.Deploy;

/// <summary>One release's rollback: the revision it runs and the one it goes back to.</summary>
public sealed record RollbackTarget(ReleaseId Release, ReleaseRecord Current, ReleaseRecord Target);

/// <summary>
/// Rollbacks: one release to a stored revision, or every release a plan changed, newest stage first. Each is a
/// rollout of its own, waited for, and records a hold, so that the next deploy cannot silently apply again what was
/// rolled back.
/// </summary>
public sealed class Rollbacks(FarmModel model, IClusters clusters, IStateStore store, DeployService deploy, TimeProvider time)
{
    /// <summary>A release's rollback to <paramref name="to"/>, or to the newest earlier revision with another manifest.</summary>
    public async Task<RollbackTarget> TargetAsync(ReleaseId id, int? to, CancellationToken cancellationToken)
    {
        var history = await HistoryAsync(id, cancellationToken);
        var current = history.FirstOrDefault(r => r.Status == "deployed") ?? history[0];
        var target = to is { } rev
            ? history.FirstOrDefault(r => r.Revision == rev) ?? throw new UserInputException($"{id} has no revision {rev} (revisions: {string.Join(", ", history.Select(r => r.Revision).Order())})")
            : history.Where(r => r.Revision < current.Revision && r.ManifestHash != current.ManifestHash).MaxBy(r => r.Revision)
              ?? throw new UserInputException($"{id} has no earlier revision to roll back to");
        return new RollbackTarget(id, current, target);
    }

    /// <summary>
    /// The rollbacks that undo a plan (its id, or the newest plan when null): every release it deployed goes back to
    /// the revision it had before, production's stage first, then the canaries, then the test servers. A release the
    /// plan installed has nothing to go back to and is left (listed in <paramref name="skipped"/>).
    /// </summary>
    public async Task<(string PlanId, IReadOnlyList<RollbackTarget> Targets)> PlanAsync(string? planId, List<string> skipped, CancellationToken cancellationToken)
    {
        var (records, _) = await store.ListAsync(DeployProgress.RecordsPrefix(model.Project), cancellationToken);
        var record = (planId is null
                ? records.OrderBy(r => r.Key, StringComparer.Ordinal).LastOrDefault(r => !(JsonNode.Parse(r.Value)?["reason"]?.GetValue<string>() ?? string.Empty).StartsWith("rollback", StringComparison.Ordinal))
                : records.FirstOrDefault(r => r.Key.EndsWith("-" + planId, StringComparison.Ordinal)))
            ?? throw new UserInputException(planId is null ? "no deploy has been recorded yet" : $"there is no deploy plan '{planId}' ('capstan history' and the dashboard's history name them)");
        var doc = JsonNode.Parse(record.Value)!;
        var targets = new List<RollbackTarget>();
        foreach (var release in doc["releases"] as JsonArray ?? [])
        {
            if (release?["result"]?.GetValue<string>() != nameof(ReleaseState.Done) || release["revision"]?.GetValue<int>() is not int revision
                || ReleaseId.Parse(release["release"]?.GetValue<string>() ?? string.Empty) is not { } id)
            {
                continue;
            }

            var history = await HistoryAsync(id, cancellationToken);
            var current = history.FirstOrDefault(r => r.Status == "deployed") ?? history[0];
            if (history.Where(r => r.Revision < revision).MaxBy(r => r.Revision) is not { } before)
            {
                skipped.Add($"{id}: installed by the plan, nothing to go back to");
                continue;
            }

            if (current.ManifestHash == before.ManifestHash)
            {
                skipped.Add($"{id}: already runs revision {before.Revision}'s manifest");
                continue;
            }

            targets.Add(new RollbackTarget(id, current, before));
        }

        var order = model.AllReleases().Select((r, i) => (Key: (r.Group.Namespace, r.Release.Name), r.Release.Stage, Index: i))
            .ToDictionary(r => r.Key, r => (r.Stage, r.Index));
        var planned = doc["planId"]?.GetValue<string>() ?? planId ?? string.Empty;
        return (planned, [.. targets.OrderByDescending(t => Rank(t.Release).Stage).ThenByDescending(t => Rank(t.Release).Index)]);

        (Stage Stage, int Index) Rank(ReleaseId id) =>
            model.Groups.FirstOrDefault(g => model.LiveNamespace(g) == id.Namespace) is { } group && order.TryGetValue((group.Namespace, id.Release), out var rank) ? rank : (Stage.Production, int.MaxValue);
    }

    /// <summary>Rolls one release back (a plan of its own, under the deploy lock, waited for) and, when it worked, holds what it rolled back.</summary>
    public async Task<DeployResult> RunAsync(RollbackTarget rollback, string actor, string reason, IDeployObserver observer, CancellationToken cancellationToken)
    {
        var (id, current, target) = rollback;
        static string Key(JsonObject o) => o.Kube.Key;
        var keep = target.Manifest.Select(Key).ToHashSet(StringComparer.Ordinal);
        var group = model.Groups.FirstOrDefault(g => model.LiveNamespace(g) == id.Namespace);
        var spec = group?.Releases.FirstOrDefault(r => r.Name == id.Release);
        var history = await HistoryAsync(id, cancellationToken);
        var action = new ReleaseAction(
            id,
            spec?.Kind ?? ReleaseKind.Manifests,
            spec?.Stage ?? Stage.Production,
            ReleaseChange.Upgrade,
            target.Manifest,
            [.. target.Manifest.Select(o => ObjectChange.Restore(o.Kube.Kind, o.Kube.Name, o))],
            [.. current.Manifest.Where(o => !keep.Contains(Key(o)))
                .Select(o => new ObjectPrune(o.Kube.ApiVersion, o.Kube.Kind, o.Kube.Namespace, o.Kube.Name))],
            [],
            target.ManifestHash,
            history.Max(r => r.Revision));
        var plan = new Plan(Planner.NewPlanId(time), [action], [], 1);
        var options = new ExecutorOptions { Actor = actor, Reason = $"rollback to revision {target.Revision}: {reason}", ForceConflicts = true, Announce = false };
        var result = await deploy.RunAsync(plan, options, observer, cancellationToken);
        var fields = new JsonObject
        {
            ["release"] = id.ToString(),
            ["from"] = current.Revision,
            ["to"] = target.Revision,
            ["image"] = target.MediaWikiImage,
            ["heldImage"] = current.MediaWikiImage,
            ["reason"] = reason,
            ["plan"] = plan.Id,
            ["succeeded"] = result.Succeeded,
        };
        await deploy.AnnounceAsync(
            new Announcement("rollback", actor, result.Succeeded ? $"Rolled back {id} to revision {target.Revision}: {reason} (duration: {Announcement.Duration(result.Duration)})" : $"Rollback of {id} to revision {target.Revision} failed: {result.Cause}", time.GetUtcNow(), fields),
            observer,
            cancellationToken);
        if (result.Succeeded)
        {
            await new HoldStore(store, model.Project).PutAsync(new ReleaseHold(id, current.ManifestHash, current.MediaWikiImage, actor, time.GetUtcNow(), reason, plan.Id), cancellationToken);
            await deploy.AnnounceAsync(new Announcement("hold", actor, $"Held {id} at revision {current.Revision}{(current.MediaWikiImage is { } image ? $" ({image})" : string.Empty)}: {reason}", time.GetUtcNow(), (JsonObject)fields.DeepClone()), observer, cancellationToken);
        }

        return result;
    }

    private async Task<List<ReleaseRecord>> HistoryAsync(ReleaseId id, CancellationToken cancellationToken) =>
        (await ReleaseRecords.ListAsync(clusters[id.Datacenter], id.Datacenter, id.Namespace, cancellationToken)).GetValueOrDefault(id)
        ?? throw new UserInputException($"{id} has never been deployed");
}
