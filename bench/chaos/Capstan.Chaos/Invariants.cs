using System.Text.Json.Nodes;
using Capstan.Core.Rendering;
using Capstan.Deploy;

namespace Capstan.Chaos;

/// <summary>What must hold once an interrupted operation has been completed; each check returns its violations.</summary>
internal static class Invariants
{
    /// <summary>The kinds Capstan applies for a release (what an orphan could be).</summary>
    private static readonly (string ApiVersion, string Kind)[] AppliedKinds =
    [
        ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "Service"), ("apps/v1", "Deployment"), ("batch/v1", "CronJob"),
        ("networking.k8s.io/v1", "NetworkPolicy"), ("v1", "LimitRange"), ("v1", "ServiceAccount"),
    ];

    /// <summary><c>capstan diff</c> of the scope exits 0: the clusters hold what the repo renders.</summary>
    public static async Task<List<string>> DiffCleanAsync(ChaosFarm farm, string[] scope)
    {
        var diff = await farm.RunAsync(["diff", .. scope]);
        return diff.ExitCode == 0 ? [] : [$"capstan diff {string.Join(' ', scope)} exited {diff.ExitCode}: {First(diff.Out + diff.Err)}"];
    }

    /// <summary>No deploy lock is left (a dead holder's included): <c>unlock</c> finds none.</summary>
    public static async Task<List<string>> NoLockAsync(ChaosFarm farm)
    {
        var unlock = await farm.RunAsync("unlock", "--reason", "chaos: check that no lock is left");
        return unlock.Out.Contains("deploys were not locked", StringComparison.Ordinal) ? [] : [$"a deploy lock was left: {First(unlock.Out + unlock.Err)}"];
    }

    /// <summary><c>capstan status</c> shows every release of the scope deployed, ready, at the revision its record holds.</summary>
    public static async Task<List<string>> ReadyAtRecordedRevisionAsync(ChaosFarm farm, string[] scope)
    {
        var status = await farm.RunAsync(["status", .. scope, "-o", "json"]);
        if (status.ExitCode != 0)
        {
            return [$"capstan status exited {status.ExitCode}: {First(status.Err)}"];
        }

        var violations = new List<string>();
        foreach (var release in JsonNode.Parse(status.Out)!["releases"]!.AsArray().OfType<JsonObject>())
        {
            var name = release["release"]!.GetValue<string>();
            if (release["status"]?.GetValue<string>() != "deployed" || release["missing"]?.GetValue<bool>() == true || release["problem"] is not null)
            {
                violations.Add($"{name}: {release["status"]}, missing={release["missing"]}, problem={release["problem"]}");
            }
            else if (release["ready"] is { } ready && release["desired"] is { } desired && ready.GetValue<int>() != desired.GetValue<int>())
            {
                violations.Add($"{name}: {ready}/{desired} ready");
            }
        }

        return violations;
    }

    /// <summary>Every object a release's label claims is in that release's deployed record: nothing is left that no release owns.</summary>
    public static async Task<List<string>> NoOrphansAsync(ChaosFarm farm, string dc, IReadOnlyList<string> namespaces)
    {
        var violations = new List<string>();
        await using var client = farm.Client(dc);
        var records = await ReleaseRecords.ListAsync(client, dc, namespaces, default);
        foreach (var ns in namespaces)
        {
            var owned = records.Where(r => r.Key.Namespace == ns)
                .ToDictionary(r => r.Key.Release, r => (r.Value.FirstOrDefault(x => x.Status == "deployed")?.Manifest ?? [])
                    .Select(o => $"{o["kind"]}/{o["metadata"]?["name"]}").ToHashSet(StringComparer.Ordinal), StringComparer.Ordinal);
            foreach (var (apiVersion, kind) in AppliedKinds)
            {
                var list = await client.ListAsync(apiVersion, kind, ns, ObjectLabels.ReleaseLabel, default);
                foreach (var obj in list.Items.Where(o => o["metadata"]?["labels"]?[ReleaseRecords.RecordLabel] is null))
                {
                    var release = obj["metadata"]!["labels"]![ObjectLabels.ReleaseLabel]!.GetValue<string>();
                    var key = $"{kind}/{obj["metadata"]!["name"]}";
                    if (!owned.TryGetValue(release, out var objects) || !objects.Contains(key))
                    {
                        violations.Add($"{dc}/{ns}: {key} (labelled release {release}) is in no deployed revision of it");
                    }
                }
            }
        }

        return violations;
    }

    /// <summary>No Job runs and no CronJob exists in the namespace in any datacenter (maintenance is off).</summary>
    public static async Task<List<string>> NoneRunningAsync(ChaosFarm farm, string ns)
    {
        var violations = new List<string>();
        foreach (var dc in farm.Served)
        {
            await using var client = farm.Client(dc);
            foreach (var cron in (await client.ListAsync("batch/v1", "CronJob", ns, null, default)).Items)
            {
                violations.Add($"{dc}/{ns}: CronJob {cron["metadata"]!["name"]} exists with maintenance disabled");
            }

            foreach (var job in (await client.ListAsync("batch/v1", "Job", ns, null, default)).Items.Where(j => (int?)j["status"]?["active"] > 0))
            {
                violations.Add($"{dc}/{ns}: Job {job["metadata"]!["name"]} runs with maintenance disabled");
            }
        }

        return violations;
    }

    /// <summary>
    /// The state ends where it should and its history applied no step twice: sequences without gaps or repeats, the
    /// primary changed and maintenance turned off as often as expected, a read-only datacenter always with its reason.
    /// </summary>
    public static async Task<List<string>> HistoryAsync(ChaosFarm farm, string primary, bool maintenance, int expectPrimaryChanges, int expectMaintenanceOffs)
    {
        var history = await farm.RunAsync("state", "history", "-o", "json");
        if (history.ExitCode != 0)
        {
            return [$"capstan state history exited {history.ExitCode}: {First(history.Err)}"];
        }

        var violations = new List<string>();
        var entries = JsonNode.Parse(history.Out)!.AsArray().OfType<JsonObject>().ToList();
        var sequences = entries.Select(e => e["sequence"]!.GetValue<long>()).ToList();
        if (!sequences.SequenceEqual(Enumerable.Range(1, sequences.Count).Select(i => (long)i)))
        {
            violations.Add($"history sequences are not 1..{sequences.Count}: {string.Join(",", sequences)}");
        }

        int primaryChanges = 0, maintenanceOffs = 0;
        foreach (var entry in entries)
        {
            var previous = entry["previous"] as JsonObject;
            var current = entry["current"]!.AsObject();
            if (previous is not null && previous["primary_dc"]?.GetValue<string>() != current["primary_dc"]?.GetValue<string>())
            {
                primaryChanges++;
            }

            if (previous?["maintenance_enabled"]?.GetValue<bool>() == true && current["maintenance_enabled"]?.GetValue<bool>() == false)
            {
                maintenanceOffs++;
            }

            foreach (var (dc, value) in current["read_only"]?.AsObject() ?? [])
            {
                if (value is JsonValue v && v.TryGetValue<string>(out var why) && string.IsNullOrWhiteSpace(why))
                {
                    violations.Add($"change {entry["sequence"]}: {dc} read-only without a reason");
                }
            }
        }

        if (primaryChanges != expectPrimaryChanges)
        {
            violations.Add($"the primary changed {primaryChanges} times (expected {expectPrimaryChanges})");
        }

        if (maintenanceOffs != expectMaintenanceOffs)
        {
            violations.Add($"maintenance was turned off {maintenanceOffs} times (expected {expectMaintenanceOffs})");
        }

        var last = entries.LastOrDefault()?["current"];
        if (last?["primary_dc"]?.GetValue<string>() != primary || last["maintenance_enabled"]?.GetValue<bool>() != maintenance
            || (last["read_only"]?.AsObject() ?? []).Any(kv => kv.Value is JsonValue v && !(v.TryGetValue<bool>(out var b) && !b)))
        {
            violations.Add($"the state ends as {last?.ToJsonString()}, not primary {primary}, read-write, maintenance {(maintenance ? "on" : "off")}");
        }

        return violations;
    }

    private static string First(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault()?.Trim() ?? string.Empty;
}
