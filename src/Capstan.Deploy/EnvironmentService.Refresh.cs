using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;
using Capstan.Core.Environments;
using Capstan.State;

namespace Capstan.Deploy;

/// <summary>Environments: refreshing them, and how far they are behind the repo.</summary>
public sealed partial class EnvironmentService
{
    /// <summary>
    /// Refreshes environments (one, or all when <paramref name="name"/> is null): a followed one is rendered against the
    /// repo as it is now and deployed; a pinned one is only compared, and reported behind when the repo would change
    /// it; a sleeping one is left alone. One line per environment says what happened; with several, one that fails
    /// does not stop the others (its line says why, and <see cref="RefreshReport.Failed"/> counts it).
    /// </summary>
    /// <remarks>
    /// Someone else's environment needs <paramref name="force"/> and is recorded in its history. With
    /// <paramref name="onlyBehind"/>, a followed environment that is up to date is left alone.
    /// </remarks>
    public async Task<RefreshReport> RefreshAsync(string? name, string actor, IDeployObserver observer, CancellationToken cancellationToken, bool force = false, bool onlyBehind = false)
    {
        var records = name is null
            ? await Records.ListAsync(cancellationToken)
            : [(await Records.GetAsync(name, cancellationToken) ?? throw new UserInputException($"there is no environment '{name}'")).Record];
        if (name is not null && records[0].Owner != actor && !force)
        {
            throw new UserInputException($"environment '{name}' belongs to {records[0].Owner}; to refresh it as {actor}, add --force (recorded in its history)");
        }

        var lines = new List<string>();
        var failed = 0;
        foreach (var record in records)
        {
            try
            {
                if (onlyBehind && record.Base == EnvironmentBase.Follow && record.Creating is null && record.Sleeping is null
                    && (await BehindAsync(record, cancellationToken)).Count == 0)
                {
                    lines.Add($"{record.Name}: up to date with the repo");
                    continue;
                }

                if (record.Owner != actor && record.Base == EnvironmentBase.Follow && record.Creating is null && record.Sleeping is null)
                {
                    await Records.ChangeAsync(record.Name, actor, onlyBehind ? RefreshOfFollowers : "refresh", force: true, r => r, cancellationToken);
                }

                lines.Add(await RefreshOneAsync(record, actor, observer, cancellationToken));
            }
            catch (Exception ex) when (name is null && Refusals.Classify(ex) is { } refusal)
            {
                failed++;
                lines.Add($"{record.Name}: not refreshed: {refusal.Message}");
            }
        }

        return new RefreshReport(lines, failed);
    }

    private async Task<string> RefreshOneAsync(EnvironmentRecord record, string actor, IDeployObserver observer, CancellationToken cancellationToken)
    {
        if (record.Creating is not null)
        {
            return $"{record.Name}: still being created (or its create was interrupted), not refreshed";
        }

        if (record.Sleeping is not null)
        {
            return $"{record.Name}: asleep, not refreshed";
        }

        if (record.Base == EnvironmentBase.Pinned)
        {
            var plan = await Deployer(record).PrepareAsync(Request(record, actor, "refresh"), await EnvironmentScope.ReadStateAsync(model, record, store, actor, time, cancellationToken), cancellationToken);
            var behind = plan.Plan.Actions.Count(a => a.Change != Core.Planning.ReleaseChange.NoOp);
            return behind == 0
                ? $"{record.Name}: pinned ({record.PinnedRevision}); the repo would change nothing"
                : $"{record.Name}: pinned ({record.PinnedRevision}); behind: the repo now would change {behind} release{(behind == 1 ? string.Empty : "s")}, not refreshed";
        }

        RenderIsolated(record, await EnvironmentScope.ReadStateAsync(model, record, store, actor, time, cancellationToken));
        var results = await DeployAsync(record, actor, "refresh", observer, cancellationToken);
        var changed = results.Sum(r => r.Releases.Count(o => o.State != ReleaseState.Unchanged));
        return $"{record.Name}: refreshed, {changed} release{(changed == 1 ? string.Empty : "s")} changed";
    }

    /// <summary>The history entry of a refresh of a followed environment that fell behind, by gc or --all-behind: not the owner's activity.</summary>
    public const string RefreshOfFollowers = "refresh (behind the repo)";

    /// <summary>
    /// What a refresh would change in an environment: one line per release, naming the MediaWiki image it runs and the
    /// one the repo gives now when they differ, else the objects that would change and how. Empty when it is up to date
    /// (and for one being created or asleep).
    /// </summary>
    public async Task<IReadOnlyList<string>> BehindAsync(EnvironmentRecord record, CancellationToken cancellationToken)
    {
        if (record.Creating is not null || record.Sleeping is not null)
        {
            return [];
        }

        var state = await EnvironmentScope.ReadStateAsync(model, record, store, record.Owner, time, cancellationToken);
        var prepared = await Deployer(record).PrepareAsync(Request(record, record.Owner, "behind?") with { Preflight = false }, state, cancellationToken);
        var lines = new List<string>();
        foreach (var action in prepared.Plan.Actions.Where(a => a.Change != Core.Planning.ReleaseChange.NoOp))
        {
            var release = $"{action.Id.Datacenter}/{action.Id.Namespace[(record.Name.Length + EnvironmentNames.Separator.Length)..]}/{action.Id.Release}";
            if (action.Change == Core.Planning.ReleaseChange.Install)
            {
                lines.Add($"{release}: not deployed yet");
                continue;
            }

            var image = action.Apply.Where(c => c.Kind is "Deployment" or "CronJob" && c.Live is not null)
                .SelectMany(c => Images(c.Desired).Where(d => Images(c.Live!).TryGetValue(d.Key, out var was) && was != d.Value).Select(d => (d.Key, Was: Images(c.Live!)[d.Key], Now: d.Value)))
                .FirstOrDefault();
            lines.Add(image.Key is not null
                ? $"{release}: container {image.Key} runs {image.Was}; the repo now gives {image.Now}"
                : $"{release}: {string.Join("; ", action.Apply.Select(c => $"{c.Kind} {c.Name} {c.Why}").Concat(action.Prune.Select(p => $"{p.Kind} {p.Name} removed")))}");
        }

        return lines;
    }

    /// <summary>The image of each container of a Deployment's or CronJob's pods, by container name.</summary>
    private static Dictionary<string, string> Images(JsonObject obj) =>
        ((obj["spec"]?["template"]?["spec"] ?? obj["spec"]?["jobTemplate"]?["spec"]?["template"]?["spec"])?["containers"] as JsonArray ?? [])
            .OfType<JsonObject>()
            .Where(c => c["name"] is not null && c["image"] is not null)
            .GroupBy(c => c["name"]!.GetValue<string>())
            .ToDictionary(g => g.Key, g => g.First()["image"]!.GetValue<string>(), StringComparer.Ordinal);
}
