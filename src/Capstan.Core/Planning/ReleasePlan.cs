using System.Text.Json.Nodes;
using Capstan.Core.Config;

namespace Capstan.Core.Planning;

/// <summary>A release in one datacenter: the unit the planner and the executor work on.</summary>
public sealed record ReleaseId(string Datacenter, string Namespace, string Release)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Datacenter}/{Namespace}/{Release}";

    /// <summary>Parses <c>dc/namespace/release</c>; null when it is not of that shape.</summary>
    public static ReleaseId? Parse(string text) =>
        text.Split('/') is [var dc, var ns, var release] && dc.Length > 0 && ns.Length > 0 && release.Length > 0 ? new ReleaseId(dc, ns, release) : null;
}

/// <summary>What happens to a release.</summary>
public enum ReleaseChange
{
    /// <summary>Nothing to do: live objects match and the last record is of the same manifest.</summary>
    NoOp,

    /// <summary>First deploy of the release in this datacenter.</summary>
    Install,

    /// <summary>Some objects change, appear or go.</summary>
    Upgrade,
}

/// <summary>One object to apply, with why.</summary>
public sealed record ObjectChange(string Kind, string Name, string Why, JsonObject Desired, JsonObject? Live);

/// <summary>An object to delete because the release no longer renders it.</summary>
public sealed record ObjectPrune(string ApiVersion, string Kind, string? Namespace, string Name);

/// <summary>The plan of one release.</summary>
public sealed record ReleaseAction(
    ReleaseId Id,
    ReleaseKind Kind,
    Stage Stage,
    ReleaseChange Change,
    IReadOnlyList<JsonObject> Desired,
    IReadOnlyList<ObjectChange> Apply,
    IReadOnlyList<ObjectPrune> Prune,
    IReadOnlyList<ReleaseId> Needs,
    string ManifestHash,
    int? PreviousRevision);

/// <summary>
/// A deploy as data: release actions across datacenters, with the edges that order them (needs, and stage barriers),
/// and the concurrency limit per cluster. Built by <see cref="Planner"/>; run by the executor.
/// </summary>
public sealed record Plan(string Id, IReadOnlyList<ReleaseAction> Actions, IReadOnlyList<(string Datacenter, string Namespace)> Namespaces, int ConcurrencyPerCluster)
{
    /// <summary>True when nothing changes.</summary>
    public bool IsNoOp => Actions.All(a => a.Change == ReleaseChange.NoOp) && Namespaces.Count == 0;

    /// <summary>The actions an action waits for: its needs in the same datacenter and every action of an earlier stage.</summary>
    public IReadOnlyList<ReleaseAction> Dependencies(ReleaseAction action) =>
        [.. Actions.Where(other => other != action && (action.Needs.Contains(other.Id) || other.Stage < action.Stage))];
}
