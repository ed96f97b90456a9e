using System.Globalization;
using Capstan.Deploy.Actions;
using Capstan.Images;

namespace Capstan.Cli;

/// <summary>How a plan's pull cost prints (<c>deploy --dry-run</c>).</summary>
internal static class DeployPullCostView
{
    public static string Table(IReadOnlyList<DeployPullCost> rows)
    {
        var table = new PlainTable(["DC", "RELEASE", .. PullCostView.Headings]);
        foreach (var row in rows)
        {
            table.Add([row.Datacenter, row.What, .. row.Estimate is { } e ? PullCostView.Cells(e) : ["?", "?", "?", "?", "?"]]);
        }

        var notes = string.Concat(rows.Where(r => r.Unknown is not null).Select(r => $"  {r.Datacenter}/{r.What}: layers unknown: {r.Unknown}\n"));
        return "\nimage pull cost (the new images' layers each node lacks):\n" + table + notes;
    }
}

/// <summary>How a pull-cost estimate prints (<c>image pull-cost</c> and <c>deploy --dry-run</c>).</summary>
internal static class PullCostView
{
    public static readonly string[] Headings = ["NODES", "PER NODE", "REGISTRY EGRESS", "FROM REGISTRY", "PEER-TO-PEER"];

    public static string[] Cells(PullCostEstimate e) =>
    [
        e.Nodes.ToString(CultureInfo.InvariantCulture), Commands.ImageCommand.Size(e.BytesPerNode), Commands.ImageCommand.Size(e.TotalBytes),
        e.RegistrySeconds.ToString("0.0 s", CultureInfo.InvariantCulture), e.PeerToPeerSeconds.ToString("0.0 s", CultureInfo.InvariantCulture),
    ];
}
