using System.Text.Json.Nodes;
using Capstan.State;

namespace Capstan.Deploy;

/// <summary>
/// What the state store says about a farm's deploys, for readers in other processes: the running deploy (its journal:
/// who, since when, the plan's releases by stage and how far each got) and the finished ones (their plan records).
/// </summary>
public static class DeployProgress
{
    /// <summary>The key of a farm's running-deploy journal.</summary>
    public static string JournalKey(string project) => $"{project}/deploy-journal";

    /// <summary>The prefix of a farm's plan records (one per finished deploy).</summary>
    public static string RecordsPrefix(string project) => $"{project}/deploys/";

    /// <summary>
    /// The running deploy: the journal's header with each planned release's state added (<c>Pending</c> until it
    /// starts), or null when no deploy runs.
    /// </summary>
    public static async Task<JsonObject?> RunningAsync(IStateStore store, string project, CancellationToken cancellationToken)
    {
        if (await store.GetAsync(JournalKey(project), cancellationToken) is not { } header || JsonNode.Parse(header.Value) is not JsonObject running)
        {
            return null;
        }

        if (await store.GetAsync(PhasesKey(JournalKey(project)), cancellationToken) is { } phases)
        {
            running["phases"] = JsonNode.Parse(phases.Value);
        }

        var (states, _) = await store.ListAsync(JournalKey(project) + "-releases/", cancellationToken);
        var byRelease = states.ToDictionary(s => s.Key[(JournalKey(project) + "-releases/").Length..], s => s.Value, StringComparer.Ordinal);
        foreach (var action in running["plan"] as JsonArray ?? [])
        {
            if (action is JsonObject a && a["release"]?.GetValue<string>() is { } id)
            {
                // {"state": …, "times": …}; a journal written before times were kept holds the state's name alone.
                var value = byRelease.GetValueOrDefault(id, nameof(ReleaseState.Pending));
                var entry = value.StartsWith('{') ? JsonNode.Parse(value) as JsonObject : null;
                a["state"] = entry?["state"]?.GetValue<string>() ?? value;
                a["times"] = entry?["times"]?.DeepClone() ?? new JsonObject();
            }
        }

        return running;
    }

    /// <summary>The key of the phases a running deploy has timed so far, beside its journal.</summary>
    public static string PhasesKey(string journalKey) => journalKey + "-phases";

    /// <summary>The plan records, newest first (at most <paramref name="limit"/>).</summary>
    public static async Task<IReadOnlyList<JsonObject>> FinishedAsync(IStateStore store, string project, int limit, CancellationToken cancellationToken)
    {
        var (items, _) = await store.ListAsync(RecordsPrefix(project), cancellationToken);
        var records = new List<JsonObject>();
        foreach (var item in items.OrderByDescending(i => i.Key, StringComparer.Ordinal).Take(limit))
        {
            if (JsonNode.Parse(item.Value) is JsonObject record)
            {
                records.Add(record);
            }
        }

        return records;
    }
}
