using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Core.Planning;
using Capstan.Deploy.Actions;
using Capstan.Images;

namespace Capstan.Deploy.Json;

/// <summary>
/// A plan, its pull cost and its result as JSON: what <c>deploy --dry-run -o json</c> prints, and what the dashboard
/// shows before a job runs and after it ends (one shape for both).
/// </summary>
public static class PlanJson
{
    /// <summary>The plan: each release's stage, change, objects to apply and prune, and the images it changes.</summary>
    public static JsonObject Of(Plan plan) => new()
    {
        ["kind"] = "Plan",
        ["id"] = plan.Id,
        ["concurrencyPerCluster"] = plan.ConcurrencyPerCluster,
        ["namespaces"] = new JsonArray([.. plan.Namespaces.Select(n => (JsonNode)$"{n.Datacenter}/{n.Namespace}")]),
        ["releases"] = new JsonArray([.. plan.Actions.Select(a => (JsonNode)new JsonObject
        {
            ["release"] = a.Id.ToString(),
            ["stage"] = a.Stage.ToString().ToLowerInvariant(),
            ["change"] = a.Change.ToString().ToLowerInvariant(),
            ["needs"] = new JsonArray([.. a.Needs.Select(n => (JsonNode)n.ToString())]),
            ["apply"] = new JsonArray([.. a.Apply.Select(c => (JsonNode)new JsonObject { ["kind"] = c.Kind, ["name"] = c.Name, ["why"] = c.Why })]),
            ["prune"] = new JsonArray([.. a.Prune.Select(p => (JsonNode)new JsonObject { ["kind"] = p.Kind, ["name"] = p.Name })]),
            ["previousRevision"] = a.PreviousRevision,
            ["images"] = Images(a),
        })]),
    };

    /// <summary>The images a release's change moves, container by container: <c>[{"container", "from", "to"}]</c> (from is null for a new one).</summary>
    public static JsonArray Images(ReleaseAction action)
    {
        var images = new JsonArray();
        foreach (var change in action.Apply)
        {
            var before = change.Live is null ? [] : ReleaseRecords.Images([change.Live]);
            foreach (var (container, image) in ReleaseRecords.Images([change.Desired]))
            {
                if (before.GetValueOrDefault(container) is var old && old != image)
                {
                    images.Add(new JsonObject { ["container"] = container, ["from"] = old, ["to"] = image });
                }
            }
        }

        return images;
    }

    /// <summary>A dry run's pull cost: per datacenter and release, the bytes each node lacks and the time to fetch them.</summary>
    public static JsonArray PullCost(IReadOnlyList<DeployPullCost> rows) => [.. rows.Select(r =>
    {
        var node = r.Estimate is { } e ? PullCost(e) : new JsonObject { ["unknown"] = r.Unknown };
        node.Remove("datacenter");
        node.Insert(0, "release", $"{r.Datacenter}/{r.What}");
        return (JsonNode)node;
    })];

    /// <summary>One pull-cost estimate (<c>image pull-cost -o json</c>).</summary>
    public static JsonObject PullCost(PullCostEstimate e) => new()
    {
        ["datacenter"] = e.Datacenter,
        ["nodes"] = e.Nodes,
        ["bytesPerNode"] = e.BytesPerNode,
        ["registryEgressBytes"] = e.TotalBytes,
        ["registrySeconds"] = Math.Round(e.RegistrySeconds, 3),
        ["peerToPeerSeconds"] = Math.Round(e.PeerToPeerSeconds, 3),
    };

    /// <summary>How a deploy ended: each release's result, the cause, the gates, the phases.</summary>
    public static JsonObject Of(DeployResult result) => new()
    {
        ["event"] = "result",
        ["plan"] = result.PlanId,
        ["succeeded"] = result.Succeeded,
        ["rollbackFailed"] = result.RollbackFailed,
        ["seconds"] = Math.Round(result.Duration.TotalSeconds, 3),
        ["cause"] = result.Cause,
        ["gatesSkipped"] = result.GatesSkipped,
        ["gates"] = new JsonArray([.. result.Gates.Select(g => (JsonNode)g.ToJson())]),
        ["halted"] = result.Halted,
        ["cancelled"] = result.Cancelled?.ToString(),
        ["phases"] = PhaseTiming.ToJson(result.Phases),
        ["releases"] = new JsonArray([.. result.Releases.Select(r => (JsonNode)new JsonObject
        {
            ["release"] = r.Id.ToString(),
            ["result"] = Word(r.State),
            ["revision"] = r.Revision,
            ["detail"] = r.Detail,
        })]),
    };

    /// <summary>A release's result as people say it: deployed, rolled back, not started…</summary>
    public static string Word(ReleaseState state) => state switch
    {
        ReleaseState.Done => "deployed",
        ReleaseState.RolledBack => "rolled back",
        ReleaseState.RollbackFailed => "rollback failed",
        ReleaseState.NotStarted => "not started",
        _ => state.ToString().ToLowerInvariant(),
    };

    /// <summary>A result's one-line verdict: "deployed: plan X in 12.3 s", "FAILED: …", "CANCELLED: …".</summary>
    public static string Verdict(DeployResult result) =>
        (result.Succeeded ? "deployed" : result.Cancelled is not null && !result.Releases.Any(r => r.State == ReleaseState.Failed) ? "CANCELLED" : "FAILED") +
        $": plan {result.PlanId} in {result.Duration.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s";
}
